package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/cmd/relief/app"
	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows/claim"
)

// One Temporal server for the binary. The tests boot the program one at a
// time, and each boot's worker stops before the next starts: they share the
// namespace and task queues, and a worker must only see its own database.
var ts *temporaltest.TestServer

func TestMain(m *testing.M) {
	ts = temporaltest.NewServer()
	pgtest.Main(m)
}

// program is a booted Relief: web server, outbox dispatcher and Temporal
// worker, running through app.Run exactly as `relief serve` + `relief worker`.
type program struct {
	url   string
	store *models.Store // a separate pool on the same database, for assertions
	logs  *syncBuffer   // the program's JSON log
}

// bootOptions vary a boot: extra environment (RELIEF_BANK_URL, say), the log
// level kept, and whether the demo budgets are funded as `relief dev` does.
type bootOptions struct {
	env         map[string]string
	logLevel    slog.Level
	instruments bool
}

func boot(t *testing.T) *program { return bootWith(t, bootOptions{logLevel: slog.LevelInfo}) }

func bootWith(t *testing.T, o bootOptions) *program {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	env := map[string]string{
		"DATABASE_URL":       db,
		"TEMPORAL_ADDRESS":   ts.GetFrontendHostPort(),
		"TEMPORAL_NAMESPACE": ts.GetDefaultNamespace(),
		"RELIEF_ADDR":        "127.0.0.1:0",
		"RELIEF_HOME":        t.TempDir(),
		"RELIEF_DATA_KEY":    vault.NewKeySpec("e2e"),
		"RELIEF_LOG_LEVEL":   "info",
	}
	for k, v := range o.env {
		env[k] = v
	}
	cfg, err := config.FromEnv(config.ModeServe, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, db, 4, cfg.Vault)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if o.instruments { // entitlements draw on the program's budgets
		if err := store.SeedInstruments(ctx); err != nil {
			t.Fatal(err)
		}
	}

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: o.logLevel}))
	runCtx, stop := context.WithCancel(ctx)
	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		exited <- app.Run(runCtx, cfg, log, app.Options{Web: true, Dispatcher: true, Worker: true, Ready: func(addr string) { ready <- addr }})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("app.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("app.Run did not return within 30 s of cancellation")
		}
		if t.Failed() {
			t.Logf("program log (last 8 KiB):\n%s", logs.tail(8<<10))
		}
	})
	select {
	case addr := <-ready:
		return &program{url: "http://" + addr, store: store, logs: logs}
	case err := <-exited:
		t.Fatalf("app.Run ended before listening: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the program did not listen within 60 s")
	}
	return nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	return s[max(0, len(s)-n):]
}

// status reads a claim's status from the database.
func (p *program) status(t *testing.T, id uuid.UUID) string {
	t.Helper()
	var s string
	if err := p.store.Pool.QueryRow(context.Background(), `SELECT status FROM claims WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// assertWorkflowInReview checks the claim's workflow exists under its
// deterministic ID and says in_review through its state query.
func assertWorkflowInReview(t *testing.T, id uuid.UUID) {
	t.Helper()
	v, err := ts.GetDefaultClient().QueryWorkflow(context.Background(), claim.WorkflowID(id), "", claim.QueryState)
	if err != nil {
		t.Fatalf("query %s: %v", claim.WorkflowID(id), err)
	}
	var st claim.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.ClaimID != id || st.Status != models.StatusInReview || !slices.Equal(st.Steps, []string{models.StatusVerifying, models.StatusInReview}) {
		t.Fatalf("workflow state = %+v", st)
	}
	t.Cleanup(func() { // it waits for a reviewer forever
		_ = ts.GetDefaultClient().TerminateWorkflow(context.Background(), claim.WorkflowID(id), "", "test over")
	})
}

// TestE2EHTTPClaimReachesReview drives the JSON API of the booted program:
// signup, login, file a claim (202 at once), then the dispatcher and the worker
// carry it to in_review; health, readiness and metrics answer.
func TestE2EHTTPClaimReachesReview(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole program")
	}
	p := boot(t)
	api := newAPIClient(t, p.url)
	api.hc.Timeout = 10 * time.Second
	call := api.call
	must := func(want int, got int, body []byte, what string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: status %d, want %d: %s", what, got, want, body)
		}
	}

	st, b := call("GET", "/healthz", nil)
	must(http.StatusOK, st, b, "healthz")
	st, b = call("GET", "/readyz", nil)
	must(http.StatusOK, st, b, "readyz (PostgreSQL and Temporal both up)")

	st, b = call("POST", "/api/v1/merchants/signup", map[string]string{"email": "e2e@example.kr", "password": "correct horse battery", "name": "김상인", "phone": "010-1111-2222"})
	must(http.StatusCreated, st, b, "signup")
	st, b = call("POST", "/api/v1/session", map[string]string{"email": "e2e@example.kr", "password": "correct horse battery"})
	must(http.StatusOK, st, b, "login")

	claimBody := map[string]any{"program": models.DemoProgram, "brn": "120-81-47521", "business_name": "대전상회", "representative": "김대전",
		"phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": 3_500_000,
		"bank":  map[string]any{"bank_code": "004", "account_number": "12345678901234", "holder": "김대전"},
		"goods": []map[string]any{{"sku": "A-1", "name": "사과", "unit_price": 25000, "quantity": 120, "perishable": true}}}
	start := time.Now()
	st, b = call("POST", "/api/v1/claims", claimBody, "Idempotency-Key", "e2e-1")
	must(http.StatusAccepted, st, b, "file claim")
	var filed struct {
		ID        uuid.UUID `json:"id"`
		ReceiptNo string    `json:"receipt_no"`
		Status    string    `json:"status"`
	}
	if err := json.Unmarshal(b, &filed); err != nil || filed.Status != models.StatusReceived || filed.ReceiptNo == "" {
		t.Fatalf("202 body %s (%v)", b, err)
	}

	var got struct {
		Status   string `json:"status"`
		Timeline []struct {
			Status string `json:"status"`
		} `json:"timeline"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, b = call("GET", "/api/v1/claims/"+filed.ID.String(), nil)
		must(http.StatusOK, st, b, "get claim")
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status == models.StatusInReview {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim still %q after 30 s: %s", got.Status, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("filed → in_review in %v", time.Since(start).Round(time.Millisecond))
	var steps []string
	for _, e := range got.Timeline {
		steps = append(steps, e.Status)
	}
	if !slices.Equal(steps, []string{models.StatusReceived, models.StatusVerifying, models.StatusInReview}) {
		t.Fatalf("timeline = %v, want [received verifying in_review]", steps)
	}
	assertWorkflowInReview(t, filed.ID)

	st, b = call("GET", "/metrics", nil)
	must(http.StatusOK, st, b, "metrics")
	if !strings.Contains(string(b), "relief_claims_filed_total 1\n") {
		t.Fatalf("metrics lack relief_claims_filed_total 1:\n%s", grepLines(string(b), "relief_"))
	}
	if !strings.Contains(string(b), "relief_outbox_backlog 0\n") {
		t.Errorf("outbox backlog not drained:\n%s", grepLines(string(b), "relief_outbox"))
	}

	// A retry of the same request is answered from the record, not filed twice.
	st, b2 := call("POST", "/api/v1/claims", claimBody, "Idempotency-Key", "e2e-1")
	if st != http.StatusAccepted || !strings.Contains(string(b2), filed.ID.String()) {
		t.Fatalf("replay: %d %s", st, b2)
	}
	if n := p.count(t, `SELECT count(*) FROM claims`); n != 1 {
		t.Fatalf("claims after the replay = %d, want 1", n)
	}
}

func (p *program) count(t *testing.T, sql string) int {
	t.Helper()
	var n int
	if err := p.store.Pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// chromium finds the browser: RELIEF_CHROME, else the usual names on PATH.
func chromium(t *testing.T) string {
	if p := os.Getenv("RELIEF_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install chromium or set RELIEF_CHROME (run with -short to leave out the browser test)")
	return ""
}

// TestE2EBrowserSignupFileClaimSeeReview is the walking skeleton in a real
// browser: open the site, sign up (회원가입), open the programs, 신청하기 on
// KPOST-2025-NIRS, fill the Korean claim form, submit, see the receipt number
// and the status turn to 검토중; then switch to English.
func TestE2EBrowserSignupFileClaimSeeReview(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole program and a browser")
	}
	p := boot(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(browserDataDir(t)),
		chromedp.WindowSize(1280, 1600),
		chromedp.Flag("accept-lang", "ko-KR,ko"), // a Korean merchant's browser
		chromedp.Flag("lang", "ko-KR"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	// Runs before the browser goes away (defers run last-in first-out).
	defer func() {
		if !t.Failed() {
			return
		}
		var png []byte
		sctx, scancel := context.WithTimeout(bctx, 10*time.Second)
		defer scancel()
		if err := chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		dir := os.Getenv("RELIEF_E2E_ARTIFACTS") // kept after the test, unlike t.TempDir
		if dir == "" {
			dir = t.TempDir()
		}
		path := filepath.Join(dir, "e2e-browser-failure.png")
		if err := os.WriteFile(path, png, 0o644); err == nil {
			t.Logf("screenshot of the failure: %s", path)
		}
		var html string
		if chromedp.Run(sctx, chromedp.OuterHTML("main", &html, chromedp.ByQuery)) == nil {
			t.Logf("page <main>:\n%s", html)
		}
	}()
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery, chromedp.NodeVisible))
		return strings.TrimSpace(s)
	}
	location := func() string {
		var loc string
		run("location", chromedp.Location(&loc))
		return strings.TrimPrefix(loc, p.url)
	}

	// Home, in Korean by default; 회원가입 in the header.
	run("open home", chromedp.Navigate(p.url+"/"), chromedp.WaitVisible(`header a[href="/signup"]`, chromedp.ByQuery))
	if got := text(`header a[href="/signup"]`); got != "회원가입" {
		t.Fatalf("signup link reads %q, want 회원가입", got)
	}
	var lang string
	run("html lang", chromedp.AttributeValue("html", "lang", &lang, nil, chromedp.ByQuery))
	if lang != "ko" {
		t.Fatalf("default language %q, want ko", lang)
	}
	run("go to signup", chromedp.Click(`header a[href="/signup"]`, chromedp.ByQuery), chromedp.WaitVisible(`#email`, chromedp.ByID))
	if loc := location(); loc != "/signup" {
		t.Fatalf("at %s, want /signup", loc)
	}

	// Sign up: straight into the programs list, signed in.
	run("sign up",
		chromedp.SendKeys(`#email`, "browser@example.kr", chromedp.ByID),
		chromedp.SendKeys(`#name`, "김브라우저", chromedp.ByID),
		chromedp.SendKeys(`#phone`, "010-2222-3333", chromedp.ByID),
		chromedp.SendKeys(`#password`, "correct horse battery", chromedp.ByID),
		chromedp.Click(`form[action="/signup"] button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="program-KPOST-2025-NIRS"]`, chromedp.ByQuery),
	)
	if loc := location(); loc != "/programs" {
		t.Fatalf("after signup at %s, want /programs", loc)
	}
	if who := text(`[data-testid="who"]`); who != "김브라우저" {
		t.Fatalf("signed in as %q", who)
	}

	// 신청하기 on the demo program.
	apply := `[data-testid="program-KPOST-2025-NIRS"] a[href="/programs/KPOST-2025-NIRS/claim"]`
	if got := text(apply); got != "신청하기" {
		t.Fatalf("apply button reads %q, want 신청하기", got)
	}
	run("open claim form", chromedp.Click(apply, chromedp.ByQuery), chromedp.WaitVisible(`#brn`, chromedp.ByID))

	// The Korean claim form.
	run("fill claim form",
		chromedp.SendKeys(`#brn`, "120-81-47521", chromedp.ByID),
		chromedp.SendKeys(`#business_name`, "대전상회", chromedp.ByID),
		chromedp.SendKeys(`#representative`, "김대전", chromedp.ByID),
		chromedp.SetValue(`#phone`, "010-1234-5678", chromedp.ByID),
		chromedp.SetValue(`#category`, "food", chromedp.ByID),
		chromedp.SetValue(`#region`, "대전", chromedp.ByID),
		chromedp.SendKeys(`#claimed_loss`, "3500000", chromedp.ByID),
		chromedp.SetValue(`#bank_code`, "004", chromedp.ByID),
		chromedp.SendKeys(`#account_number`, "12345678901234", chromedp.ByID),
		chromedp.SendKeys(`#holder`, "김대전", chromedp.ByID),
		chromedp.SendKeys(`input[name="goods_sku"]`, "A-1", chromedp.ByQuery), // the first goods row
		chromedp.SendKeys(`input[name="goods_name"]`, "부사 사과 5kg", chromedp.ByQuery),
		chromedp.SendKeys(`input[name="goods_unit_price"]`, "25000", chromedp.ByQuery),
		chromedp.SendKeys(`input[name="goods_quantity"]`, "120", chromedp.ByQuery),
		chromedp.SetValue(`select[name="goods_perishable"]`, "true", chromedp.ByQuery),
	)
	if got := text(`[data-testid="submit-claim"]`); got != "신청서 제출" {
		t.Fatalf("submit button reads %q", got)
	}
	run("submit", chromedp.Click(`[data-testid="submit-claim"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`[data-testid="receipt-no"]`, chromedp.ByQuery))

	// The receipt.
	receipt := text(`[data-testid="receipt-no"]`)
	if !strings.HasPrefix(receipt, "R") || len(receipt) < 10 {
		t.Fatalf("receipt number %q", receipt)
	}
	if filed := text(`[data-testid="filed"]`); !strings.Contains(filed, receipt) {
		t.Fatalf("the confirmation %q does not name the receipt %s", filed, receipt)
	}
	loc := location()
	id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(loc, "/claims/"), "?filed=1"))
	if err != nil {
		t.Fatalf("after submit at %s, want /claims/{id}?filed=1", loc)
	}
	var dbReceipt string
	if err := p.store.Pool.QueryRow(context.Background(), `SELECT receipt_no FROM claims WHERE id = $1`, id).Scan(&dbReceipt); err != nil || dbReceipt != receipt {
		t.Fatalf("claim %s in the database: receipt %q (%v), page shows %q", id, dbReceipt, err, receipt)
	}
	first := text(`[data-testid="status"]`)
	t.Logf("receipt %s, first status on the page: %s", receipt, first)

	// 검토중: the page polls the timeline with htmx every 2 s. Without the
	// vendored htmx (`make web` not run) a reload stands in for it.
	htmx := served(p.url + "/static/vendor/htmx/htmx.min.js")
	isInReview := `document.querySelector('[data-testid="status"]').textContent.trim() === "검토중"`
	var ok bool
	if htmx {
		t.Log("waiting for htmx to refresh the status in place")
		run("wait for 검토중 (htmx polling, no reload)", chromedp.Poll(isInReview, &ok, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(200*time.Millisecond)))
	} else {
		t.Log("htmx is not served (run `make web`); reloading instead of polling")
		deadline := time.Now().Add(30 * time.Second)
		for !ok {
			if time.Now().After(deadline) {
				t.Fatalf("status still %q after 30 s", text(`[data-testid="status"]`))
			}
			time.Sleep(500 * time.Millisecond)
			run("reload", chromedp.Reload(), chromedp.WaitVisible(`[data-testid="status"]`, chromedp.ByQuery), chromedp.Evaluate(isInReview, &ok))
		}
	}
	var dataStatus string
	run("status attribute", chromedp.AttributeValue(`[data-testid="status"]`, "data-status", &dataStatus, nil, chromedp.ByQuery))
	if dataStatus != models.StatusInReview || p.status(t, id) != models.StatusInReview {
		t.Fatalf("badge data-status %q, database %q: want in_review", dataStatus, p.status(t, id))
	}
	var steps []string
	run("timeline", chromedp.Evaluate(`Array.from(document.querySelectorAll('#timeline ol.timeline li strong')).map(e => e.textContent.trim())`, &steps))
	if !slices.Equal(steps, []string{"접수", "확인 중", "검토중"}) {
		t.Fatalf("timeline entries %v, want [접수 확인 중 검토중]", steps)
	}
	assertWorkflowInReview(t, id)

	// English, from the language switch; back on the same claim.
	run("switch to English", chromedp.Click(`.lang-switch a[lang="en"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`html[lang="en"] [data-testid="status"]`, chromedp.ByQuery))
	if loc := location(); !strings.HasPrefix(loc, "/claims/"+id.String()) {
		t.Fatalf("after switching language at %s, want the claim page", loc)
	}
	if got := text(`[data-testid="status"]`); got != "In review" {
		t.Fatalf("English status badge %q, want In review", got)
	}
	if got := text(`main h1`); got != "Your claim" {
		t.Fatalf("English heading %q, want Your claim", got)
	}
	if got := text(`header nav a[href="/programs"]`); got != "Programs" {
		t.Fatalf("English menu %q, want Programs", got)
	}
	if got := text(`[data-testid="receipt-no"]`); got != receipt {
		t.Fatalf("receipt %q after switching language, want %q", got, receipt)
	}
}

func served(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// browserDataDir is a fresh Chromium profile directory. Chromium's helper
// processes may still be writing into it for a moment after the browser has
// been told to quit, so unlike t.TempDir its removal retries and a leftover
// is logged instead of failing the test.
func browserDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "relief-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 20 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("browser profile %s left behind: %v", dir, err)
	})
	return dir
}

// apiClient is one signed-in user of the JSON API.
type apiClient struct {
	t   *testing.T
	url string
	hc  *http.Client
}

func newAPIClient(t *testing.T, url string) *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{t: t, url: url, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (c *apiClient) call(method, path string, body any, header ...string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (c *apiClient) must(want int, what, method, path string, body any, header ...string) []byte {
	c.t.Helper()
	st, b := c.call(method, path, body, header...)
	if st != want {
		c.t.Fatalf("%s: %s %s: status %d, want %d: %s", what, method, path, st, want, b)
	}
	return b
}
