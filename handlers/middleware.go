package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
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
	if c.GetBool(ctxRejected) {
		// A surge turns thousands of requests a second away; they are counted
		// in relief_admission_rejected_total and summed up in one log line a
		// second instead of one line each.
		s.admission.logRejected(s.Log)
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
