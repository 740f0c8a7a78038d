package payout_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/web"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// api is the real HTTP stack (handlers, sessions, cross-origin protection)
// in front of the harness's database, Temporal and sandbox bank.
type api struct {
	h   *harness
	url string

	mu        sync.Mutex
	failures5 []string
}

func newAPI(h *harness) *api {
	h.t.Helper()
	env := map[string]string{"DATABASE_URL": "postgres://unused/db", "RELIEF_DATA_KEY": vault.NewKeySpec("t1"), "RELIEF_ADDR": "127.0.0.1:0"}
	cfg, err := config.FromEnv(config.ModeServe, func(k string) string { return env[k] })
	if err != nil {
		h.t.Fatal(err)
	}
	renderer, err := web.New()
	if err != nil {
		h.t.Fatal(err)
	}
	srv := handlers.New(handlers.Deps{Store: h.store, Temporal: h.c, Web: renderer, Log: h.log, Config: cfg, Registry: prometheus.NewRegistry()})
	a := &api{h: h}
	inner := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: 200}
		inner.ServeHTTP(rec, r)
		if rec.status >= 500 {
			a.mu.Lock()
			a.failures5 = append(a.failures5, r.Method+" "+r.URL.Path)
			a.mu.Unlock()
		}
	}))
	h.t.Cleanup(hs.Close)
	h.t.Cleanup(func() {
		if len(a.failures5) > 0 {
			h.t.Errorf("5xx answers: %v", a.failures5)
		}
	})
	a.url = hs.URL
	return a
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

type session struct {
	a  *api
	hc *http.Client
}

func (a *api) login(email string) *session {
	a.h.t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &session{a: a, hc: &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if st, body := s.json("POST", "/api/v1/session", map[string]string{"email": email, "password": password}, nil); st != 200 {
		a.h.t.Fatalf("login %s: %d %s", email, st, body)
	}
	return s
}

func (s *session) do(req *http.Request) (int, []byte, http.Header) {
	s.a.h.t.Helper()
	resp, err := s.hc.Do(req)
	if err != nil {
		s.a.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

func (s *session) json(method, path string, in any, headers map[string]string) (int, []byte) {
	s.a.h.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.a.url+path, body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	st, b, _ := s.do(req)
	return st, b
}

func (s *session) get(path string) (int, []byte, http.Header) {
	req, _ := http.NewRequest("GET", s.a.url+path, nil)
	return s.do(req)
}

func (s *session) upload(path, filename string, content []byte, fields map[string]string) (int, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", filename)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", s.a.url+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	st, b, _ := s.do(req)
	return st, b
}

func (s *session) form(path string, values url.Values) (int, http.Header) {
	req, _ := http.NewRequest("POST", s.a.url+path, strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, _, hdr := s.do(req)
	return st, hdr
}

type apiError struct {
	Error struct {
		Code   string            `json:"code"`
		Fields map[string]string `json:"fields"`
		Errors []struct {
			Row    int    `json:"row"`
			Column string `json:"column"`
		} `json:"errors"`
	} `json:"error"`
}

func errorOf(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return e
}

type batchJSON struct {
	ID        uuid.UUID `json:"id"`
	Status    string    `json:"status"`
	Total     int64     `json:"total"`
	PaidTotal int64     `json:"paid_total"`
	Lines     []struct {
		ClaimID       uuid.UUID `json:"claim_id"`
		Amount        int64     `json:"amount"`
		Status        string    `json:"status"`
		FailureReason string    `json:"failure_reason"`
		TransferKey   string    `json:"transfer_key"`
	} `json:"lines"`
}

func (s *session) batch(id uuid.UUID) batchJSON {
	s.a.h.t.Helper()
	st, body := s.json("GET", "/api/v1/payout-batches/"+id.String(), nil, nil)
	if st != 200 {
		s.a.h.t.Fatalf("GET batch: %d %s", st, body)
	}
	var b batchJSON
	if err := json.Unmarshal(body, &b); err != nil {
		s.a.h.t.Fatal(err)
	}
	return b
}

// bankFileRows reads the transfers out of a downloaded bank file (KB layout).
func bankFileRows(t *testing.T, file []byte) (keys, accounts []string, amounts []int64) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(file), excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("대량이체")
	if err != nil {
		t.Fatal(err)
	}
	header := -1
	for i, r := range rows {
		if len(r) > 0 && r[0] == "입금은행코드" {
			header = i
			break
		}
	}
	if header < 0 {
		t.Fatalf("no header row in %v", rows)
	}
	for _, r := range rows[header+1:] {
		if len(r) < 7 || r[0] == "" {
			continue
		}
		var amount int64
		fmt.Sscan(r[3], &amount)
		keys, accounts, amounts = append(keys, r[6]), append(accounts, r[1]), append(amounts, amount)
	}
	return keys, accounts, amounts
}

func resultCSV(keys, accounts []string, amounts []int64, codes []string) []byte {
	var b strings.Builder
	b.WriteString("이체키,계좌번호,금액,결과코드,결과메시지\n")
	for i := range keys {
		msg := "정상"
		if codes[i] != "0000" {
			msg = "수취계좌 오류"
		}
		fmt.Fprintf(&b, "%s,%s,%d,%s,%s\n", keys[i], accounts[i], amounts[i], codes[i], msg)
	}
	return []byte(b.String())
}

// TestPayoutAPIFileChannel drives a bulk-transfer-file batch through the
// HTTP API and pages: create (validation, idempotency), holder check,
// segregation of duties, approval once, the bank file (finance only, hashed
// into the audit log), result imports that are refused whole (unknown key,
// changed amount, wrong total, unsupported bank, wrong format) and one that
// reconciles, then the reconciliation.
func TestPayoutAPIFileChannel(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, banksim.Faults{})
	seeded := h.seed(payouttest.Options{Claims: 4, Prefix: "a", Holder: func(i int, b, a string) string {
		if i == 3 {
			return "다른사람"
		}
		return banksim.DefaultHolder(b, a)
	}})
	a := newAPI(h)
	creator, approver := a.login(h.creator.Email), a.login(h.approver.Email)
	auditor, err := h.store.CreateUser(ctx, models.NewUser{Email: "audit@kpost.kr", Name: "감사", Password: password, Roles: []string{models.RoleAuditor}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.store.CreateUser(ctx, models.NewUser{Email: "fin@mss.kr", Name: "타기관", Password: password, Roles: []string{models.RoleFinance}, Agency: "MSS"})
	if err != nil {
		t.Fatal(err)
	}

	st, body := creator.json("POST", "/api/v1/payout-batches", map[string]string{"channel": "fax"}, nil)
	if e := errorOf(t, body); st != 422 || e.Error.Fields["program"] != "required" || e.Error.Fields["channel"] != "unknown_channel" {
		t.Fatalf("bad input: %d %s", st, body)
	}
	in := map[string]string{"program": models.DemoProgram, "channel": "file"}
	st, body = creator.json("POST", "/api/v1/payout-batches", in, map[string]string{"Idempotency-Key": "k1"})
	var created models.PayoutBatchCreated
	if err := json.Unmarshal(body, &created); st != 201 || err != nil || created.Lines != 4 || created.Total != seeded.Total {
		t.Fatalf("create: %d %s", st, body)
	}
	st, again := creator.json("POST", "/api/v1/payout-batches", in, map[string]string{"Idempotency-Key": "k1"})
	if st != 201 || !bytes.Equal(again, body) {
		t.Fatalf("replay: %d %s", st, again)
	}
	if st, body := creator.json("POST", "/api/v1/payout-batches", map[string]string{"program": models.DemoProgram}, map[string]string{"Idempotency-Key": "k1"}); st != 422 || errorOf(t, body).Error.Code != "idempotency_mismatch" {
		t.Fatalf("same key, other body: %d %s", st, body)
	}
	if st, body := creator.json("POST", "/api/v1/payout-batches", in, nil); st != 409 || errorOf(t, body).Error.Code != "nothing_owed" {
		t.Fatalf("nothing left: %d %s", st, body)
	}
	// The worker starts only now: its holder check returns the mismatched
	// line's entitlement to owed, which would make "nothing left" a race.
	w := h.worker()
	defer w.Stop()
	id := created.ID.String()
	if st, _, _ := a.login(other.Email).get("/api/v1/payout-batches/" + id); st != 404 {
		t.Fatalf("another agency sees the batch: %d", st)
	}

	h.waitFor("the holder check", time.Minute, func() bool { return creator.batch(created.ID).Status == models.BatchAwaitingApproval })
	b := creator.batch(created.ID)
	failedAtCheck := 0
	for _, l := range b.Lines {
		if l.Status == models.LineFailed && l.FailureReason != "" {
			failedAtCheck++
		}
	}
	if failedAtCheck != 1 || len(b.Lines) != 4 {
		t.Fatalf("after the holder check: %+v", b)
	}
	if st, body, _ := creator.get("/api/v1/payout-batches/" + id + "/bank-file?bank=004"); st != 409 || errorOf(t, body).Error.Code != "batch_not_approved" {
		t.Fatalf("bank file before approval: %d %s", st, body)
	}
	if st, body := creator.json("POST", "/api/v1/payout-batches/"+id+"/approve", nil, nil); st != 403 || errorOf(t, body).Error.Code != "segregation_of_duties" {
		t.Fatalf("self-approval: %d %s", st, body)
	}
	if st, body := approver.json("POST", "/api/v1/payout-batches/"+id+"/approve", nil, map[string]string{"Idempotency-Key": "ap1"}); st != 202 {
		t.Fatalf("approve: %d %s", st, body)
	}
	if st, _ := approver.json("POST", "/api/v1/payout-batches/"+id+"/approve", nil, map[string]string{"Idempotency-Key": "ap1"}); st != 202 {
		t.Fatalf("approval replay: %d", st)
	}
	if st, body := approver.json("POST", "/api/v1/payout-batches/"+id+"/approve", nil, nil); st != 409 || errorOf(t, body).Error.Code != "already_approved" {
		t.Fatalf("second approval: %d %s", st, body)
	}

	audit := a.login(auditor.Email)
	if st, _, _ := audit.get("/api/v1/payout-batches/" + id + "/bank-file?bank=004"); st != 403 {
		t.Fatalf("auditor downloads account numbers: %d", st)
	}
	if st, _, _ := audit.get("/api/v1/payout-batches/" + id); st != 200 {
		t.Fatalf("auditor reads the batch: %d", st)
	}
	if st, body, _ := creator.get("/api/v1/payout-batches/" + id + "/bank-file?bank=999"); st != 422 || errorOf(t, body).Error.Code != "unsupported_bank" {
		t.Fatalf("unsupported bank: %d %s", st, body)
	}
	st, file, hdr := creator.get("/api/v1/payout-batches/" + id + "/bank-file?bank=004")
	if st != 200 || !strings.Contains(hdr.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("bank file: %d %s", st, hdr)
	}
	sum := sha256.Sum256(file)
	if n := h.count(`SELECT count(*) FROM audit_log WHERE action = 'payout.bank_file' AND details->>'sha256' = $1`, hex.EncodeToString(sum[:])); n != 1 {
		t.Fatal("the bank file's SHA-256 is not in the audit log")
	}
	keys, accounts, amounts := bankFileRows(t, file)
	if len(keys) != 3 {
		t.Fatalf("bank file has %d transfers, want the 3 approved", len(keys))
	}
	codes := []string{"0000", "0000", "E201"}

	refused := []struct {
		name, filename string
		content        []byte
		fields         map[string]string
		status         int
		code           string
	}{
		{"unknown key", "r.csv", resultCSV([]string{"RLF-0000-1", keys[1], keys[2]}, accounts, amounts, codes), nil, 422, "invalid_result_file"},
		{"changed amount", "r.csv", resultCSV(keys, accounts, []int64{amounts[0] + 1000, amounts[1], amounts[2]}, codes), nil, 422, "invalid_result_file"},
		{"wrong total", "r.csv", resultCSV(keys[:2], accounts[:2], amounts[:2], codes[:2]), nil, 422, "total_mismatch"},
		{"unsupported bank", "r.csv", resultCSV(keys, accounts, amounts, codes), map[string]string{"bank": "999"}, 422, "unsupported_bank"},
		{"wrong format", "r.txt", resultCSV(keys, accounts, amounts, codes), nil, 422, "unsupported_format"},
		{"not a workbook", "r.xlsx", []byte("hello"), nil, 422, "unreadable_file"},
	}
	for _, r := range refused {
		st, body := creator.upload("/api/v1/payout-batches/"+id+"/results", r.filename, r.content, r.fields)
		if st != r.status || errorOf(t, body).Error.Code != r.code {
			t.Errorf("%s: %d %s", r.name, st, body)
		}
	}
	if n := h.count(`SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND approved AND status <> 'sending'`, created.ID); n != 0 {
		t.Fatalf("refused imports changed %d lines", n)
	}
	if n := h.count(`SELECT count(*) FROM audit_log WHERE action = 'payout.results_rejected'`); n != int64(len(refused)) {
		t.Fatalf("%d refusals audited, want %d", n, len(refused))
	}
	st, body = creator.upload("/api/v1/payout-batches/"+id+"/results", "result.csv", resultCSV(keys, accounts, amounts, codes), map[string]string{"bank": "004"})
	var imp models.PayoutImport
	if err := json.Unmarshal(body, &imp); st != 200 || err != nil || imp.Settled != 2 || imp.Failed != 1 {
		t.Fatalf("import: %d %s", st, body)
	}
	res := h.workflowResult(created.ID, time.Minute)
	if res.Status != models.BatchCompleted || res.Paid != 2 || res.Failed != 2 {
		t.Fatalf("workflow result %+v", res)
	}
	b = creator.batch(created.ID)
	if b.PaidTotal != amounts[0]+amounts[1] || b.Status != models.BatchCompleted {
		t.Fatalf("batch after import %+v", b)
	}
	var recon models.PayoutRecon
	st, body = audit.json("GET", "/api/v1/payout-batches/"+id+"/reconciliation", nil, nil)
	if err := json.Unmarshal(body, &recon); st != 200 || err != nil || !recon.Balanced || recon.Total.Settled != b.PaidTotal ||
		recon.Total.Owed != seeded.Total || recon.Total.Failed != seeded.Total-b.PaidTotal {
		t.Fatalf("reconciliation %d %s", st, body)
	}
	if st, _, hdr := audit.get("/api/v1/payout-batches/" + id + "/reconciliation.xlsx"); st != 200 || hdr.Get("X-Content-SHA256") == "" {
		t.Fatalf("reconciliation sheet: %d", st)
	}

	// The pages, in Korean.
	for _, p := range []string{"/payouts", "/payouts/" + id, "/payouts/" + id + "/progress", "/payouts/" + id + "/reconciliation"} {
		st, body, _ := creator.get(p)
		if st != 200 || !bytes.Contains(body, []byte("지급")) {
			t.Errorf("page %s: %d", p, st)
		}
	}
	// The failed lines are owed again: a batch from the form takes them, and
	// its creator's approval from the page is refused.
	st, hdr = creator.form("/payouts", url.Values{"program": {models.DemoProgram}, "channel": {"api"}, "idempotency_key": {"f1"}})
	loc := hdr.Get("Location")
	if st != 303 || !strings.HasPrefix(loc, "/payouts/") {
		t.Fatalf("form create: %d %s", st, loc)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(loc, "/payouts/"), "?msg=created")
	st, hdr = creator.form("/payouts/"+next+"/approve", nil)
	if st != 303 || !strings.Contains(hdr.Get("Location"), "err=") {
		t.Fatalf("self-approval from the page: %d %s", st, hdr.Get("Location"))
	}
}
