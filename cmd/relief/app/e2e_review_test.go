package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/claim"
)

// TestE2EBrowserReviewerApproves is the review loop in a real browser: a
// merchant files a claim through the JSON API and the worker carries it to
// in_review; a KPOST reviewer logs in through the login form, finds the claim in
// the review queue by its receipt number, approves it below the program's
// four-eyes threshold (one reviewer suffices), and sees 승인; then the merchant,
// in a separate browser context (own cookies), logs in and sees 승인 on the
// claim's timeline. The database and the claim workflow's state query agree.
func TestE2EBrowserReviewerApproves(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole program and a browser")
	}
	started := time.Now()
	p := boot(t)
	bg := context.Background()

	// 1. A merchant, signed up and signed in through the JSON API, files a claim.
	const (
		merchantEmail = "review-merchant@example.kr"
		merchantName  = "김상인"
		reviewerEmail = "review-reviewer@kpost.example.kr"
		reviewerName  = "이심사"
		password      = "correct horse battery"
	)
	api := newAPIClient(t, p.url)
	api.hc.Timeout = 10 * time.Second
	call := api.call
	must := func(want, got int, body []byte, what string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: status %d, want %d: %s", what, got, want, body)
		}
	}
	st, b := call("POST", "/api/v1/merchants/signup", map[string]string{"email": merchantEmail, "password": password, "name": merchantName, "phone": "010-1111-2222"})
	must(http.StatusCreated, st, b, "signup")
	st, b = call("POST", "/api/v1/session", map[string]string{"email": merchantEmail, "password": password})
	must(http.StatusOK, st, b, "login")
	claimBody := map[string]any{"program": models.DemoProgram, "brn": "120-81-47521", "business_name": "대전상회", "representative": "김대전",
		"phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": 3_500_000,
		"bank":  map[string]any{"bank_code": "004", "account_number": "12345678901234", "holder": "김대전"},
		"goods": []map[string]any{{"sku": "A-1", "name": "사과", "unit_price": 25000, "quantity": 120, "perishable": true}}}
	st, b = call("POST", "/api/v1/claims", claimBody, "Idempotency-Key", "e2e-review-1")
	must(http.StatusAccepted, st, b, "file claim")
	var filed struct {
		ID        uuid.UUID `json:"id"`
		ReceiptNo string    `json:"receipt_no"`
	}
	if err := json.Unmarshal(b, &filed); err != nil || filed.ID == uuid.Nil || filed.ReceiptNo == "" {
		t.Fatalf("202 body %s (%v)", b, err)
	}
	id, receipt := filed.ID, filed.ReceiptNo
	t.Cleanup(func() { // approved, the workflow keeps waiting for a status change that never comes here
		_ = ts.GetDefaultClient().TerminateWorkflow(context.Background(), claim.WorkflowID(id), "", "test over")
	})
	deadline := time.Now().Add(30 * time.Second)
	for p.status(t, id) != models.StatusInReview {
		if time.Now().After(deadline) {
			t.Fatalf("claim %s still %q after 30 s, want in_review", receipt, p.status(t, id))
		}
		time.Sleep(100 * time.Millisecond)
	}
	assertWorkflowInReview(t, id)

	// 2. A KPOST reviewer, created as `relief user add` does (no demo users outside dev mode).
	reviewer, err := p.store.CreateUser(bg, models.NewUser{Email: reviewerEmail, Name: reviewerName, Password: password,
		Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	if err != nil {
		t.Fatalf("create reviewer: %v", err)
	}
	program, err := p.store.ProgramByCode(bg, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	threshold := program.Rules.FourEyesThreshold
	const amount = int64(3_000_000) // ≤ the claimed loss, and one reviewer suffices below the threshold
	if amount > threshold {
		t.Fatalf("approval amount %d is above the demo program's four-eyes threshold %d: it would wait for a second approver", amount, threshold)
	}

	// 3. Two headless Chromiums, each with its own user data directory, so the
	// reviewer's and the merchant's session cookies never meet. (A second
	// browser context in one Chromium would do, but new-headless Chromium
	// refuses to open a tab in it without a window: "no browser is open".)
	type tab struct {
		name string
		ctx  context.Context // the browser's tab, for the steps and the screenshots
	}
	var tabs []*tab
	newBrowser := func(name string) (*tab, func()) {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromium(t)),
			chromedp.Headless,
			chromedp.NoSandbox, // root in a container
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(browserDataDir(t)), // see e2e_test.go: Chromium may still write into it as it quits
			chromedp.WindowSize(1280, 1600),
			chromedp.Flag("accept-lang", "ko-KR,ko"), // Korean staff and merchant
			chromedp.Flag("lang", "ko-KR"),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(bg, opts...)
		ctx, cancelBrowser := chromedp.NewContext(allocCtx)
		// The first Run starts the browser on the tab's own context (no
		// timeout): a step's timeout below then ends the step, not the browser.
		if err := chromedp.Run(ctx); err != nil {
			cancelBrowser()
			cancelAlloc()
			t.Fatalf("start Chromium for the %s: %v", name, err)
		}
		tb := &tab{name: name, ctx: ctx}
		tabs = append(tabs, tb)
		return tb, func() { cancelBrowser(); cancelAlloc() }
	}
	reviewerTab, closeReviewer := newBrowser("reviewer")
	defer closeReviewer()
	merchantTab, closeMerchant := newBrowser("merchant")
	defer closeMerchant()
	// Runs before the tabs and the browser go away (defers run last-in first-out).
	defer func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv("RELIEF_E2E_ARTIFACTS") // kept after the test, unlike t.TempDir
		if dir == "" {
			dir = t.TempDir()
		}
		for _, tb := range tabs {
			sctx, scancel := context.WithTimeout(tb.ctx, 10*time.Second)
			var png []byte
			var loc, html string
			if err := chromedp.Run(sctx, chromedp.Location(&loc)); err != nil || loc == "about:blank" {
				scancel() // this browser had not started its part
				continue
			}
			if err := chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)); err != nil {
				t.Logf("%s screenshot: %v", tb.name, err)
				scancel()
				continue
			}
			path := filepath.Join(dir, "e2e-reviewer-"+tb.name+"-failure.png")
			if err := os.WriteFile(path, png, 0o644); err == nil {
				t.Logf("%s browser at %s; screenshot of the failure: %s", tb.name, loc, path)
			}
			if chromedp.Run(sctx, chromedp.OuterHTML("main", &html, chromedp.ByQuery)) == nil {
				t.Logf("%s page <main>:\n%s", tb.name, html)
			}
			scancel()
		}
	}()
	run := func(tb *tab, what string, actions ...chromedp.Action) {
		t.Helper()
		// Each step has 45 s (a decision waits at most 20 s for its workflow).
		ctx, cancel := context.WithTimeout(tb.ctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %s: %v", tb.name, what, err)
		}
	}
	// The helpers below read the page with script (querySelector), not through
	// DevTools node ids: a node id from a document a click has just replaced
	// fails with "No node with given id found".
	//
	// waitFor polls until sel is in a completely loaded document; errors while
	// the previous page goes away are expected and retried.
	waitFor := func(tb *tab, what, sel string) {
		t.Helper()
		js := fmt.Sprintf(`document.readyState === "complete" && document.querySelector(%q) !== null`, sel)
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
			var ok bool
			err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s: %s did not appear within 30 s (last error: %v)", tb.name, what, sel, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	text := func(tb *tab, sel string) string {
		t.Helper()
		var s *string
		run(tb, "read "+sel, chromedp.Evaluate(fmt.Sprintf(`(e => e && e.textContent)(document.querySelector(%q))`, sel), &s))
		if s == nil {
			t.Fatalf("%s: no %s on the page", tb.name, sel)
		}
		return strings.Join(strings.Fields(*s), " ")
	}
	attr := func(tb *tab, sel, name string) string {
		t.Helper()
		var v *string
		run(tb, "attribute "+name+" of "+sel, chromedp.Evaluate(fmt.Sprintf(`(e => e && e.getAttribute(%q))(document.querySelector(%q))`, name, sel), &v))
		if v == nil {
			t.Fatalf("%s: no %s with attribute %s on the page", tb.name, sel, name)
		}
		return *v
	}
	location := func(tb *tab) string {
		t.Helper()
		var loc string
		run(tb, "location", chromedp.Location(&loc))
		return strings.TrimPrefix(loc, p.url)
	}
	strongs := func(tb *tab, list string) []string {
		t.Helper()
		var out []string
		run(tb, "entries of "+list, chromedp.Evaluate(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, list+" li strong"), &out))
		return out
	}
	login := func(tb *tab, email string) {
		t.Helper()
		run(tb, "open login", chromedp.Navigate(p.url+"/login"))
		waitFor(tb, "login page", `form[action="/login"] #email`)
		run(tb, "log in",
			chromedp.SendKeys(`#email`, email, chromedp.ByID),
			chromedp.SendKeys(`#password`, password, chromedp.ByID),
			chromedp.Click(`form[action="/login"] button[type="submit"]`, chromedp.ByQuery),
		)
		waitFor(tb, "signed in", `[data-testid="who"]`)
	}

	// The reviewer logs in through the form and opens 심사 from the menu.
	login(reviewerTab, reviewerEmail)
	if who := text(reviewerTab, `[data-testid="who"]`); who != reviewerName {
		t.Fatalf("signed in as %q, want %s", who, reviewerName)
	}
	reviewLink := `header nav a[href="/review/queue"]`
	if got := text(reviewerTab, reviewLink); got != "심사" {
		t.Fatalf("review menu reads %q, want 심사", got)
	}
	run(reviewerTab, "open the review queue", chromedp.Click(reviewLink, chromedp.ByQuery))
	waitFor(reviewerTab, "review queue", `[data-testid="queue"]`)
	if loc := location(reviewerTab); !strings.HasPrefix(loc, "/review/queue") {
		t.Fatalf("at %s, want the review queue", loc)
	}
	if got := text(reviewerTab, `main h1`); got != "심사 대기열" {
		t.Fatalf("queue heading %q, want 심사 대기열", got)
	}

	// The claim's row, found by its receipt number.
	type queueRow struct{ Receipt, Href, Status, Cells string }
	var rows []queueRow
	run(reviewerTab, "queue rows", chromedp.Evaluate(`Array.from(document.querySelectorAll('[data-testid="queue-row"]')).map(r => ({
		Receipt: r.querySelector('a').textContent.trim(), Href: r.querySelector('a').getAttribute('href'),
		Status: r.dataset.status, Cells: r.textContent.replace(/\s+/g, ' ').trim()}))`, &rows))
	row := slices.IndexFunc(rows, func(r queueRow) bool { return r.Receipt == receipt })
	if row < 0 {
		t.Fatalf("receipt %s is not in the review queue: %+v", receipt, rows)
	}
	if r := rows[row]; r.Href != "/review/claims/"+id.String() || r.Status != models.StatusInReview || !strings.Contains(r.Cells, "검토중") || !strings.Contains(r.Cells, "대전상회") {
		t.Fatalf("queue row %+v: want a link to /review/claims/%s, in_review (검토중), 대전상회", r, id)
	}
	run(reviewerTab, "open the claim", chromedp.Click(fmt.Sprintf(`[data-testid="queue-row"] a[href="/review/claims/%s"]`, id), chromedp.ByQuery))
	waitFor(reviewerTab, "claim file", `main h1 small`)
	if loc := location(reviewerTab); loc != "/review/claims/"+id.String() {
		t.Fatalf("at %s, want /review/claims/%s", loc, id)
	}
	var approveForms int
	run(reviewerTab, "approve form", chromedp.Evaluate(`document.querySelectorAll('[data-testid="approve-form"]').length`, &approveForms))
	if approveForms != 1 {
		t.Fatalf("the reviewer is offered %d approve forms on an in_review claim, want 1", approveForms)
	}
	if got := attr(reviewerTab, `[data-testid="status"]`, "data-status"); got != models.StatusInReview {
		t.Fatalf("review page status %q before the decision, want in_review", got)
	}
	if got := text(reviewerTab, `main h1 small`); got != receipt {
		t.Fatalf("review page names receipt %q, want %s", got, receipt)
	}

	// Approve 3,000,000원: typed over whatever the form proposes (the computed
	// compensation, when the sales ledger has one), below the four-eyes threshold.
	var proposed string
	run(reviewerTab, "proposed amount", chromedp.Value(`#amount`, &proposed, chromedp.ByID))
	t.Logf("the decision form proposes %q; four-eyes threshold %s", proposed, rules.FormatWon(threshold))
	if got := text(reviewerTab, `[data-testid="approve"]`); got != "승인" {
		t.Fatalf("approve button reads %q, want 승인", got)
	}
	run(reviewerTab, "approve",
		chromedp.Clear(`#amount`, chromedp.ByID),
		chromedp.SendKeys(`#amount`, fmt.Sprint(amount), chromedp.ByID),
		chromedp.Click(`[data-testid="approve"]`, chromedp.ByQuery),
	)
	waitFor(reviewerTab, "decision outcome", `[data-testid="done"], [data-testid="decision-error"]`)
	var decisionErr []string
	run(reviewerTab, "decision error", chromedp.Evaluate(`Array.from(document.querySelectorAll('[data-testid="decision-error"]')).map(e => e.textContent.trim())`, &decisionErr))
	if len(decisionErr) > 0 {
		t.Fatalf("the decision was refused: %q (at %s)", decisionErr, location(reviewerTab))
	}
	if loc := location(reviewerTab); loc != "/review/claims/"+id.String()+"?done="+models.StatusApproved {
		t.Fatalf("after approving at %s, want /review/claims/%s?done=approved", loc, id)
	}
	if got := text(reviewerTab, `[data-testid="done"]`); got != "처리되었습니다: 승인" {
		t.Fatalf("confirmation %q, want 처리되었습니다: 승인", got)
	}
	if got, txt := attr(reviewerTab, `[data-testid="status"]`, "data-status"), text(reviewerTab, `[data-testid="status"]`); got != models.StatusApproved || txt != "승인" {
		t.Fatalf("review page status badge %q (%s), want 승인 (approved)", txt, got)
	}
	if got := text(reviewerTab, `[data-testid="approved"]`); got != rules.FormatWon(amount) {
		t.Fatalf("approved compensation on the review page %q, want %s", got, rules.FormatWon(amount))
	}
	if got := text(reviewerTab, `[data-testid="decisions"]`); !strings.Contains(got, "승인") || !strings.Contains(got, reviewerName) || !strings.Contains(got, rules.FormatWon(amount)) {
		t.Fatalf("decision log %q: want 승인 · %s · %s", got, reviewerName, rules.FormatWon(amount))
	}
	if got := strongs(reviewerTab, `[data-testid="timeline"]`); !slices.Equal(got, []string{"접수", "확인 중", "검토중", "승인"}) {
		t.Fatalf("review page timeline %v, want [접수 확인 중 검토중 승인]", got)
	}
	var forms int
	run(reviewerTab, "decision forms", chromedp.Evaluate(`document.querySelectorAll('[data-testid="approve-form"], [data-testid="reject-form"]').length`, &forms))
	if forms != 0 {
		t.Fatalf("the decision forms are still offered on an approved claim (%d forms)", forms)
	}

	// 4. The merchant, in its own browser context, sees 승인 on the claim.
	login(merchantTab, merchantEmail)
	if who := text(merchantTab, `[data-testid="who"]`); who != merchantName {
		t.Fatalf("merchant signed in as %q, want %s", who, merchantName)
	}
	run(merchantTab, "open my claims", chromedp.Click(`header nav a[href="/claims"]`, chromedp.ByQuery))
	waitFor(merchantTab, "my claims", fmt.Sprintf(`main a[href="/claims/%s"]`, id))
	run(merchantTab, "open the claim", chromedp.Click(fmt.Sprintf(`main a[href="/claims/%s"]`, id), chromedp.ByQuery))
	waitFor(merchantTab, "claim page", `[data-testid="receipt-no"]`)
	if loc := location(merchantTab); loc != "/claims/"+id.String() {
		t.Fatalf("merchant at %s, want /claims/%s", loc, id)
	}
	if got := text(merchantTab, `[data-testid="receipt-no"]`); got != receipt {
		t.Fatalf("merchant's claim page shows receipt %q, want %s", got, receipt)
	}
	if got, txt := attr(merchantTab, `[data-testid="status"]`, "data-status"), text(merchantTab, `[data-testid="status"]`); got != models.StatusApproved || txt != "승인" {
		t.Fatalf("merchant's status badge %q (%s), want 승인 (approved)", txt, got)
	}
	if got := strongs(merchantTab, `#timeline ol.timeline`); !slices.Equal(got, []string{"접수", "확인 중", "검토중", "승인"}) {
		t.Fatalf("merchant's timeline %v, want [접수 확인 중 검토중 승인]", got)
	}
	var entries []string
	run(merchantTab, "timeline entries", chromedp.Evaluate(`Array.from(document.querySelectorAll('#timeline ol.timeline li')).map(e => e.textContent.replace(/\s+/g, ' ').trim())`, &entries))
	t.Logf("merchant's timeline: %q", entries)
	for _, e := range entries {
		if strings.Contains(e, "review.note.") {
			t.Errorf("the merchant's timeline shows an untranslated catalog id: %q", e)
		}
	}
	if last := entries[len(entries)-1]; !strings.HasSuffix(last, "승인 — 심사자 승인") {
		t.Errorf("the approval entry reads %q, want it to end in 승인 — 심사자 승인", last)
	}
	// The staff page stays closed to the merchant.
	run(merchantTab, "open the review page as the merchant", chromedp.Navigate(p.url+"/review/claims/"+id.String()))
	waitFor(merchantTab, "the review page as the merchant", `main`)
	var leaked int
	run(merchantTab, "decision forms for the merchant", chromedp.Evaluate(`document.querySelectorAll('[data-testid="approve-form"], [data-testid="decisions"]').length`, &leaked))
	if leaked != 0 {
		t.Fatalf("the merchant sees the reviewer's claim file")
	}

	// The database and the workflow agree.
	var dbStatus string
	var approved int64
	if err := p.store.Pool.QueryRow(bg, `SELECT status, approved_compensation FROM claims WHERE id = $1`, id).Scan(&dbStatus, &approved); err != nil {
		t.Fatal(err)
	}
	if dbStatus != models.StatusApproved || approved != amount {
		t.Fatalf("database: status %q, approved_compensation %d; want approved, %d", dbStatus, approved, amount)
	}
	var decisions int
	if err := p.store.Pool.QueryRow(bg, `SELECT count(*) FROM review_decisions WHERE claim_id = $1 AND action = $2 AND decided_by = $3 AND amount = $4 AND status_after = $5`,
		id, models.ActionApprove, reviewer.ID, amount, models.StatusApproved).Scan(&decisions); err != nil {
		t.Fatal(err)
	}
	if decisions != 1 {
		t.Fatalf("review_decisions rows for the reviewer's approval = %d, want 1", decisions)
	}
	v, err := ts.GetDefaultClient().QueryWorkflow(bg, claim.WorkflowID(id), "", claim.QueryState)
	if err != nil {
		t.Fatalf("query %s: %v", claim.WorkflowID(id), err)
	}
	var ws claim.State
	if err := v.Get(&ws); err != nil {
		t.Fatal(err)
	}
	if ws.ClaimID != id || ws.Status != models.StatusApproved ||
		!slices.Equal(ws.Steps, []string{models.StatusVerifying, models.StatusInReview, models.StatusApproved}) {
		t.Fatalf("workflow state = %+v, want approved after [verifying in_review approved]", ws)
	}
	if ws.Review == nil || ws.Review.FirstApprover != uuid.Nil {
		t.Fatalf("workflow review state %+v: a single approval below the threshold records no first approver", ws.Review)
	}
	t.Logf("claim %s approved by the reviewer in the browser, seen by the merchant; %v in all", receipt, time.Since(started).Round(time.Millisecond))
}
