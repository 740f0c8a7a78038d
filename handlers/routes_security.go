package handlers

import "github.com/gin-gonic/gin"

// routesSecurity registers the security area's API (under /api/v1) and pages.
func (s *Server) routesSecurity(api, pages *gin.RouterGroup) {}
