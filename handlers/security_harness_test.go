package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

// The security tests share one fixture: the real handler chain (cross-origin
// protection included) on a fresh database with two agencies' programs, one
// user per role in agency KPOST (plus the same roles in MSS, the foreign
// agency), and claims that are "own" or "foreign" to each of them.

// secRoles are the roles of the access matrix; "" is anonymous.
var secRoles = []string{"", models.RoleMerchant, models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleFinance, models.RoleAuditor}

const secForeignProgram = "MSS-SEC"

type secClaim struct {
	ID        uuid.UUID
	ReceiptNo string
	Program   string
	Merchant  *models.User
	PII       []string // values that must never reach someone who may not see the claim
	Personal  []string // the personal data among them (BRN, representative, phone, holder)
}

// secEnv is the fixture.
type secEnv struct {
	t        *testing.T
	store    *models.Store
	srv      *handlers.Server
	h        http.Handler
	logs     *secLog
	users    map[string]*models.User // role → KPOST user (merchant: merchant A)
	mss      map[string]*models.User // role → MSS user
	merchB   *models.User            // another merchant
	finance2 *models.User            // a second KPOST finance user
	// Claims: A is merchant A's in the KPOST program; B is merchant B's in the
	// KPOST program (foreign to A, own agency for KPOST staff); M is merchant
	// B's in the MSS program (foreign to A and to every KPOST staff member).
	A, B, M secClaim
	objects map[string]secObject // other areas' fixtures by kind
}

// secObject is an own (KPOST) and a foreign (MSS) instance of some object;
// OwnByRole, when set, is the own instance per role (objects that belong to
// one user, such as export jobs).
type secObject struct {
	Own, Foreign string
	OwnByRole    map[string]string
}

type secLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *secLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *secLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type secOption func(env map[string]string)

func newSecEnv(t *testing.T, opts ...secOption) *secEnv {
	t.Helper()
	ctx := context.Background()
	env := map[string]string{"RELIEF_DATA_KEY": vault.NewKeySpec("sec")}
	for _, o := range opts {
		o(env)
	}
	store, cfg := newTestStore(t, env)
	if _, err := store.Pool.Exec(ctx, `INSERT INTO programs (code, agency_code, name, platform, outage_starts_at, outage_ends_at,
			window_opens_at, window_closes_at, compensation_cap, four_eyes_threshold, fast_track_limit)
		SELECT $2, 'MSS', '중기부 시험 사업', platform, outage_starts_at, outage_ends_at, window_opens_at, window_closes_at,
			compensation_cap, four_eyes_threshold, fast_track_limit FROM programs WHERE code = $1`, models.DemoProgram, secForeignProgram); err != nil {
		t.Fatal(err)
	}
	logs := &secLog{}
	srv := newTestServer(t, handlers.Deps{Store: store, Config: cfg, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	e := &secEnv{t: t, store: store, srv: srv, h: srv.Handler(), logs: logs,
		users: map[string]*models.User{}, mss: map[string]*models.User{}, objects: map[string]secObject{}}
	for _, role := range secRoles[1:] {
		agency := "KPOST"
		if role == models.RoleMerchant {
			agency = ""
		}
		e.users[role] = e.newUser(fmt.Sprintf("%s@kpost.test", role), agency, role)
		if role != models.RoleMerchant {
			e.mss[role] = e.newUser(fmt.Sprintf("%s@mss.test", role), "MSS", role)
		}
	}
	e.merchB = e.newUser("merchant-b@example.test", "", models.RoleMerchant)
	e.finance2 = e.newUser("finance2@kpost.test", "KPOST", models.RoleFinance)
	e.A = e.fileClaim(e.users[models.RoleMerchant], models.DemoProgram, 1)
	e.B = e.fileClaim(e.merchB, models.DemoProgram, 2)
	e.M = e.fileClaim(e.merchB, secForeignProgram, 3)
	e.makeObjects()
	return e
}

func (e *secEnv) newUser(email, agency string, roles ...string) *models.User {
	e.t.Helper()
	u, err := e.store.CreateUser(context.Background(), models.NewUser{Email: email, Name: "직원 " + strings.SplitN(email, "@", 2)[0],
		Phone: "010-2000-0000", Password: "correct horse battery", Roles: roles, Agency: agency})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// fileClaim files a claim whose personal data is unique to n.
func (e *secEnv) fileClaim(u *models.User, program string, n int) secClaim {
	e.t.Helper()
	brn := rules.ValidBRNFromSeed(123_457 + n*7919)
	c := secClaim{Program: program, Merchant: u}
	business, rep, phone := fmt.Sprintf("보안상회%02d", n), fmt.Sprintf("남궁대표%02d", n), fmt.Sprintf("010-93%02d-71%02d", n, n)
	account, holder := fmt.Sprintf("9%02d0123456%02d", n, n), fmt.Sprintf("황보예금%02d", n)
	in := &models.ClaimInput{Program: program, BRN: brn.Formatted(), BusinessName: business, Representative: rep, Phone: phone,
		Category: "food", Region: "세종", ClaimedLoss: 1_500_000,
		Bank:  models.BankInput{BankCode: "088", AccountNumber: account, Holder: holder},
		Goods: []models.GoodsItem{{SKU: "S-1", Name: "배", UnitPrice: 20000, Quantity: 5}}}
	body, _ := json.Marshal(in)
	status, resp, err := e.store.FileClaim(context.Background(), u, uuid.NewString(), models.RequestHash("POST", "/api/v1/claims", body), in)
	if err != nil || status != http.StatusAccepted {
		e.t.Fatalf("file claim: %d %v", status, err)
	}
	var f models.Filed
	if err := json.Unmarshal(resp, &f); err != nil {
		e.t.Fatal(err)
	}
	c.ID, c.ReceiptNo = f.ID, f.ReceiptNo
	c.PII = []string{f.ID.String(), f.ReceiptNo, brn.String(), brn.Formatted(), business, rep, phone, account, holder}
	c.Personal = []string{brn.String(), brn.Formatted(), rep, phone, holder}
	return c
}

// makeObjects creates, by SQL against the other areas' tables, one own (KPOST)
// and one foreign (MSS) instance of each object a route can name by id.
func (e *secEnv) makeObjects() {
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		e.t.Helper()
		if _, err := e.store.Pool.Exec(ctx, sql, args...); err != nil {
			e.t.Fatalf("fixture %s: %v", sql, err)
		}
	}
	ids := func() secObject { return secObject{Own: uuid.NewString(), Foreign: uuid.NewString()} }

	imports := ids()
	for i, p := range []string{models.DemoProgram, secForeignProgram} {
		id, by := imports.Own, e.users[models.RoleProgramAdmin]
		if i == 1 {
			id, by = imports.Foreign, e.mss[models.RoleProgramAdmin]
		}
		exec(`INSERT INTO ledger_imports (id, program_code, uploaded_by, filename, format, size_bytes, sha256, status)
			VALUES ($1, $2, $3, 'ledger.csv', 'csv', 10, '\x00', 'done')`, id, p, by.ID)
	}
	e.objects["import"] = imports

	// The own batch is made by a second finance user, so the matrix's finance
	// user is not its creator (segregation of duties has its own test).
	batches := ids()
	for i, p := range []string{models.DemoProgram, secForeignProgram} {
		id, by := batches.Own, e.finance2
		if i == 1 {
			id, by = batches.Foreign, e.mss[models.RoleFinance]
		}
		exec(`INSERT INTO payout_batches (id, program_code, cutoff, created_by, status) VALUES ($1, $2, now(), $3, 'awaiting_approval')`, id, p, by.ID)
	}
	e.objects["batch"] = batches

	// Export jobs belong to whoever asked: each role has its own; the foreign
	// one is another agency's.
	jobs := ids()
	jobs.OwnByRole = map[string]string{}
	// (Finished jobs: a poll of a queued one resumes it in the background.)
	for role, u := range e.users {
		if role == models.RoleMerchant {
			continue // merchants have no jobs; theirs is the auditor's
		}
		id := uuid.NewString()
		jobs.OwnByRole[role] = id
		exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by, status, error, finished_at) VALUES ($1, $2, 'summary', $3, 'failed', 'fixture', now())`,
			id, models.DemoProgram, u.ID)
	}
	jobs.Own = jobs.OwnByRole[models.RoleAuditor]
	exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by, status, error, finished_at) VALUES ($1, $2, 'summary', $3, 'failed', 'fixture', now())`,
		jobs.Foreign, secForeignProgram, e.mss[models.RoleAuditor].ID)
	e.objects["export"] = jobs

	// Tranches (drafts) and purchase orders, own and foreign.
	tranches, pos := ids(), ids()
	for i, p := range []string{models.DemoProgram, secForeignProgram} {
		tid, poid, by, cl := tranches.Own, pos.Own, e.users[models.RoleProgramAdmin], e.A
		if i == 1 {
			tid, poid, by, cl = tranches.Foreign, pos.Foreign, e.mss[models.RoleProgramAdmin], e.M
		}
		exec(`INSERT INTO tranches (id, program_code, seq, name, budget, created_by) VALUES ($1, $2, 1, '1차', 1000000, $3)`, tid, p, by.ID)
		exec(`INSERT INTO purchase_orders (id, order_no, tranche_id, claim_id, program_code, amount) VALUES ($1, $2, $3, $4, $5, 100000)`,
			poid, "PO-"+poid[:8], tid, cl.ID, p)
	}
	e.objects["tranche"], e.objects["po"] = tranches, pos

	// The merchant's sales in the platform ledger, so the offer has figures.
	brnA := e.A.PII[2]
	for d := 0; d < 40; d++ {
		exec(`INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission) VALUES ($1, $2, $3, 'food', 100000, 6000)`,
			models.DemoProgram, brnA, time.Date(2025, 8, 25, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d))
	}

	docs := ids()
	for i, c := range []secClaim{e.A, e.M} {
		id := docs.Own
		if i == 1 {
			id = docs.Foreign
		}
		exec(`INSERT INTO claim_documents (id, claim_id, uploaded_by, filename, content_type, size_bytes, sha256, data)
			VALUES ($1, $2, $3, 'evidence.pdf', 'application/pdf', 8, sha256('%PDF-1.7'::bytea), '%PDF-1.7'::bytea)`, id, c.ID, c.Merchant.ID)
	}
	e.objects["document"] = docs
}

// session signs u in (a fresh server-side session per request, so a request
// that logs out cannot disturb the next) and returns the cookie value.
func (e *secEnv) session(u *models.User) string {
	e.t.Helper()
	tok := models.NewSessionToken()
	if err := e.store.CreateSession(context.Background(), u.ID, tok, "", time.Hour); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// secReq is one request of a security test.
type secReq struct {
	method, path string
	body         []byte
	contentType  string
	header       map[string]string
	as           *models.User // nil: anonymous
	token        string       // a session made beforehand (else one is made for as)
}

func (e *secEnv) do(r secReq) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.path, body)
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	switch {
	case r.token != "":
		req.AddCookie(&http.Cookie{Name: "relief_session", Value: r.token})
	case r.as != nil:
		req.AddCookie(&http.Cookie{Name: "relief_session", Value: e.session(r.as)})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// secTables are the tables whose rows a GET must not change. Sessions are
// compared without last_seen_at (touching it is how idle timeouts work) and
// the audit log may only grow by the actions reads are meant to log.
var secReadAuditActions = map[string]bool{models.ActionViewPersonalData: true, "claim.view_personal_data": true,
	"claim.document.download": true, "export.download": true, "export.generate": true, "export.tranche_sheet": true,
	"payout.bank_file": true, "payout.bank_file_refused": true, "payout.reconciliation_sheet": true}

// dbState fingerprints every table (row count and content hash).
func (e *secEnv) dbState() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	rows, err := e.store.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT IN ('goose_db_version', 'audit_log', 'sessions') ORDER BY 1`)
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	// The audit log is append-only (a trigger); what a read may add is
	// checked by action: anything else shows up as the action's name.
	parts := []string{`SELECT 'sessions', count(*)::text || ':' || coalesce(md5(string_agg(encode(token_hash, 'hex') || user_id::text || created_at::text || expires_at::text, ',' ORDER BY token_hash)), '') FROM sessions`,
		`SELECT 'audit_log:' || action, count(*)::text FROM audit_log WHERE action NOT IN ('` + strings.Join(keys(secReadAuditActions), "','") + `') GROUP BY action`}
	for _, tbl := range tables {
		id := pgx.Identifier{tbl}.Sanitize()
		parts = append(parts, `SELECT '`+tbl+`', count(*)::text || ':' || coalesce(md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))), '') FROM `+id+` t`)
	}
	rows, err = e.store.Pool.Query(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			e.t.Fatal(err)
		}
		out[k] = v
	}
	rows.Close()
	return out
}

// auditMark is the newest audit entry's id (0 for none).
func (e *secEnv) auditMark() int64 {
	e.t.Helper()
	var id int64
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// viewsLogged reports whether a personal-data view of claim was audit-logged after mark.
func (e *secEnv) viewsLogged(mark int64, claim secClaim) bool {
	e.t.Helper()
	var n int
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE id > $1 AND subject = $2 AND action = ANY($3)`,
		mark, models.PersonalDataSubject(claim.ID), models.PersonalDataActions).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n > 0
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func diffState(before, after map[string]string) []string {
	var changed []string
	for k, v := range after {
		if before[k] != v {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			changed = append(changed, k)
		}
	}
	return changed
}
