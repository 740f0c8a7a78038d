package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/relief/relief/models"
)

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz answers 200 only when PostgreSQL and Temporal both answer, else 503
// naming what is down, so a load balancer stops sending traffic here.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c, 2*time.Second)
	defer cancel()
	checks := gin.H{}
	down := []string{}
	if err := s.Store.Ping(ctx); err != nil {
		checks["postgres"] = "down"
		down = append(down, "postgres")
	} else {
		checks["postgres"] = "ok"
	}
	if s.Temporal == nil {
		checks["temporal"] = "not_configured"
		down = append(down, "temporal")
	} else if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = "down"
		down = append(down, "temporal")
	} else {
		checks["temporal"] = "ok"
	}
	if len(down) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "down": down, "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rejected    prometheus.Counter
	claimsFiled prometheus.Counter
}

func newHTTPMetrics(reg *prometheus.Registry, store *models.Store) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relief_http_requests_total", Help: "HTTP requests by route and status."},
			[]string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "relief_http_request_duration_seconds", Help: "HTTP request latency.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"method", "route"}),
		rejected:    prometheus.NewCounter(prometheus.CounterOpts{Name: "relief_admission_rejected_total", Help: "Requests turned away with 429 by admission control."}),
		claimsFiled: prometheus.NewCounter(prometheus.CounterOpts{Name: "relief_claims_filed_total", Help: "Claims accepted (202)."}),
	}
	reg.MustRegister(m.requests, m.duration, m.rejected, m.claimsFiled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relief_intake_group_statements_total", Help: "Statements that wrote several claims at once (group commit)."},
			func() float64 { n, _ := store.IntakeGroups(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relief_intake_grouped_claims_total", Help: "Claims written by group statements."},
			func() float64 { _, n := store.IntakeGroups(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relief_session_cache_hits_total", Help: "Session lookups answered from this process's cache."},
			func() float64 { h, _ := store.SessionCacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "relief_session_cache_misses_total", Help: "Session lookups that asked the database."},
			func() float64 { _, m := store.SessionCacheStats(); return float64(m) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "relief_outbox_backlog", Help: "Outbox messages not yet delivered to Temporal."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				n, err := store.OutboxBacklog(ctx)
				if err != nil {
					return -1
				}
				return float64(n)
			}),
	)
	return m
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func (s *Server) metricsHandler() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
