package handlers

import "github.com/gin-gonic/gin"

// routesInstruments registers the instruments area's API (under /api/v1) and
// pages: goods offers, pre-purchase tranches and purchase orders, fee waivers.
func (s *Server) routesInstruments(api, pages *gin.RouterGroup) {
	api.PUT("/claims/:id/goods", s.requireUser, s.apiReplaceGoods)
	api.GET("/programs/:code/budgets", s.requireUser, s.apiBudgets)
	api.GET("/programs/:code/tranches", s.requireUser, s.apiListTranches)
	api.POST("/programs/:code/tranches", s.requireUser, s.apiCreateTranche)
	api.GET("/tranches/:id", s.requireUser, s.apiGetTranche)
	api.GET("/tranches/:id/preview", s.requireUser, s.apiGetPreview)
	api.POST("/tranches/:id/preview", s.requireUser, s.apiPreviewTranche)
	api.POST("/tranches/:id/approve", s.requireUser, s.apiApproveTranche)
	api.GET("/tranches/:id/purchase-orders", s.requireUser, s.apiListPurchaseOrders)
	api.GET("/tranches/:id/sheet.xlsx", s.requireUser, s.apiTrancheSheet)
	api.POST("/purchase-orders/:id/receive", s.requireUser, s.apiReceivePurchaseOrder)
	api.POST("/programs/:code/fee-waivers/run", s.requireUser, s.apiRunFeeWaivers)
	api.GET("/programs/:code/fee-waivers", s.requireUser, s.apiListFeeWaivers)

	pages.GET("/programs/:code/instruments", s.requirePageUser, s.pageInstruments)
	pages.POST("/programs/:code/tranches", s.requirePageUser, s.pageCreateTranche)
	pages.GET("/tranches/:id", s.requirePageUser, s.pageTranche)
	pages.GET("/tranches/:id/progress", s.requirePageUser, s.pageTrancheProgress)
	pages.POST("/tranches/:id/preview", s.requirePageUser, s.pagePreviewTranche)
	pages.POST("/tranches/:id/approve", s.requirePageUser, s.pageApproveTranche)
	pages.POST("/purchase-orders/:id/receive", s.requirePageUser, s.pageReceivePurchaseOrder)
	pages.GET("/programs/:code/fee-waivers", s.requirePageUser, s.pageFeeWaivers)
	pages.POST("/programs/:code/fee-waivers/run", s.requirePageUser, s.pageRunFeeWaivers)
	pages.GET("/claims/:id/goods", s.requirePageUser, s.pageGoods)
	pages.POST("/claims/:id/goods", s.requirePageUser, s.pageGoodsSubmit)
}
