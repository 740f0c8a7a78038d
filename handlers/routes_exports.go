package handlers

import "github.com/gin-gonic/gin"

// routesExports registers the exports area's API (under /api/v1) and pages.
func (s *Server) routesExports(api, pages *gin.RouterGroup) {}
