package handlers

import (
	"context"

	"github.com/gin-gonic/gin"
)

// routesReview registers the review area's API (under /api/v1) and pages:
// sales-ledger import, rapid offer, reviewer queue, claim file, decisions,
// documents, info requests and appeals.
func (s *Server) routesReview(api, pages *gin.RouterGroup) {
	// An import left queued or running by a process that died is failed now
	// (and again whenever anyone looks at it): restart safety.
	go s.Store.FailStaleImports(context.Background())

	api.POST("/programs/:code/ledger", s.requireUser, s.apiLedgerImport)
	api.GET("/imports/:id", s.requireUser, s.apiLedgerImportStatus)
	api.GET("/programs/:code/offer", s.requireUser, s.apiOffer)
	api.GET("/review/queue", s.requireUser, s.apiReviewQueue)
	api.GET("/review/claims/:id", s.requireUser, s.apiReviewFile)
	api.POST("/claims/:id/decision", s.requireUser, s.apiDecision)
	api.POST("/claims/:id/info", s.requireUser, s.apiInfo)
	api.POST("/claims/:id/appeal", s.requireUser, s.apiAppeal)
	api.POST("/claims/:id/documents", s.requireUser, s.apiAddDocument)
	api.GET("/claims/:id/documents/:doc", s.requireUser, s.downloadDocument)

	pages.GET("/review", s.requirePageUser, s.pageReviewHome)
	pages.GET("/review/queue", s.requirePageUser, s.pageReviewQueue)
	pages.GET("/review/approvals", s.requirePageUser, s.pageApprovals)
	pages.GET("/review/claims/:id", s.requirePageUser, s.pageReviewClaim)
	pages.POST("/review/claims/:id/decision", s.requirePageUser, s.pageDecisionSubmit)
	pages.GET("/review/claims/:id/documents/:doc", s.requirePageUser, s.downloadDocument)
	pages.GET("/claims/:id/respond", s.requirePageUser, s.pageRespond)
	pages.POST("/claims/:id/info", s.requirePageUser, s.pageInfoSubmit)
	pages.POST("/claims/:id/appeal", s.requirePageUser, s.pageAppealSubmit)
	pages.POST("/claims/:id/documents", s.requirePageUser, s.pageDocumentSubmit)
	pages.GET("/claims/:id/documents/:doc", s.requirePageUser, s.downloadDocument)
	pages.GET("/programs/:code/offer", s.requirePageUser, s.pageOffer)
	pages.GET("/admin/ledger", s.requirePageUser, s.pageLedgerHome)
	pages.GET("/admin/programs/:code/ledger", s.requirePageUser, s.pageLedger)
	pages.POST("/admin/programs/:code/ledger", s.requirePageUser, s.pageLedgerUpload)
	pages.GET("/admin/imports/:id", s.requirePageUser, s.pageImport)
	pages.GET("/admin/imports/:id/progress", s.requirePageUser, s.pageImportProgress)
}
