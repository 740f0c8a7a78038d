package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

const (
	ctxRequestID = "request_id"
	ctxUser      = "user"
	ctxToken     = "session_token"
)

// observe assigns a request id, logs one JSON line per request (route template,
// never the raw query, which may carry a BRN) and records metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-ID")
	if len(id) == 0 || len(id) > 64 {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	s.metrics.observe(c.Request.Method, route, status, elapsed)
	if route == "/metrics" || route == "/healthz" || route == "/readyz" || route == "/static/*filepath" {
		return
	}
	s.Log.Info("http", "request_id", id, "method", c.Request.Method, "route", route, "status", status,
		"ms", float64(elapsed.Microseconds())/1000, "bytes", c.Writer.Size())
}

// recover turns a panic into a logged 500 instead of a dropped connection.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.fail(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	if s.Config.SecureCookies {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	c.Next()
}

// admission bounds requests in flight. Past the bound the answer is an
// immediate 429 with Retry-After: a crowd is turned away in microseconds
// instead of queueing until everyone times out. Staff keep a reserved share.
type admission struct {
	limit, publicLimit int64
	inFlight           atomic.Int64
}

func newAdmission(limit, staffReservePercent int) *admission {
	public := int64(limit) * int64(100-staffReservePercent) / 100
	if public < 1 {
		public = 1
	}
	return &admission{limit: int64(limit), publicLimit: public}
}

func (a *admission) acquire(staff bool) bool {
	limit := a.publicLimit
	if staff {
		limit = a.limit
	}
	if a.inFlight.Add(1) > limit {
		a.inFlight.Add(-1)
		return false
	}
	return true
}

func (a *admission) release() { a.inFlight.Add(-1) }

func (s *Server) admit(c *gin.Context) {
	switch c.FullPath() {
	case "/healthz", "/readyz", "/metrics", "/static/*filepath":
		c.Next()
		return
	}
	// Whether the caller is staff is read from a hint cookie set at login: cheap,
	// and forging it only moves a merchant into the staff share, which the
	// staff-only routes then refuse anyway.
	staff := false
	if v, err := c.Cookie(staffHintCookie); err == nil && v == "1" {
		staff = true
	}
	if !s.admission.acquire(staff) {
		s.metrics.rejected.Inc()
		retry := 2 + time.Now().UnixNano()%4 // 2–5 s, spread so retries don't synchronise
		c.Header("Retry-After", strconv.FormatInt(retry, 10))
		if isAPI(c.Request) {
			c.AbortWithStatusJSON(http.StatusTooManyRequests, errorJSON(s.localizer(c), models.Coded(models.EOVERLOADED, "overloaded", "too many requests")))
			return
		}
		s.render(c, http.StatusTooManyRequests, "busy", "title.busy", map[string]any{"RetryAfter": retry})
		c.Abort()
		return
	}
	defer s.admission.release()
	c.Next()
}
