package handlers_test

// The exports area's test environment: the real handler chain on a fresh
// database with the demo program, staff of two agencies, a merchant, and
// helpers that put claims, entitlements and payouts in place.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

const expPassword = "correct horse battery"

type expEnv struct {
	t        *testing.T
	url      string
	store    *models.Store
	srv      *handlers.Server
	merchant *models.User
	users    map[string]*models.User // by email
}

func newExpEnv(t *testing.T) *expEnv {
	t.Helper()
	ctx := context.Background()
	store, cfg := newTestStore(t, nil)
	e := &expEnv{t: t, store: store, users: map[string]*models.User{}}
	e.srv = newTestServer(t, handlers.Deps{Store: store, Config: cfg})
	e.url = serveTest(t, e.srv, "")
	for _, u := range []struct {
		email, agency string
		roles         []string
	}{
		{"reviewer@kpost.test", "KPOST", []string{models.RoleReviewer}},
		{"auditor@kpost.test", "KPOST", []string{models.RoleAuditor}},
		{"finance@kpost.test", "KPOST", []string{models.RoleFinance}},
		{"finance2@kpost.test", "KPOST", []string{models.RoleFinance}},
		{"reviewer@mss.test", "MSS", []string{models.RoleReviewer, models.RoleFinance}},
		{"merchant@shop.test", "", []string{models.RoleMerchant}},
	} {
		created, err := store.CreateUser(ctx, models.NewUser{Email: u.email, Name: strings.Split(u.email, "@")[0], Password: expPassword,
			Roles: u.roles, Agency: u.agency})
		if err != nil {
			t.Fatal(err)
		}
		e.users[u.email] = created
	}
	e.merchant = e.users["merchant@shop.test"]
	return e
}

type expClient struct {
	e  *expEnv
	hc *http.Client
}

// anonymous is a client without a session.
func (e *expEnv) anonymous() *expClient {
	jar, _ := cookiejar.New(nil)
	return &expClient{e: e, hc: &http.Client{Jar: jar}}
}

// login signs a user in through the API.
func (e *expEnv) login(email string) *expClient {
	e.t.Helper()
	c := e.anonymous()
	if r := c.do("POST", "/api/v1/session", map[string]string{"email": email, "password": expPassword}); r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	return c
}

type expResponse struct {
	status int
	header http.Header
	body   []byte
}

func (c *expClient) do(method, path string, body any, header ...string) expResponse {
	c.e.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "application/x-www-form-urlencoded"
	default:
		rd = jsonBody(c.e.t, b)
	}
	status, h, out := roundTrip(c.e.t, c.hc, method, c.e.url+path, rd, contentType, header)
	return expResponse{status: status, header: h, body: out}
}

func (r expResponse) must(t *testing.T, status int) expResponse {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %.400s", r.status, status, r.body)
	}
	return r
}

func (r expResponse) code(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("not an error envelope: %s", r.body)
	}
	return e.Error.Code
}

func (e *expEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.store.Pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *expEnv) scan(sql string, args []any, dest ...any) {
	e.t.Helper()
	if err := e.store.Pool.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// fileClaim files one claim through the intake (encrypted account and all).
func (e *expEnv) fileClaim(seed int, name, region, category string, loss int64) uuid.UUID {
	e.t.Helper()
	in := &models.ClaimInput{Program: models.DemoProgram, BRN: rules.ValidBRNFromSeed(seed).String(), BusinessName: name,
		Representative: "김대표", Phone: "010-1234-5678", Category: category, Region: region, ClaimedLoss: loss,
		Bank:  models.BankInput{BankCode: "004", AccountNumber: fmt.Sprintf("1002%010d", seed), Holder: "김대표"},
		Goods: []models.GoodsItem{{SKU: "A-1", Name: "사과", UnitPrice: 25000, Quantity: 10, Perishable: true}}}
	body, _ := json.Marshal(in)
	_, resp, err := e.store.FileClaim(context.Background(), e.merchant, fmt.Sprintf("k-%d", seed),
		models.RequestHash("POST", "/api/v1/claims", body), in)
	if err != nil {
		e.t.Fatal(err)
	}
	var f models.Filed
	if err := json.Unmarshal(resp, &f); err != nil {
		e.t.Fatal(err)
	}
	return f.ID
}

var expStatuses = []string{models.StatusReceived, models.StatusInReview, models.StatusApproved, models.StatusRejected,
	models.StatusEntitled, models.StatusPaid, models.StatusAutoApproved}

// bulkClaims inserts n claims in one statement (the intake would take
// minutes for thousands), with deterministic regions, categories, statuses
// and amounts; paid ≤ owed as the schema demands.
func (e *expEnv) bulkClaims(n int, from int) {
	e.t.Helper()
	e.exec(`INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name, representative, phone,
			category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4, account_blind_index,
			account_holder, status, estimated_loss, approved_compensation, owed_total, paid_total, created_at)
		SELECT gen_random_uuid(), 'B' || lpad(i::text, 8, '0'), $1, $2, lpad((1000000000 + i)::text, 10, '0'),
			'상점 ' || i, '대표 ' || i, '010-0000-0000', ($3::text[])[1 + i % 9], ($4::text[])[1 + i % 17],
			10000 * (i % 997 + 1), '004', decode(repeat('00', 38), 'hex'), 't1', '0000', decode(repeat('00', 32), 'hex'), '예금주',
			($5::text[])[1 + i % 7], 9000 * (i % 991), 5000 * (i % 13), 7000 * (i % 13), 3000 * (i % 13),
			now() - make_interval(hours => i % 240)
		FROM generate_series($6::int, $6::int + $7::int - 1) AS i`,
		models.DemoProgram, e.merchant.ID, models.Categories, models.Regions, expStatuses, from, n)
}
