package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/relief/relief/models"
)

// Admission control (DESIGN.md, "Surge, reliability, security").
//
// A web process serves at most RELIEF_MAX_INFLIGHT requests at once. Past the
// bound a request is answered at once with 429 and a Retry-After of 2–5 s
// (longer while many are turned away, see retryAfterFor), spread at random so
// the crowd does not come back in step: turning a request
// away costs microseconds, queueing it would make everyone wait until they
// time out. API clients get the JSON error; browsers get the waiting page,
// which retries a GET by itself after Retry-After plus jitter, and for a POST
// (a form) shows a button that submits the same fields again once the wait is
// over, never on its own. Health, readiness, metrics and static assets (the
// waiting page needs its CSS and script) are never turned away.
//
// Staff keep RELIEF_STAFF_RESERVE percent of the bound: merchants are admitted
// only while fewer than (100 − reserve)% of the slots are taken. Admission
// runs before the session is loaded, so staff are recognised by a hint cookie
// set at login: an HMAC of their session token under a key derived from the
// data key, so it cannot be forged or moved to another session, and checking
// it costs no database query. The hint only chooses the share; what a request
// may do is decided by the session, as always.

const ctxRejected = "admission_rejected" // set on requests turned away, for observe

type admission struct {
	limit, publicLimit int64
	inFlight           atomic.Int64

	// filing bounds claim submissions per second (RELIEF_INTAKE_RATE); nil
	// when unbounded. The in-flight bound caps concurrency, but with group
	// commit a few dozen claims in flight already keep a small machine busy:
	// what keeps it answering everyone promptly, 429s included, is a ceiling
	// on the claims it takes on per second, as the waiting rooms of Korean
	// ticketing and public-service sites admit people at a set rate.
	filing *rate.Limiter

	hintOnce sync.Once
	hintKey  []byte

	bodiesOnce sync.Once
	bodies     map[string][]byte // the 429 JSON body per language

	unlogged atomic.Int64 // rejections since the last summary line
	lastLog  atomic.Int64 // UnixNano of the last summary line

	// Rejections per one-second window, for Retry-After (see retryAfterFor).
	rejectSecond atomic.Int64 // Unix second of the current window
	rejectsNow   atomic.Int64 // in the current window
	rejectsLast  atomic.Int64 // in the window before it
}

// rejected counts a turned-away request and returns the rejection rate of
// the last full second (approximate under races, which is all it needs).
func (a *admission) rejected(now time.Time) int64 {
	sec := now.Unix()
	if cur := a.rejectSecond.Load(); cur != sec && a.rejectSecond.CompareAndSwap(cur, sec) {
		last := int64(0)
		if cur == sec-1 {
			last = a.rejectsNow.Load()
		}
		a.rejectsLast.Store(last)
		a.rejectsNow.Store(0)
	}
	a.rejectsNow.Add(1)
	return max(a.rejectsLast.Load(), a.rejectsNow.Load())
}

func newAdmission(limit, staffReservePercent int) *admission {
	limit = max(limit, 1)
	staffReservePercent = min(max(staffReservePercent, 0), 100)
	public := int64(limit) * int64(100-staffReservePercent) / 100
	if public < 1 {
		public = 1
	}
	return &admission{limit: int64(limit), publicLimit: public}
}

// boundFiling admits at most perSecond claim submissions a second, with a
// burst of a tenth of a second's worth; 0 leaves filing unbounded.
func (a *admission) boundFiling(perSecond int) *admission {
	if perSecond > 0 {
		a.filing = rate.NewLimiter(rate.Limit(perSecond), max(1, perSecond/10))
	}
	return a
}

// gateFiling answers API claim submissions over RELIEF_INTAKE_RATE before
// Gin sees them. In a surge nearly every request is one of these, and the
// machine's CPU goes to the admitted claims and to turning the rest away;
// here a refusal costs no routing, context, request id or latency histogram
// (it is counted in relief_admission_rejected_total and the once-a-second
// log line). Form submissions go on to admit, which answers browsers with
// the waiting page.
func (s *Server) gateFiling(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := s.admission; a.filing != nil && apiFiling(r) && !a.filing.Allow() {
			a.logRejected(s.Log)
			s.refusal(w.Header())
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write(a.body(s, langFromRequest(r)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiFiling: a claim submission through the API (POST /api/v1/claims).
func apiFiling(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/api/v1/claims"
}

// formFiling: a claim submitted through the form. (API submissions, the
// other route that files a claim, are bounded in gateFiling: Gin routes
// /api/v1/claims only for that exact path.)
func formFiling(c *gin.Context) bool {
	return c.Request.Method == http.MethodPost && c.FullPath() == "/programs/:code/claim"
}

// acquire takes a slot if one is free in the caller's share.
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

// InFlight is the number of admitted requests being served now.
func (s *Server) InFlight() int64 { return s.admission.inFlight.Load() }

// admissionExempt lists the routes admission control never turns away.
func admissionExempt(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics", "/static/*filepath":
		return true
	}
	return false
}

// rejectBudget is the rate of turned-away requests per process that
// Retry-After aims for: answering 429 is cheap but not free, and on a small
// machine a retry storm of thousands a second starves the admitted requests.
const rejectBudget = 500

// retryAfterFor picks Retry-After at random, so a crowd does not come back in
// step: 2–5 s normally; when more than rejectBudget requests a second are being
// turned away, the window stretches in proportion (up to 30–60 s), so the
// crowd's retries arrive at about the budget's rate and the server keeps its
// CPU for the claims it admits.
func retryAfterFor(rejectsPerSecond int64) int {
	scale := 1 + rejectsPerSecond/rejectBudget
	upper := int(min(5*scale, 60))
	lower := max(2, upper/2)
	return lower + mrand.IntN(upper-lower+1)
}

func (s *Server) admit(c *gin.Context) {
	if admissionExempt(c.FullPath()) {
		c.Next()
		return
	}
	if s.admission.filing != nil && formFiling(c) && !s.admission.filing.Allow() {
		s.turnAway(c)
		return
	}
	if !s.admission.acquire(s.staffRequest(c)) {
		s.turnAway(c)
		return
	}
	defer s.admission.release()
	c.Next()
}

// turnAway answers 429 with Retry-After: JSON for the API, the waiting page
// for browsers.
func (s *Server) turnAway(c *gin.Context) {
	c.Set(ctxRejected, true)
	retry := s.refusal(c.Writer.Header())
	if isAPI(c.Request) {
		c.Data(http.StatusTooManyRequests, "application/json; charset=utf-8", s.admission.body(s, langFromRequest(c.Request)))
		c.Abort()
		return
	}
	s.render(c, http.StatusTooManyRequests, "busy", "title.busy", busyPage(c, retry))
	c.Abort()
}

// refusal counts a turned-away request and sets its Retry-After (returned,
// in seconds) and Cache-Control.
func (s *Server) refusal(h http.Header) int {
	s.metrics.rejected.Inc()
	retry := retryAfterFor(s.admission.rejected(time.Now()))
	h.Set("Retry-After", strconv.Itoa(retry))
	h.Set("Cache-Control", "no-store")
	return retry
}

// body is the API's 429 answer in lang, built once per language.
func (a *admission) body(s *Server, lang string) []byte {
	a.bodiesOnce.Do(func() {
		a.bodies = map[string][]byte{}
		e := models.Coded(models.EOVERLOADED, "overloaded", "too many requests")
		for _, l := range []string{"ko", "en"} {
			b, err := json.Marshal(errorJSON(s.Web.Localizer(l), e))
			if err != nil {
				panic(err)
			}
			a.bodies[l] = b
		}
	})
	if b, ok := a.bodies[lang]; ok {
		return b
	}
	return a.bodies["ko"]
}

// logRejected counts a rejection and, at most once a second, logs how many
// there were since the last line.
func (a *admission) logRejected(log *slog.Logger) {
	a.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := a.lastLog.Load()
	if now-last < int64(time.Second) || !a.lastLog.CompareAndSwap(last, now) {
		return
	}
	n := a.unlogged.Swap(0)
	args := []any{"rejected", n, "in_flight", a.inFlight.Load(), "limit", a.limit, "public_limit", a.publicLimit}
	if last != 0 {
		args = append(args, "since_ms", (now-last)/int64(time.Millisecond))
	}
	log.Warn("admission: requests turned away with 429", args...)
}

// staffHint is the staff hint cookie's value for a session token.
func (s *Server) staffHint(token string) string {
	a := s.admission
	a.hintOnce.Do(func() {
		if s.Store != nil && s.Store.Vault != nil {
			// Derived from the data key: the same on every replica and across
			// restarts, and never the key itself.
			a.hintKey = s.Store.Vault.BlindIndex("relief/admission/staff-hint/v1")
		} else {
			a.hintKey = make([]byte, 32)
			_, _ = rand.Read(a.hintKey)
		}
	})
	m := hmac.New(sha256.New, a.hintKey)
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// staffRequest reports whether the request carries a valid staff hint for
// its session cookie.
func (s *Server) staffRequest(c *gin.Context) bool {
	hint, err := c.Cookie(staffHintCookie)
	if err != nil || hint == "" {
		return false
	}
	token, err := c.Cookie(sessionCookie)
	if err != nil || token == "" {
		return false
	}
	return hmac.Equal([]byte(hint), []byte(s.staffHint(token)))
}

// busyField is one field echoed back into the waiting page's resubmit form.
type busyField struct{ Name, Value string }

// busyPageData is what busy.html shows.
type busyPageData struct {
	RetryAfter int
	// Resubmit: the request was a form POST (or another unsafe method); the
	// page offers a button instead of retrying by itself.
	Resubmit bool
	// Action is where the button sends the form again (this request's path),
	// or the page to go back to when the fields cannot be echoed.
	Action string
	// Fields are the posted fields, echoed as hidden inputs; empty when they
	// cannot be (a password, a file upload, too much data): the merchant then
	// goes back to the form and enters them again.
	Fields []busyField
	// Idempotent: the form carries an Idempotency-Key, so sending it twice
	// still files it once (the page says so).
	Idempotent bool
}

// Limits on what the waiting page echoes back.
const (
	busyMaxFields = 300
	busyMaxBytes  = 64 << 10
)

func busyPage(c *gin.Context, retry int) busyPageData {
	d := busyPageData{RetryAfter: retry}
	r := c.Request
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return d
	}
	d.Resubmit = true
	d.Action = r.URL.Path
	if r.URL.RawQuery != "" {
		d.Action += "?" + r.URL.RawQuery
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return d // multipart (files) or something else: not echoed
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, busyMaxBytes)
	if err := r.ParseForm(); err != nil {
		return d
	}
	names := make([]string, 0, len(r.PostForm))
	for name := range r.PostForm {
		if strings.Contains(strings.ToLower(name), "password") {
			return d // never echo a password into a page
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range r.PostForm[name] {
			if len(d.Fields) == busyMaxFields {
				d.Fields = nil
				return d
			}
			d.Fields = append(d.Fields, busyField{Name: name, Value: v})
		}
	}
	d.Idempotent = r.PostForm.Get("idempotency_key") != ""
	return d
}
