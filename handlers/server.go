// Package handlers is Relief's HTTP surface (Gin): the JSON API under /api/v1
// and the server-rendered pages. Handlers are thin: they parse, call a
// processing function in models, and render; errors carry their HTTP code
// through models.Error and are mapped in one place (errors.go).
package handlers

import (
	"context"
	"crypto/tls"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/models"
	"github.com/relief/relief/rawnet"
	"github.com/relief/relief/web"
)

// Deps are what the HTTP layer needs.
type Deps struct {
	Store    *models.Store
	Temporal client.Client // for /readyz; may be nil when Temporal is not configured
	Web      *web.Renderer
	Log      *slog.Logger
	Config   *config.Config
	Registry *prometheus.Registry
}

// Server routes requests.
type Server struct {
	Deps
	engine    *gin.Engine
	admission *admission
	metrics   *httpMetrics
	throttle  *loginThrottle
}

// New builds the router.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		Deps:      d,
		engine:    gin.New(),
		admission: newAdmission(d.Config.MaxInFlight, d.Config.StaffReserve).boundFiling(d.Config.IntakeRate),
		metrics:   newHTTPMetrics(d.Registry, d.Store),
		throttle:  newLoginThrottle(),
	}
	s.engine.HandleMethodNotAllowed = true
	s.engine.ContextWithFallback = true
	s.engine.Use(s.observe, s.recover, s.admit, s.loadSession)
	s.engine.NoRoute(func(c *gin.Context) { s.fail(c, models.ErrNotFound) })
	s.engine.NoMethod(func(c *gin.Context) {
		s.fail(c, models.Coded(models.EMALFORMED, "method_not_allowed", "method not allowed"))
	})
	s.routes()
	warmDecoder()
	return s
}

func (s *Server) routes() {
	r := s.engine
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metricsHandler())
	static, _ := fs.Sub(web.Static(), ".")
	r.StaticFS("/static", http.FS(static))

	api := r.Group("/api/v1")
	api.GET("/openapi.json", s.apiOpenAPI)
	api.POST("/merchants/signup", s.apiSignup)
	api.POST("/session", s.apiLogin)
	api.DELETE("/session", s.apiLogout)
	api.GET("/me", s.requireUser, s.apiMe)
	api.GET("/programs", s.apiPrograms)
	api.GET("/programs/:code", s.apiProgram)
	api.POST("/claims", s.requireUser, s.apiFileClaim)
	api.GET("/claims", s.requireUser, s.apiListClaims)
	api.GET("/claims/:id", s.requireUser, s.apiGetClaim)
	api.PUT("/claims/:id/bank", s.requireUser, s.apiCorrectBank)

	r.GET("/", s.pageHome)
	r.GET("/login", s.pageLogin)
	r.POST("/login", s.pageLoginSubmit)
	r.POST("/logout", s.pageLogout)
	r.GET("/signup", s.pageSignup)
	r.POST("/signup", s.pageSignupSubmit)
	r.GET("/lang/:lang", s.pageLanguage)
	r.GET("/programs", s.pagePrograms)
	r.GET("/programs/:code/claim", s.requirePageUser, s.pageClaimForm)
	r.POST("/programs/:code/claim", s.requirePageUser, s.pageClaimSubmit)
	r.GET("/claims", s.requirePageUser, s.pageClaims)
	r.GET("/claims/:id", s.requirePageUser, s.pageClaim)
	r.GET("/claims/:id/timeline", s.requirePageUser, s.pageClaimTimeline)
	r.POST("/claims/:id/bank", s.requirePageUser, s.pageCorrectBank)

	// Feature areas register their own routes (one file each).
	s.routesReview(api, r.Group(""))
	s.routesInstruments(api, r.Group(""))
	s.routesPayouts(api, r.Group(""))
	s.routesExports(api, r.Group(""))
	s.routesSecurity(api, r.Group(""))
}

// Routes lists every registered route (the access-control matrix test uses it).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// Handler is the complete HTTP handler: Go's cross-origin protection (CSRF
// defence: browsers' Sec-Fetch-Site / Origin must be same-origin for unsafe
// methods) around the router.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, r, s.Web, http.StatusForbidden, models.Coded(models.EFORBIDDEN, "cross_origin", "cross-origin request refused"))
	}))
	return s.withSecurityHeaders(cop.Handler(s.gateFiling(s.engine)))
}

// ListenAndServe serves until ctx ends, then drains in-flight requests.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(addr string)) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute, // exports stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn), // TLS handshake noise as JSON, not on stderr
	}
	ln, err := rawnet.Listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() {
		if s.Config.TLSCert != "" { // RELIEF_TLS_CERT / RELIEF_TLS_KEY: HTTPS (TLS 1.2+)
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			errc <- srv.ServeTLS(ln, s.Config.TLSCert, s.Config.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
