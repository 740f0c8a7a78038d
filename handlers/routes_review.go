package handlers

import "github.com/gin-gonic/gin"

// routesReview registers the review area's API (under /api/v1) and pages.
func (s *Server) routesReview(api, pages *gin.RouterGroup) {}
