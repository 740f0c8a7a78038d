package handlers

import "github.com/gin-gonic/gin"

// routesExports registers the exports area's API (under /api/v1) and pages:
// workbook downloads and export jobs, the staff dashboard and the public
// open-data page.
func (s *Server) routesExports(api, pages *gin.RouterGroup) {
	jobs := s.exportJobs()

	api.GET("/programs/:code/exports/:file", s.requireUser, s.apiExportDownload)
	api.GET("/programs/:code/dashboard", s.requireUser, s.apiDashboard)
	api.POST("/exports", s.requireUser, func(c *gin.Context) { s.apiCreateExportJob(c, jobs) })
	api.GET("/exports/:id", s.requireUser, func(c *gin.Context) { s.apiExportJob(c, jobs) })
	api.GET("/exports/:id/file", s.requireUser, func(c *gin.Context) { s.apiExportJobFile(c, jobs) })

	pages.GET("/programs/:code/exports", s.requirePageUser, s.pageExports)
	pages.POST("/programs/:code/exports", s.requirePageUser, func(c *gin.Context) { s.pageCreateExportJob(c, jobs) })
	pages.GET("/exports/:id/progress", s.requirePageUser, func(c *gin.Context) { s.pageExportJobProgress(c, jobs) })
	pages.GET("/programs/:code/dashboard", s.requirePageUser, s.pageDashboard)
	pages.GET("/public/programs/:code", s.publicProgram)
}
