package handlers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/web"
)

func TestAdmissionKeepsTheStaffShare(t *testing.T) {
	a := newAdmission(10, 20) // merchants get 8 slots, staff all 10
	for i := range 8 {
		if !a.acquire(false) {
			t.Fatalf("public request %d refused below the public bound", i+1)
		}
	}
	if a.acquire(false) {
		t.Fatal("a 9th public request was admitted past the public share")
	}
	for i := range 2 {
		if !a.acquire(true) {
			t.Fatalf("staff request %d refused while their reserve is free", i+1)
		}
	}
	if a.acquire(true) {
		t.Fatal("staff admitted past the whole bound")
	}
	a.release()
	if a.acquire(false) {
		t.Fatal("public request took the freed staff slot")
	}
	if !a.acquire(true) {
		t.Fatal("staff refused a freed slot")
	}
	if got := a.inFlight.Load(); got != 10 {
		t.Fatalf("in flight = %d, want 10", got)
	}
	for range 10 {
		a.release()
	}
	if got := a.inFlight.Load(); got != 0 {
		t.Fatalf("in flight after releasing all = %d", got)
	}
}

func TestAdmissionBounds(t *testing.T) {
	for _, c := range []struct {
		limit, reserve    int
		wantPublic, total int64
	}{
		{256, 10, 230, 256},
		{1, 10, 1, 1},    // never zero: merchants are always served at all
		{10, 100, 1, 10}, // a full reserve still leaves merchants one slot
		{10, 0, 10, 10},  // no reserve
		{0, 10, 1, 1},    // nonsense bounds are clamped
		{100, -5, 100, 100},
	} {
		a := newAdmission(c.limit, c.reserve)
		if a.publicLimit != c.wantPublic || a.limit != c.total {
			t.Errorf("newAdmission(%d, %d) = public %d / total %d, want %d / %d", c.limit, c.reserve, a.publicLimit, a.limit, c.wantPublic, c.total)
		}
	}
}

func TestAdmissionConcurrentNeverExceedsTheBound(t *testing.T) {
	a := newAdmission(16, 25)
	var peak sync.Mutex
	maxSeen := int64(0)
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				staff := g%4 == 0
				if a.acquire(staff) {
					n := a.inFlight.Load()
					peak.Lock()
					maxSeen = max(maxSeen, n)
					peak.Unlock()
					a.release()
				}
			}
		}()
	}
	wg.Wait()
	if maxSeen > 16 {
		t.Fatalf("saw %d in flight, bound 16", maxSeen)
	}
	if a.inFlight.Load() != 0 {
		t.Fatalf("in flight = %d after everyone left", a.inFlight.Load())
	}
}

func TestRetryAfterIsSpread(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		v := retryAfterFor(0)
		if v < 2 || v > 5 {
			t.Fatalf("Retry-After %d outside 2–5 s", v)
		}
		seen[v] = true
	}
	if len(seen) < 3 {
		t.Fatalf("Retry-After takes only %d values: a crowd would come back in step", len(seen))
	}
}

func TestRetryAfterStretchesWithTheRejectionRate(t *testing.T) {
	bounds := func(rate int64) (lo, hi int) {
		lo, hi = 1<<30, 0
		for range 2000 {
			v := retryAfterFor(rate)
			lo, hi = min(lo, v), max(hi, v)
		}
		return lo, hi
	}
	if lo, hi := bounds(rejectBudget - 1); lo != 2 || hi != 5 {
		t.Fatalf("below the budget: %d–%d s, want 2–5 s", lo, hi)
	}
	prevLo := 0
	for _, rate := range []int64{rejectBudget, 2 * rejectBudget, 4 * rejectBudget, 10 * rejectBudget, 1000 * rejectBudget} {
		lo, hi := bounds(rate)
		if lo < prevLo || hi > 60 || lo < 2 {
			t.Fatalf("at %d rejections/s: %d–%d s (previous lower bound %d)", rate, lo, hi, prevLo)
		}
		prevLo = lo
	}
	// At ten times the budget the crowd waits long enough to come back at
	// about the budget's rate: at least 20 s on average.
	if lo, _ := bounds(10 * rejectBudget); lo < 20 {
		t.Fatalf("at 10× the budget the shortest Retry-After is %d s", lo)
	}
	if lo, hi := bounds(1000 * rejectBudget); lo != 30 || hi != 60 {
		t.Fatalf("far over the budget: %d–%d s, want 30–60 s", lo, hi)
	}
}

func TestRejectionRateIsCountedPerSecond(t *testing.T) {
	a := newAdmission(1, 0)
	t0 := time.Unix(1_000_000, 0)
	for i := range 10 {
		if got := a.rejected(t0); got != int64(i+1) {
			t.Fatalf("rejection %d in the first second: rate %d", i+1, got)
		}
	}
	if got := a.rejected(t0.Add(time.Second)); got != 10 {
		t.Fatalf("in the next second the rate is the last full second's: %d, want 10", got)
	}
	if got := a.rejected(t0.Add(5 * time.Second)); got != 1 {
		t.Fatalf("after a quiet gap the rate starts again: %d, want 1", got)
	}
}

func TestBusyPageEchoesFormsButNotPasswords(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	page := func(method, ct, body string) busyPageData {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(method, "/programs/KPOST-2025-NIRS/claim?x=1", strings.NewReader(body))
		if ct != "" {
			c.Request.Header.Set("Content-Type", ct)
		}
		return busyPage(c, 3)
	}
	if d := page(http.MethodGet, "", ""); d.Resubmit || d.RetryAfter != 3 {
		t.Fatalf("GET: %+v", d)
	}
	form := url.Values{"brn": {"120-81-47521"}, "goods_sku": {"A-1", "B-2"}, "idempotency_key": {"k1"}}
	d := page(http.MethodPost, "application/x-www-form-urlencoded", form.Encode())
	if !d.Resubmit || !d.Idempotent || d.Action != "/programs/KPOST-2025-NIRS/claim?x=1" {
		t.Fatalf("POST: %+v", d)
	}
	want := []busyField{{"brn", "120-81-47521"}, {"goods_sku", "A-1"}, {"goods_sku", "B-2"}, {"idempotency_key", "k1"}}
	if len(d.Fields) != len(want) {
		t.Fatalf("fields %v, want %v", d.Fields, want)
	}
	for i := range want {
		if d.Fields[i] != want[i] {
			t.Fatalf("fields %v, want %v", d.Fields, want)
		}
	}
	login := url.Values{"email": {"a@example.kr"}, "password": {"secret secret"}}
	if d := page(http.MethodPost, "application/x-www-form-urlencoded", login.Encode()); !d.Resubmit || len(d.Fields) != 0 || d.Action != "/programs/KPOST-2025-NIRS/claim?x=1" {
		t.Fatalf("a form with a password must not be echoed: %+v", d)
	}
	if d := page(http.MethodPost, "multipart/form-data; boundary=x", "--x--"); !d.Resubmit || len(d.Fields) != 0 {
		t.Fatalf("multipart must not be echoed: %+v", d)
	}
	many := url.Values{}
	for i := range busyMaxFields + 1 {
		many.Add("f", strconv.Itoa(i))
	}
	if d := page(http.MethodPost, "application/x-www-form-urlencoded", many.Encode()); len(d.Fields) != 0 {
		t.Fatalf("%d fields echoed past the limit", len(d.Fields))
	}
}

// floodServer is the real handler chain with a tiny admission bound and one
// extra route that holds its request until released, to fill the bound.
type floodServer struct {
	*Server
	url     string
	release chan struct{}
	store   *models.Store
}

func newFloodServer(t *testing.T, limit, reserve int) *floodServer {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	env := map[string]string{"DATABASE_URL": db, "RELIEF_DATA_KEY": vault.NewKeySpec("t1"), "RELIEF_ADDR": "127.0.0.1:0",
		"RELIEF_MAX_INFLIGHT": strconv.Itoa(limit), "RELIEF_STAFF_RESERVE": strconv.Itoa(reserve)}
	cfg, err := config.FromEnv(config.ModeServe, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, db, 8, cfg.Vault)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	renderer, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Store: store, Web: renderer, Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f := &floodServer{Server: s, release: make(chan struct{}), store: store}
	s.engine.GET("/api/v1/test-hold", func(c *gin.Context) {
		<-f.release
		c.Status(http.StatusNoContent)
	})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

// login signs a new user in through the API and returns the Cookie header.
func (f *floodServer) login(t *testing.T, email string, roles []string, agency string) string {
	t.Helper()
	if _, err := f.store.CreateUser(context.Background(), models.NewUser{Email: email, Name: "테스트", Password: "correct horse battery", Roles: roles, Agency: agency}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(f.url+"/api/v1/session", "application/json", strings.NewReader(`{"email":"`+email+`","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d", email, resp.StatusCode)
	}
	var parts []string
	for _, ck := range resp.Cookies() {
		if ck.Value != "" {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	return strings.Join(parts, "; ")
}

type floodAnswer struct {
	status int
	header http.Header
	body   string
}

func (f *floodServer) do(t *testing.T, method, path, cookie, accept string, form url.Values) floodAnswer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return floodAnswer{resp.StatusCode, resp.Header, string(b)}
}

func check429(t *testing.T, what string, a floodAnswer) {
	t.Helper()
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429: %.200s", what, a.status, a.body)
	}
	if n, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || n < 2 || n > 5 {
		t.Fatalf("%s: Retry-After %q, want 2–5 s", what, a.header.Get("Retry-After"))
	}
}

// TestAdmissionUnderFlood fills the public share with held requests, floods
// the server, and checks: every merchant request is turned away with 429 and
// Retry-After (JSON for the API, the waiting page for browsers, a resubmit
// button for a form), staff are still served from their reserve, a forged
// staff hint is not, health and static assets stay up, and everything works
// again once the held requests finish.
func TestAdmissionUnderFlood(t *testing.T) {
	f := newFloodServer(t, 10, 20) // merchants 8 slots, staff 10
	staff := f.login(t, "reviewer@flood.kr", []string{models.RoleReviewer}, "KPOST")
	merchant := f.login(t, "merchant@flood.kr", []string{models.RoleMerchant}, "")
	if !strings.Contains(staff, staffHintCookie+"=") || strings.Contains(merchant, staffHintCookie+"=") {
		t.Fatalf("staff hint cookie: staff %q, merchant %q", staff, merchant)
	}

	var held sync.WaitGroup
	for range 8 {
		held.Add(1)
		go func() {
			defer held.Done()
			if a := f.do(t, http.MethodGet, "/api/v1/test-hold", "", "", nil); a.status != http.StatusNoContent {
				t.Errorf("held request: %d", a.status)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.InFlight() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests in flight", f.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A flood of merchants: every one is turned away, none admitted.
	var wg sync.WaitGroup
	statuses := make([]int, 200)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := f.do(t, http.MethodGet, "/api/v1/me", merchant, "application/json", nil)
			statuses[i] = a.status
			if a.status == http.StatusTooManyRequests {
				check429(t, "flooding merchant", a)
			}
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusTooManyRequests {
			t.Fatalf("flood request %d: %d, want 429", i, st)
		}
	}
	a := f.do(t, http.MethodGet, "/api/v1/me", merchant, "application/json", nil)
	check429(t, "API", a)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Code != "overloaded" || e.Error.Message == "" {
		t.Fatalf("429 body %q (%v)", a.body, err)
	}

	// Staff keep their reserve; a merchant with a forged or borrowed hint does not.
	if a := f.do(t, http.MethodGet, "/api/v1/me", staff, "application/json", nil); a.status != http.StatusOK {
		t.Fatalf("staff during the flood: %d %.200s", a.status, a.body)
	}
	var staffHint string
	for _, part := range strings.Split(staff, "; ") {
		if v, ok := strings.CutPrefix(part, staffHintCookie+"="); ok {
			staffHint = v
		}
	}
	for _, forged := range []string{"1", staffHint} {
		check429(t, "forged staff hint", f.do(t, http.MethodGet, "/api/v1/me", merchant+"; "+staffHintCookie+"="+forged, "application/json", nil))
	}

	// Health, readiness and static assets are never turned away.
	if a := f.do(t, http.MethodGet, "/healthz", "", "", nil); a.status != http.StatusOK {
		t.Fatalf("/healthz during the flood: %d", a.status)
	}
	if a := f.do(t, http.MethodGet, "/static/app.js", "", "", nil); a.status != http.StatusOK {
		t.Fatalf("/static/app.js during the flood: %d", a.status)
	}

	// Browsers: a page retries by itself; a form gets a button with its fields.
	a = f.do(t, http.MethodGet, "/programs", merchant, "text/html", nil)
	check429(t, "page", a)
	if !strings.Contains(a.body, "data-busy-reload=") || strings.Contains(a.body, "busy-resubmit") {
		t.Fatalf("waiting page for a GET: %s", a.body)
	}
	form := url.Values{"brn": {"120-81-47521"}, "business_name": {"대전상회"}, "idempotency_key": {"form-key-1"}}
	a = f.do(t, http.MethodPost, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", form)
	check429(t, "form", a)
	for _, want := range []string{`data-busy-wait=`, `data-testid="busy-resubmit"`, `name="idempotency_key" value="form-key-1"`,
		`name="business_name" value="대전상회"`, `action="/programs/` + models.DemoProgram + `/claim"`} {
		if !strings.Contains(a.body, want) {
			t.Fatalf("waiting page for a form lacks %s:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, "data-busy-reload") {
		t.Fatal("a form's waiting page must not reload (resubmit) by itself")
	}

	close(f.release)
	held.Wait()
	if a := f.do(t, http.MethodGet, "/api/v1/me", merchant, "application/json", nil); a.status != http.StatusOK {
		t.Fatalf("after the flood: %d", a.status)
	}
	m := f.do(t, http.MethodGet, "/metrics", "", "", nil)
	if !strings.Contains(m.body, "relief_admission_rejected_total") || strings.Contains(m.body, "relief_admission_rejected_total 0\n") {
		t.Fatalf("rejections not counted in /metrics")
	}
}

// With RELIEF_INTAKE_RATE, claim submissions beyond the rate are turned away
// at once (before the session or the body is looked at), while everything
// else a merchant does is still served, and filing resumes as tokens refill.
func TestFilingRateBound(t *testing.T) {
	f := newFloodServer(t, 100, 10)
	f.admission.boundFiling(10) // 10 claims/s, burst 1
	merchant := f.login(t, "filer@flood.kr", []string{models.RoleMerchant}, "")
	form := url.Values{"brn": {"120-81-47521"}}
	admitted, turned := 0, 0
	start := time.Now()
	for range 30 {
		a := f.do(t, http.MethodPost, "/api/v1/claims", merchant, "application/json", form)
		if a.status == http.StatusTooManyRequests {
			check429(t, "filing past the rate", a)
			turned++
		} else {
			admitted++ // refused for its content (no Idempotency-Key), but admitted
		}
		if a := f.do(t, http.MethodGet, "/api/v1/me", merchant, "application/json", nil); a.status != http.StatusOK {
			t.Fatalf("reading while filing is bounded: %d", a.status)
		}
	}
	allowed := 1 + int(10*time.Since(start).Seconds()) + 1
	if admitted < 1 || admitted > allowed || turned == 0 {
		t.Fatalf("30 submissions in %s: %d admitted (at most %d allowed), %d turned away", time.Since(start), admitted, allowed, turned)
	}
	if a := f.do(t, http.MethodPost, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", form); a.status != http.StatusTooManyRequests {
		// the bucket may have refilled one token meanwhile: drain it and try again
		if a = f.do(t, http.MethodPost, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", form); a.status != http.StatusTooManyRequests {
			t.Fatalf("form submissions share the bound: %d", a.status)
		}
	}
	time.Sleep(250 * time.Millisecond)
	if a := f.do(t, http.MethodPost, "/api/v1/claims", merchant, "application/json", form); a.status == http.StatusTooManyRequests {
		t.Fatal("filing did not resume once the rate allowed it")
	}
}
