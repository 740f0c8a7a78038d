package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
)

// TestMain gives the package's tests a private PostgreSQL cluster. Other test
// files in package handlers_test share it: do not declare a second TestMain.
func TestMain(m *testing.M) { pgtest.Main(m) }

const apiSessionCookie = "relief_session"

// apiServer is the real handler chain (cross-origin protection included) on a
// fresh database with the demo program, served over a loopback socket.
type apiServer struct {
	t     *testing.T
	url   string
	store *models.Store
}

func newAPIServer(t *testing.T) *apiServer {
	t.Helper()
	store, cfg := newTestStore(t, nil)
	srv := newTestServer(t, handlers.Deps{Store: store, Config: cfg})
	// GET /readyz is 503 by design without Temporal.
	return &apiServer{t: t, store: store, url: serveTest(t, srv, ": bad input must never give a 5xx", "GET /readyz")}
}

// apiClient is one browser or script: its own cookie jar.
type apiClient struct {
	a   *apiServer
	jar *cookiejar.Jar
	hc  *http.Client
}

func (a *apiServer) client() *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{a: a, jar: jar, hc: &http.Client{Jar: jar}}
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the API's error envelope.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
		ID      string            `json:"id"`
	} `json:"error"`
}

func (r apiResponse) err(t *testing.T) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d: body is not the error envelope: %v: %s", r.status, err, r.body)
	}
	if e.Error.Message == "" {
		t.Errorf("error %s without a message", e.Error.Code)
	}
	return e
}

// expect checks status and error code (and, when given, that field names a problem).
func (r apiResponse) expect(t *testing.T, status int, code string, field ...string) apiError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	e := r.err(t)
	if e.Error.Code != code {
		t.Fatalf("error.code = %q, want %q: %s", e.Error.Code, code, r.body)
	}
	for _, f := range field {
		if e.Error.Fields[f] == "" {
			t.Fatalf("error.fields lacks %q: %s", f, r.body)
		}
	}
	return e
}

func (c *apiClient) do(method, path string, body any, header ...string) apiResponse {
	c.a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		rd = jsonBody(c.a.t, b)
	}
	status, h, out := roundTrip(c.a.t, c.hc, method, c.a.url+path, rd, "application/json", header)
	return apiResponse{status: status, header: h, body: out}
}

func (c *apiClient) session() string {
	u, _ := url.Parse(c.a.url)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == apiSessionCookie {
			return ck.Value
		}
	}
	return ""
}

func (c *apiClient) setSession(token string) {
	u, _ := url.Parse(c.a.url)
	c.jar.SetCookies(u, []*http.Cookie{{Name: apiSessionCookie, Value: token, Path: "/"}})
}

// merchant signs up and signs in a new merchant.
func (a *apiServer) merchant(email string) *apiClient {
	a.t.Helper()
	c := a.client()
	c.do("POST", "/api/v1/merchants/signup", map[string]string{"email": email, "password": "correct horse battery", "name": "김상인", "phone": "010-1111-2222"}).
		mustStatus(a.t, http.StatusCreated)
	c.do("POST", "/api/v1/session", map[string]string{"email": email, "password": "correct horse battery"}).mustStatus(a.t, http.StatusOK)
	return c
}

func (r apiResponse) mustStatus(t *testing.T, status int) apiResponse {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func (a *apiServer) count(sql string, args ...any) int {
	a.t.Helper()
	var n int
	if err := a.store.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

func apiClaimBody(brn string) map[string]any {
	return map[string]any{"program": models.DemoProgram, "brn": brn, "business_name": "대전상회", "representative": "김대전",
		"phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": 3_500_000, "accept_offer": false,
		"bank":  map[string]any{"bank_code": "004", "account_number": "12345678901234", "holder": "김대전"},
		"goods": []map[string]any{{"sku": "A-1", "name": "사과", "unit_price": 25000, "quantity": 120, "perishable": true}}}
}

type apiFiled struct {
	ID        uuid.UUID `json:"id"`
	ReceiptNo string    `json:"receipt_no"`
	Status    string    `json:"status"`
}

func (c *apiClient) fileClaim(key string, body any) apiResponse {
	c.a.t.Helper()
	return c.do("POST", "/api/v1/claims", body, "Idempotency-Key", key)
}

func (r apiResponse) filed(t *testing.T) apiFiled {
	t.Helper()
	r.mustStatus(t, http.StatusAccepted)
	var f apiFiled
	if err := json.Unmarshal(r.body, &f); err != nil || f.ID == uuid.Nil || f.ReceiptNo == "" || f.Status != models.StatusReceived {
		t.Fatalf("202 body %s: %v", r.body, err)
	}
	return f
}

func TestFileClaimAndReadItBack(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	f := c.fileClaim("k1", apiClaimBody("120-81-47521")).filed(t)
	r := c.do("GET", "/api/v1/claims/"+f.ID.String(), nil).mustStatus(t, http.StatusOK)
	var got struct {
		ID        uuid.UUID `json:"id"`
		ReceiptNo string    `json:"receipt_no"`
		Status    string    `json:"status"`
		BRN       string    `json:"brn"`
		Bank      struct {
			AccountMasked string `json:"account_masked"`
		} `json:"bank"`
		Timeline []struct {
			Status string `json:"status"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != f.ID || got.ReceiptNo != f.ReceiptNo || got.Status != models.StatusReceived || len(got.Timeline) != 1 {
		t.Fatalf("claim = %s", r.body)
	}
	if bytes.Contains(r.body, []byte("12345678901234")) || !strings.HasSuffix(got.Bank.AccountMasked, "1234") {
		t.Fatalf("account not masked: %s", r.body)
	}
}

func TestMalformedJSON(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	for _, body := range []string{`{"program":`, `not json`, `{"program":"KPOST-2025-NIRS"} {"again":1}`} {
		c.fileClaim("k-"+body, body).expect(t, http.StatusBadRequest, "malformed_json")
	}
	c.fileClaim("k-type", `{"claimed_loss":"lots"}`).expect(t, http.StatusBadRequest, "malformed_json", "claimed_loss")
	c.do("POST", "/api/v1/session", `{"email":`).expect(t, http.StatusBadRequest, "malformed_json")
	c.do("POST", "/api/v1/merchants/signup", `[`).expect(t, http.StatusBadRequest, "malformed_json")
	if n := a.count(`SELECT count(*) FROM claims`); n != 0 {
		t.Fatalf("%d claims written from malformed bodies", n)
	}
}

func TestInvalidBRN(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	for _, brn := range []string{"120-81-47522", "12081475", "abc-de-fghij"} {
		c.fileClaim("k-"+brn, apiClaimBody(brn)).expect(t, http.StatusUnprocessableEntity, "invalid_brn", "brn")
	}
	bad := apiClaimBody("1208147522")
	bad["bank"] = map[string]any{"bank_code": "004", "account_number": "12", "holder": "김대전"}
	e := c.fileClaim("k-many", bad).expect(t, http.StatusUnprocessableEntity, "invalid_brn", "brn", "bank.account_number")
	if len(e.Error.Fields) < 2 {
		t.Fatalf("every bad field is named: %v", e.Error.Fields)
	}
	if n := a.count(`SELECT count(*) FROM claims`) + a.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("rows written for an invalid claim: %d", n)
	}
}

func TestDuplicateClaimNamesTheExistingOne(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	first := c.fileClaim("k1", apiClaimBody("120-81-47521")).filed(t)
	// Same BRN, new key, written differently: still the same business.
	e := c.fileClaim("k2", apiClaimBody("1208147521")).expect(t, http.StatusConflict, "duplicate_claim")
	if e.Error.ID != first.ID.String() {
		t.Fatalf("duplicate names %q, want the existing claim %s", e.Error.ID, first.ID)
	}
	// Another merchant filing for the same business gets the same answer.
	b := a.merchant("b@example.kr")
	b.fileClaim("k1", apiClaimBody("120-81-47521")).expect(t, http.StatusConflict, "duplicate_claim")
	if n := a.count(`SELECT count(*) FROM claims`); n != 1 {
		t.Fatalf("claims = %d, want 1", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	c.do("POST", "/api/v1/claims", apiClaimBody("120-81-47521")).expect(t, http.StatusBadRequest, "idempotency_key_required")
	c.fileClaim("   ", apiClaimBody("120-81-47521")).expect(t, http.StatusBadRequest, "idempotency_key_required")
	if n := a.count(`SELECT count(*) FROM claims`); n != 0 {
		t.Fatalf("claim written without a key: %d", n)
	}

	first := c.fileClaim("same-key", apiClaimBody("120-81-47521"))
	first.filed(t)
	replay := c.fileClaim("same-key", apiClaimBody("120-81-47521"))
	if replay.status != first.status || !bytes.Equal(replay.body, first.body) {
		t.Fatalf("replay = %d %s, want the original %d %s", replay.status, replay.body, first.status, first.body)
	}
	other := apiClaimBody("120-81-47521")
	other["claimed_loss"] = 3_500_001
	c.fileClaim("same-key", other).expect(t, http.StatusUnprocessableEntity, "idempotency_mismatch")
	// A key is the caller's: another merchant's same key is a new request.
	b := a.merchant("b@example.kr")
	b.fileClaim("same-key", apiClaimBody("220-81-62517")).filed(t)
	if n := a.count(`SELECT count(*) FROM claims`); n != 2 {
		t.Fatalf("claims = %d, want 2", n)
	}
}

func TestBodyOverOneMiB(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	big := apiClaimBody("120-81-47521")
	big["business_name"] = strings.Repeat("가", 1<<20/3+10) // > 1 MiB of UTF-8
	c.fileClaim("k-big", big).expect(t, http.StatusRequestEntityTooLarge, "too_large")
	c.do("POST", "/api/v1/merchants/signup", map[string]string{"email": "x@example.kr", "password": strings.Repeat("p", 2<<20), "name": "x"}).
		expect(t, http.StatusRequestEntityTooLarge, "too_large")
	if n := a.count(`SELECT count(*) FROM claims`) + a.count(`SELECT count(*) FROM users WHERE email = 'x@example.kr'`); n != 0 {
		t.Fatalf("rows written from an oversized body: %d", n)
	}
}

func TestUnknownProgram(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	body := apiClaimBody("120-81-47521")
	body["program"] = "NOPE-2099"
	c.fileClaim("k", body).expect(t, http.StatusNotFound, "program_not_found")
	c.do("GET", "/api/v1/programs/NOPE-2099", nil).expect(t, http.StatusNotFound, "program_not_found")
	c.do("GET", "/api/v1/programs/"+models.DemoProgram, nil).mustStatus(t, http.StatusOK)
}

func TestNotSignedIn(t *testing.T) {
	a := newAPIServer(t)
	anon := a.client()
	anon.fileClaim("k", apiClaimBody("120-81-47521")).expect(t, http.StatusUnauthorized, "unauthorized")
	anon.do("GET", "/api/v1/me", nil).expect(t, http.StatusUnauthorized, "unauthorized")
	anon.do("GET", "/api/v1/claims", nil).expect(t, http.StatusUnauthorized, "unauthorized")
	anon.do("GET", "/api/v1/claims/"+uuid.NewString(), nil).expect(t, http.StatusUnauthorized, "unauthorized")
	// A made-up session token is no session.
	anon.setSession("forged-token")
	anon.do("GET", "/api/v1/me", nil).expect(t, http.StatusUnauthorized, "unauthorized")
	if n := a.count(`SELECT count(*) FROM claims`); n != 0 {
		t.Fatalf("claims = %d", n)
	}
}

func TestOtherMerchantsClaimAndMalformedIDAreNotFound(t *testing.T) {
	a := newAPIServer(t)
	owner := a.merchant("owner@example.kr")
	f := owner.fileClaim("k", apiClaimBody("120-81-47521")).filed(t)
	stranger := a.merchant("stranger@example.kr")
	hidden := stranger.do("GET", "/api/v1/claims/"+f.ID.String(), nil)
	hidden.expect(t, http.StatusNotFound, "not_found")
	absent := stranger.do("GET", "/api/v1/claims/"+uuid.NewString(), nil)
	absent.expect(t, http.StatusNotFound, "not_found")
	if !bytes.Equal(hidden.body, absent.body) {
		t.Fatalf("someone else's claim must look exactly like a missing one: %s vs %s", hidden.body, absent.body)
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(stranger.do("GET", "/api/v1/claims", nil).mustStatus(t, http.StatusOK).body, &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("stranger lists %d claims (%v)", len(list.Items), err)
	}
	for _, id := range []string{"not-a-uuid", "1", f.ID.String() + "x", "%27%20OR%201%3D1"} {
		owner.do("GET", "/api/v1/claims/"+id, nil).expect(t, http.StatusNotFound, "not_found")
	}
	owner.do("GET", "/api/v1/claims/"+f.ID.String(), nil).mustStatus(t, http.StatusOK)
}

func TestCrossOriginPostsAreRefusedAndWriteNothing(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
	} {
		t.Run(h[0], func(t *testing.T) {
			c.do("POST", "/api/v1/claims", apiClaimBody("120-81-47521"), "Idempotency-Key", "x-"+h[0], h[0], h[1]).
				expect(t, http.StatusForbidden, "cross_origin")
			c.do("POST", "/api/v1/merchants/signup", map[string]string{"email": "csrf@example.kr", "password": "correct horse battery", "name": "x"}, h[0], h[1]).
				expect(t, http.StatusForbidden, "cross_origin")
			before := c.session()
			c.do("DELETE", "/api/v1/session", nil, h[0], h[1]).expect(t, http.StatusForbidden, "cross_origin")
			c.do("POST", "/api/v1/session", map[string]string{"email": "a@example.kr", "password": "correct horse battery"}, h[0], h[1]).
				expect(t, http.StatusForbidden, "cross_origin")
			if n := a.count(`SELECT count(*) FROM claims`) + a.count(`SELECT count(*) FROM idempotency_keys`) +
				a.count(`SELECT count(*) FROM users WHERE email = 'csrf@example.kr'`); n != 0 {
				t.Fatalf("a cross-origin request wrote %d rows", n)
			}
			if c.session() != before {
				t.Fatal("a cross-origin request changed the session cookie")
			}
			c.do("GET", "/api/v1/me", nil).mustStatus(t, http.StatusOK) // still signed in: logout was refused
			// Reads are not state-changing and stay allowed.
			c.do("GET", "/api/v1/programs", nil, h[0], h[1]).mustStatus(t, http.StatusOK)
		})
	}
	// Same-origin requests pass the same check.
	c.do("POST", "/api/v1/claims", apiClaimBody("220-81-62517"), "Idempotency-Key", "same-origin", "Sec-Fetch-Site", "same-origin", "Origin", a.url).
		filed(t)
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	a := newAPIServer(t)
	a.merchant("a@example.kr")
	anon := a.client()
	wrong := anon.do("POST", "/api/v1/session", map[string]string{"email": "a@example.kr", "password": "wrong password!"})
	wrong.expect(t, http.StatusUnauthorized, "invalid_credentials")
	unknown := anon.do("POST", "/api/v1/session", map[string]string{"email": "nobody@example.kr", "password": "wrong password!"})
	unknown.expect(t, http.StatusUnauthorized, "invalid_credentials")
	if !bytes.Equal(wrong.body, unknown.body) {
		t.Fatalf("wrong password %s and unknown email %s must answer alike", wrong.body, unknown.body)
	}
	if anon.session() != "" || wrong.header.Get("Set-Cookie") != "" {
		t.Fatal("a failed login set a session cookie")
	}
	anon.do("POST", "/api/v1/session", map[string]string{"email": "A@Example.kr ", "password": "correct horse battery"}).mustStatus(t, http.StatusOK)
}

func TestSessionCookieFlagsAndRotation(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")

	// A planted (fixation) value and the previous session are both replaced.
	planted := a.client()
	planted.setSession("attacker-chosen-token")
	r := planted.do("POST", "/api/v1/session", map[string]string{"email": "a@example.kr", "password": "correct horse battery"}).mustStatus(t, http.StatusOK)
	var ck *http.Cookie
	for _, k := range (&http.Response{Header: r.header}).Cookies() {
		if k.Name == apiSessionCookie {
			ck = k
		}
	}
	if ck == nil {
		t.Fatal("login set no session cookie")
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode && ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite Lax or Strict, Path /", ck)
	}
	if ck.Value == "attacker-chosen-token" || len(ck.Value) < 32 {
		t.Fatalf("session token %q was not freshly issued", ck.Value)
	}

	old := c.session()
	c.do("POST", "/api/v1/session", map[string]string{"email": "a@example.kr", "password": "correct horse battery"}).mustStatus(t, http.StatusOK)
	rotated := c.session()
	if rotated == "" || rotated == old {
		t.Fatalf("login kept the session token (%q → %q)", old, rotated)
	}
	c.do("GET", "/api/v1/me", nil).mustStatus(t, http.StatusOK)
	replayer := a.client()
	replayer.setSession(old)
	replayer.do("GET", "/api/v1/me", nil).expect(t, http.StatusUnauthorized, "unauthorized")
	if n := a.count(`SELECT count(*) FROM sessions`); n != 2 {
		t.Fatalf("sessions = %d, want 2 (this browser's and the planted one's login)", n)
	}
}

func TestLogoutEndsTheSessionServerSide(t *testing.T) {
	a := newAPIServer(t)
	c := a.merchant("a@example.kr")
	token := c.session()
	var me struct {
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(c.do("GET", "/api/v1/me", nil).mustStatus(t, http.StatusOK).body, &me); err != nil ||
		me.Email != "a@example.kr" || !slices.Equal(me.Roles, []string{models.RoleMerchant}) {
		t.Fatalf("me = %+v %v", me, err)
	}
	r := c.do("DELETE", "/api/v1/session", nil).mustStatus(t, http.StatusNoContent)
	if c.session() != "" {
		t.Fatalf("logout left the cookie: %v", r.header.Values("Set-Cookie"))
	}
	// Someone who kept a copy of the cookie gets nothing.
	stolen := a.client()
	stolen.setSession(token)
	stolen.do("GET", "/api/v1/me", nil).expect(t, http.StatusUnauthorized, "unauthorized")
	stolen.fileClaim("k", apiClaimBody("120-81-47521")).expect(t, http.StatusUnauthorized, "unauthorized")
	if n := a.count(`SELECT count(*) FROM sessions`); n != 0 {
		t.Fatalf("sessions left after logout: %d", n)
	}
	c.do("DELETE", "/api/v1/session", nil).mustStatus(t, http.StatusNoContent) // logging out twice is fine
}

func TestReadyzWithoutTemporal(t *testing.T) {
	a := newAPIServer(t)
	c := a.client()
	c.do("GET", "/healthz", nil).mustStatus(t, http.StatusOK)
	r := c.do("GET", "/readyz", nil).mustStatus(t, http.StatusServiceUnavailable)
	var body struct {
		Down   []string          `json:"down"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(body.Down, []string{"temporal"}) || body.Checks["postgres"] != "ok" {
		t.Fatalf("readyz = %s, want only temporal down", r.body)
	}
}
