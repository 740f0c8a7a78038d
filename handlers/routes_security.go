package handlers

import (
	"github.com/gin-gonic/gin"
)

// routesSecurity registers the security area's API (under /api/v1) and pages.
func (s *Server) routesSecurity(api, pages *gin.RouterGroup) {
	// The client address (login throttling, audit log) comes from the socket
	// unless the request came through a configured proxy: gin otherwise
	// believes any X-Forwarded-For, and a spoofed header would dodge the
	// per-address throttle and forge audit entries.
	if err := s.engine.SetTrustedProxies(s.Config.TrustedProxies); err != nil {
		panic("RELIEF_TRUSTED_PROXIES passed validation but gin refused it: " + err.Error())
	}

	api.GET("/audit/personal-data-views", s.requireUser, s.apiPersonalDataViews)
	pages.GET("/audit/personal-data", s.requirePageUser, s.pagePersonalDataViews)
}
