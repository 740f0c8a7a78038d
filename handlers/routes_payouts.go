package handlers

import "github.com/gin-gonic/gin"

// routesPayouts registers the payouts area's API (under /api/v1) and pages.
// Finance builds batches, a second finance user approves them, downloads
// bank files and imports bank results; auditors read everything.
func (s *Server) routesPayouts(api, pages *gin.RouterGroup) {
	api.POST("/payout-batches", s.requireUser, s.apiCreatePayoutBatch)
	api.GET("/payout-batches", s.requireUser, s.apiListPayoutBatches)
	api.GET("/payout-batches/:id", s.requireUser, s.apiGetPayoutBatch)
	api.POST("/payout-batches/:id/approve", s.requireUser, s.apiApprovePayoutBatch)
	api.GET("/payout-batches/:id/bank-file", s.requireUser, s.payoutBankFile)
	api.POST("/payout-batches/:id/results", s.requireUser, s.apiPayoutResults)
	api.GET("/payout-batches/:id/reconciliation", s.requireUser, s.apiPayoutReconciliation)
	api.GET("/payout-batches/:id/reconciliation.xlsx", s.requireUser, s.payoutReconciliationSheet)

	pages.GET("/payouts", s.requirePageUser, s.pagePayouts)
	pages.POST("/payouts", s.requirePageUser, s.pageCreatePayoutBatch)
	pages.GET("/payouts/:id", s.requirePageUser, s.pagePayoutBatch)
	pages.GET("/payouts/:id/progress", s.requirePageUser, s.pagePayoutProgress)
	pages.POST("/payouts/:id/approve", s.requirePageUser, s.pageApprovePayoutBatch)
	pages.POST("/payouts/:id/results", s.requirePageUser, s.pagePayoutResults)
	pages.GET("/payouts/:id/bank-file", s.requirePageUser, s.payoutBankFile)
	pages.GET("/payouts/:id/reconciliation", s.requirePageUser, s.pagePayoutReconciliation)
	pages.GET("/payouts/:id/reconciliation.xlsx", s.requirePageUser, s.payoutReconciliationSheet)
}
