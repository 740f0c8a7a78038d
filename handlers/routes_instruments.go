package handlers

import "github.com/gin-gonic/gin"

// routesInstruments registers the instruments area's API (under /api/v1) and pages.
func (s *Server) routesInstruments(api, pages *gin.RouterGroup) {}
