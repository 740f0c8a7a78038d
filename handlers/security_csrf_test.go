package handlers_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/relief/relief/models"
)

// Every state-changing route (generated from the router) refuses a request a
// browser marks as cross-site, or whose Origin is another site, with 403
// cross_origin, and nothing in the database changes — not even the audit log
// or the sessions. The same request from the same origin gets through.
func TestCrossSiteRequestsRefusedOnEveryUnsafeRoute(t *testing.T) {
	e := newSecEnv(t)
	hostile := map[string]map[string]string{
		"cross-site fetch + foreign Origin": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"cross-site fetch":                  {"Sec-Fetch-Site": "cross-site"},
		"same-site (sibling subdomain)":     {"Sec-Fetch-Site": "same-site"},
		"foreign Origin, no fetch metadata": {"Origin": "https://evil.example"},
		"null Origin (sandboxed frame)":     {"Origin": "null"},
	}
	unsafe := 0
	for _, r := range e.srv.Routes() {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue
		}
		unsafe++
		rule := secMatrix[r.Method+" "+r.Path] // a missing entry fails the matrix test
		// As someone who may use the route, on their own object, with a body
		// that would be accepted.
		role := ""
		for _, candidate := range secRoles[1:] {
			if rule.allows(candidate) {
				role = candidate
				break
			}
		}
		path, program, _ := e.params(r.Path, rule, role, true)
		c := secCase{route: r.Method + " " + r.Path, role: role, variant: "own", path: path, program: program, rule: rule}
		for name, h := range hostile {
			req := secReq{method: r.Method, path: path, header: map[string]string{"Idempotency-Key": "csrf-" + name}}
			for k, v := range h {
				req.header[k] = v
			}
			if role != "" {
				req.token = e.session(e.users[role])
			}
			req.body, req.contentType = c.body(true)
			before := e.dbState()
			mark := e.auditMark()
			rec := e.do(req)
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusForbidden || body.Error.Code != "cross_origin" {
				t.Errorf("%s %s (%s): got %d %s, want 403 cross_origin", r.Method, path, name, rec.Code, rec.Body.String())
			}
			if changed := diffState(before, e.dbState()); len(changed) > 0 || e.auditMark() != mark {
				t.Errorf("%s %s (%s): a refused cross-site request changed %v (audit %d → %d)", r.Method, path, name, changed, mark, e.auditMark())
			}
			if len(rec.Result().Cookies()) > 0 {
				t.Errorf("%s %s (%s): a refused request set cookies", r.Method, path, name)
			}
		}
		// Control: the same request from this origin passes the check.
		req := secReq{method: r.Method, path: path, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com", "Idempotency-Key": "same-origin"}}
		if role != "" {
			req.token = e.session(e.users[role])
		}
		req.body, req.contentType = c.body(false)
		if rec := e.do(req); rec.Code == http.StatusForbidden && strings.Contains(rec.Body.String(), "cross_origin") {
			t.Errorf("%s %s: a same-origin request was refused as cross-origin", r.Method, path)
		}
	}
	if unsafe < 10 {
		t.Fatalf("only %d unsafe routes found: the route list is not what this test expects", unsafe)
	}
	// Reads stay allowed cross-site (links from e-mail, bookmarks).
	rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/programs", header: hostile["cross-site fetch + foreign Origin"]})
	if rec.Code != http.StatusOK {
		t.Fatalf("cross-site GET: %d", rec.Code)
	}
}

// No GET, for anyone, changes the database: covered route by route, role by
// role, by TestAccessControlMatrix (dbState before and after every read).
// This test adds the reads' query-string variants that pages use.
func TestReadsWithQueryStringsChangeNothing(t *testing.T) {
	e := newSecEnv(t)
	for _, c := range []struct {
		role, path string
	}{
		{models.RoleReviewer, "/review/queue?status=in_review&sort=amount&limit=5"},
		{models.RoleAuditor, "/api/v1/audit/personal-data-views?claim=" + e.A.ReceiptNo + "&limit=1"},
		{models.RoleMerchant, "/claims?cursor=bogus"},
		{models.RoleMerchant, "/api/v1/claims?status=received&limit=1"},
		{models.RoleMerchant, "/lang/en?next=/claims"},
		{"", "/login?next=//evil.example"},
		{"", "/public/programs/" + models.DemoProgram + ".csv"},
		{"", "/public/programs/" + models.DemoProgram + ".json"},
	} {
		req := secReq{method: http.MethodGet, path: c.path}
		if c.role != "" {
			req.token = e.session(e.users[c.role])
		}
		before := e.dbState()
		rec := e.do(req)
		if rec.Code >= 500 {
			t.Errorf("GET %s: %d", c.path, rec.Code)
		}
		if changed := diffState(before, e.dbState()); len(changed) > 0 {
			t.Errorf("GET %s as %s changed %v", c.path, or(c.role, "anonymous"), changed)
		}
		if loc := rec.Header().Get("Location"); strings.HasPrefix(loc, "//") || strings.Contains(loc, "evil.example") {
			t.Errorf("GET %s redirects off-site to %q", c.path, loc)
		}
	}
	if !slices.Contains(models.PersonalDataActions, models.ActionViewPersonalData) {
		t.Fatal("the agreed action name is not listed")
	}
}
