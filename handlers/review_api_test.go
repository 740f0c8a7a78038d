package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/claim"
)

// reviewEnv is the real handler chain with a real Temporal server, the real
// claim worker and PostgreSQL with the demo program and ledger.
type reviewEnv struct {
	t        *testing.T
	url      string
	store    *models.Store
	temporal client.Client
}

func newReviewEnv(t *testing.T) *reviewEnv {
	t.Helper()
	ctx := context.Background()
	store, cfg := newTestStore(t, map[string]string{"TEMPORAL_ADDRESS": "127.0.0.1:1"})
	if err := store.SeedDemoLedger(ctx); err != nil {
		t.Fatal(err)
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	tc := ts.GetDefaultClient()
	if err := workflows.EnsureSearchAttributes(ctx, tc, ts.GetDefaultNamespace()); err != nil {
		t.Fatal(err)
	}
	ts.NewWorker(claim.TaskQueue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
		r.RegisterActivity(&claim.Activities{Store: store})
	})
	srv := newTestServer(t, handlers.Deps{Store: store, Temporal: tc, Config: cfg})
	return &reviewEnv{t: t, store: store, temporal: tc, url: serveTest(t, srv, "")}
}

type reviewClient struct {
	e  *reviewEnv
	hc *http.Client
}

type reviewResp struct {
	status int
	body   []byte
}

func (r reviewResp) code() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r reviewResp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
}

func (c *reviewClient) do(method, path string, body any, header ...string) reviewResp {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case *multipart.Writer:
		panic("use upload")
	default:
		rd = jsonBody(c.e.t, b)
	}
	status, _, out := roundTrip(c.e.t, c.hc, method, c.e.url+path, rd, "application/json", header)
	return reviewResp{status, out}
}

func (c *reviewClient) upload(path, name string, content []byte) reviewResp {
	c.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	status, _, out := roundTrip(c.e.t, c.hc, "POST", c.e.url+path, &buf, mw.FormDataContentType(), nil)
	return reviewResp{status, out}
}

func (e *reviewEnv) login(email string, agency string, roles ...string) (*reviewClient, *models.User) {
	e.t.Helper()
	u, err := e.store.CreateUser(context.Background(), models.NewUser{Email: email, Name: email, Phone: "010-1111-2222",
		Password: "correct horse battery", Roles: roles, Agency: agency})
	if err != nil {
		e.t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &reviewClient{e: e, hc: &http.Client{Jar: jar}}
	if r := c.do("POST", "/api/v1/session", map[string]string{"email": email, "password": "correct horse battery"}); r.status != 200 {
		e.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	return c, u
}

// file files a claim and starts its workflow as the dispatcher would, then
// waits for verification to finish.
func (e *reviewEnv) file(c *reviewClient, brn string, claimed int64, acceptOffer bool) uuid.UUID {
	e.t.Helper()
	body := map[string]any{"program": models.DemoProgram, "brn": brn, "business_name": "대전상회", "representative": "김대전",
		"phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": claimed, "accept_offer": acceptOffer,
		"bank": map[string]any{"bank_code": "004", "account_number": "1234567890" + brn[len(brn)-4:], "holder": "김대전"}}
	r := c.do("POST", "/api/v1/claims", body, "Idempotency-Key", uuid.NewString())
	if r.status != http.StatusAccepted {
		e.t.Fatalf("file: %d %s", r.status, r.body)
	}
	var f struct{ ID uuid.UUID }
	r.json(e.t, &f)
	if _, err := e.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: claim.WorkflowID(f.ID), TaskQueue: claim.TaskQueue},
		claim.WorkflowName, claim.Input{ClaimID: f.ID}); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e.status(f.ID)
		if st != models.StatusReceived && st != models.StatusVerifying {
			return f.ID
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("claim stuck in %s", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *reviewEnv) status(id uuid.UUID) string {
	var st string
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT status FROM claims WHERE id = $1`, id).Scan(&st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func expect(t *testing.T, what string, r reviewResp, status int, code string) {
	t.Helper()
	if r.status != status || code != "" && r.code() != code {
		t.Errorf("%s: %d %s, want %d %s", what, r.status, r.body, status, code)
	}
}

func TestReviewOverHTTPWithTemporal(t *testing.T) {
	e := newReviewEnv(t)
	merchant, _ := e.login("m@example.kr", "", models.RoleMerchant)
	reviewer, _ := e.login("r@example.kr", "KPOST", models.RoleReviewer)
	reviewer2, _ := e.login("r2@example.kr", "KPOST", models.RoleReviewer)
	approver, _ := e.login("a@example.kr", "KPOST", models.RoleApprover)
	outsider, _ := e.login("o@example.kr", "MSS", models.RoleReviewer)
	admin, _ := e.login("admin@example.kr", "KPOST", models.RoleProgramAdmin)

	// The offer before filing.
	offerPath := "/api/v1/programs/" + models.DemoProgram + "/offer?brn="
	r := merchant.do("GET", offerPath+"120-81-47521", nil)
	var offer models.Offer
	r.json(t, &offer)
	if r.status != 200 || offer.Compensation <= 0 || !offer.FastTrack || len(offer.Explanation) == 0 || len(offer.BaselineDaily) == 0 {
		t.Fatalf("offer: %d %s", r.status, r.body)
	}
	expect(t, "offer, bad BRN", merchant.do("GET", offerPath+"1208147522", nil), 422, "invalid_brn")
	expect(t, "offer, not a seller", merchant.do("GET", offerPath+"1010100014", nil), 404, "not_a_seller")
	expect(t, "offer for staff", reviewer.do("GET", offerPath+"1208147521", nil), 403, "forbidden")

	// Fast track: the demo merchant accepts the offer.
	fast := e.file(merchant, "1208147521", 0, true)
	if st := e.status(fast); st != models.StatusAutoApproved {
		t.Fatalf("fast track: %s", st)
	}

	// Four eyes over HTTP, with idempotent retries.
	big := e.file(merchant, models.DemoSellerBRN(1), 20_000_000, false)
	dec := "/api/v1/claims/" + big.String() + "/decision"
	approve := map[string]any{"action": "approve", "amount": 12_000_000}
	first := reviewer.do("POST", dec, approve, "Idempotency-Key", "k1")
	expect(t, "first approval", first, 200, "")
	if !strings.Contains(string(first.body), `"pending_second_approval"`) {
		t.Fatalf("first approval: %s", first.body)
	}
	replay := reviewer.do("POST", dec, approve, "Idempotency-Key", "k1")
	if replay.status != 200 || string(replay.body) != string(first.body) {
		t.Errorf("replay: %d %s", replay.status, replay.body)
	}
	expect(t, "same key, other body", reviewer.do("POST", dec, map[string]any{"action": "approve", "amount": 13_000_000}, "Idempotency-Key", "k1"), 422, "idempotency_mismatch")
	expect(t, "first approver again", reviewer.do("POST", dec, map[string]any{"action": "approve"}, "Idempotency-Key", "k2"), 403, "segregation_of_duties")
	expect(t, "a reviewer as second approver", reviewer2.do("POST", dec, map[string]any{"action": "approve"}), 403, "approver_required")
	expect(t, "merchant decides", merchant.do("POST", dec, map[string]any{"action": "approve"}), 403, "forbidden")
	expect(t, "other agency", outsider.do("POST", dec, map[string]any{"action": "approve"}), 404, "")
	expect(t, "bad action", approver.do("POST", dec, map[string]any{"action": "maybe"}), 422, "invalid_action")
	expect(t, "malformed", approver.do("POST", dec, "{"), 400, "")
	expect(t, "second approval", approver.do("POST", dec, map[string]any{"action": "approve"}, "Idempotency-Key", "k3"), 200, "")
	var cl models.Claim
	merchant.do("GET", "/api/v1/claims/"+big.String(), nil).json(t, &cl)
	if cl.Status != models.StatusApproved || cl.Amounts.ApprovedCompensation != 12_000_000 {
		t.Errorf("after four eyes: %s %d", cl.Status, cl.Amounts.ApprovedCompensation)
	}

	// Queue scoped to the agency, with counts.
	var q models.QueuePage
	r = reviewer.do("GET", "/api/v1/review/queue?status=approved", nil)
	r.json(t, &q)
	if r.status != 200 || len(q.Items) != 1 || q.Items[0].ID != big || q.Counts[models.StatusAutoApproved] != 1 {
		t.Errorf("queue: %d %s", r.status, r.body)
	}
	expect(t, "queue of another agency", outsider.do("GET", "/api/v1/review/queue?program="+models.DemoProgram, nil), 404, "")
	expect(t, "queue, bad amount", reviewer.do("GET", "/api/v1/review/queue?min_amount=lots", nil), 422, "validation_failed")
	expect(t, "claim file", reviewer.do("GET", "/api/v1/review/claims/"+big.String(), nil), 200, "")
	expect(t, "claim file, other agency", outsider.do("GET", "/api/v1/review/claims/"+big.String(), nil), 404, "")

	// Reject, appeal once, then the window closes.
	rej := e.file(merchant, models.DemoSellerBRN(2), 30_000_000, false)
	expect(t, "reject without reason", reviewer.do("POST", "/api/v1/claims/"+rej.String()+"/decision", map[string]any{"action": "reject"}), 422, "reason_required")
	expect(t, "reject", reviewer.do("POST", "/api/v1/claims/"+rej.String()+"/decision",
		map[string]any{"action": "reject", "reason_code": "insufficient_evidence", "reason": "증빙 부족"}), 200, "")
	expect(t, "appeal by staff", reviewer.do("POST", "/api/v1/claims/"+rej.String()+"/appeal", map[string]any{"reason": "x"}), 403, "")
	expect(t, "appeal", merchant.do("POST", "/api/v1/claims/"+rej.String()+"/appeal", map[string]any{"reason": "증빙 첨부"}), 200, "")
	if st := e.status(rej); st != models.StatusInReview {
		t.Errorf("after appeal: %s", st)
	}
	expect(t, "rejecter decides the appeal", reviewer.do("POST", "/api/v1/claims/"+rej.String()+"/decision", map[string]any{"action": "approve", "amount": 1000}), 403, "segregation_of_duties")
	expect(t, "appeal again", merchant.do("POST", "/api/v1/claims/"+rej.String()+"/appeal", map[string]any{"reason": "다시"}), 409, "invalid_state")
	// Past the window the workflow has closed the claim and ended.
	closed := e.file(merchant, models.DemoSellerBRN(3), 30_000_000, false)
	if err := e.temporal.TerminateWorkflow(context.Background(), claim.WorkflowID(closed), "", "test: the window passed"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pool.Exec(context.Background(), `UPDATE claims SET status = 'closed' WHERE id = $1`, closed); err != nil {
		t.Fatal(err)
	}
	expect(t, "appeal after the window", merchant.do("POST", "/api/v1/claims/"+closed.String()+"/appeal", map[string]any{"reason": "늦게"}), 422, "appeal_window_closed")

	// Info request answered by the merchant.
	info := e.file(merchant, models.DemoSellerBRN(4), 30_000_000, false)
	expect(t, "answer without a request", merchant.do("POST", "/api/v1/claims/"+info.String()+"/info", map[string]any{"note": "x"}), 409, "no_open_info_request")
	expect(t, "request info", reviewer.do("POST", "/api/v1/claims/"+info.String()+"/decision", map[string]any{"action": "request_info", "reason": "매출 증빙"}), 200, "")
	expect(t, "answer", merchant.do("POST", "/api/v1/claims/"+info.String()+"/info", map[string]any{"note": "첨부했습니다"}), 200, "")
	if st := e.status(info); st != models.StatusInReview {
		t.Errorf("after the answer: %s", st)
	}

	// Documents: magic bytes, idempotent by content.
	docs := "/api/v1/claims/" + info.String() + "/documents"
	r = merchant.upload(docs, "증빙.pdf", []byte("%PDF-1.4\n1 0 obj\n"))
	var doc struct{ ID, SHA256 string }
	r.json(t, &doc)
	if r.status != 201 || len(doc.SHA256) != 64 {
		t.Errorf("upload: %d %s", r.status, r.body)
	}
	expect(t, "same document again", merchant.upload(docs, "again.pdf", []byte("%PDF-1.4\n1 0 obj\n")), 200, "")
	expect(t, "not a pdf", merchant.upload(docs, "evil.pdf", []byte("MZ\x90\x00")), 422, "")
	expect(t, "download by the reviewer", reviewer.do("GET", docs+"/"+doc.ID, nil), 200, "")
	expect(t, "upload to another merchant's claim", outsider.upload(docs, "x.pdf", []byte("%PDF-1.4")), 404, "")

	// Ledger import over HTTP: 202, then progress to done.
	csv := "seller_brn,date,gross_sales,commission,category\n1208147521,2025-09-01,100000,6000,food\n"
	r = admin.upload("/api/v1/programs/"+models.DemoProgram+"/ledger", "ledger.csv", []byte(csv))
	var imp struct {
		ImportID uuid.UUID `json:"import_id"`
	}
	r.json(t, &imp)
	if r.status != 202 || imp.ImportID == uuid.Nil {
		t.Fatalf("ledger upload: %d %s", r.status, r.body)
	}
	var li models.LedgerImport
	for deadline := time.Now().Add(20 * time.Second); ; {
		admin.do("GET", "/api/v1/imports/"+imp.ImportID.String(), nil).json(t, &li)
		if li.Status == models.ImportDone || li.Status == models.ImportFailed || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if li.Status != models.ImportDone || li.RowsDone != 1 {
		t.Errorf("import: %+v", li)
	}
	expect(t, "ledger upload by a reviewer", reviewer.upload("/api/v1/programs/"+models.DemoProgram+"/ledger", "ledger.csv", []byte(csv)), 403, "")
	expect(t, "binary named .csv", admin.upload("/api/v1/programs/"+models.DemoProgram+"/ledger", "ledger.csv", []byte("\x00\x01\x02")), 422, "")
	expect(t, "import of another agency", outsider.do("GET", "/api/v1/imports/"+imp.ImportID.String(), nil), 404, "")

	// The pages render.
	for _, p := range []string{"/review/queue", "/review/queue?status=in_review&flag=not_in_ledger&sort=amount_desc", "/review/approvals",
		"/review/claims/" + big.String(), "/admin/programs/" + models.DemoProgram + "/ledger", "/admin/imports/" + imp.ImportID.String()} {
		c := reviewer
		if strings.HasPrefix(p, "/admin") {
			c = admin
		}
		if strings.HasPrefix(p, "/review/approvals") {
			c = approver
		}
		expect(t, "page "+p, c.do("GET", p, nil), 200, "")
	}
	expect(t, "respond page", merchant.do("GET", "/claims/"+rej.String()+"/respond", nil), 200, "")
	expect(t, "offer page", merchant.do("GET", "/programs/"+models.DemoProgram+"/offer?brn=120-81-47521", nil), 200, "")
}
