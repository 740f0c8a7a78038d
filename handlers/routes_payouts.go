package handlers

import "github.com/gin-gonic/gin"

// routesPayouts registers the payouts area's API (under /api/v1) and pages.
func (s *Server) routesPayouts(api, pages *gin.RouterGroup) {}
