package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relief/relief/models"
)

type secTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *secTestClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *secTestClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (e *secEnv) login(email, password string, header map[string]string) *httptest.ResponseRecorder {
	return e.do(secReq{method: http.MethodPost, path: "/api/v1/session", header: header,
		body: []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))})
}

func sessionCookieOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "relief_session" {
			return ck
		}
	}
	return nil
}

func (e *secEnv) me(token string) int {
	return e.do(secReq{method: http.MethodGet, path: "/api/v1/me", token: token}).Code
}

// A user's sessions end when their roles change: the next request with the
// old cookie is not signed in, on the API and on pages.
func TestRoleChangeSignsTheUserOut(t *testing.T) {
	e := newSecEnv(t)
	rec := e.login("reviewer@kpost.test", "correct horse battery", nil)
	ck := sessionCookieOf(rec)
	if rec.Code != http.StatusOK || ck == nil {
		t.Fatalf("login: %d", rec.Code)
	}
	other := sessionCookieOf(e.login("reviewer@kpost.test", "correct horse battery", nil)) // a second device
	if e.me(ck.Value) != http.StatusOK || e.me(other.Value) != http.StatusOK {
		t.Fatal("not signed in")
	}
	admin := e.users[models.RoleProgramAdmin]
	if _, err := e.store.ChangeUserRoles(context.Background(), admin, e.users[models.RoleReviewer].ID,
		[]string{models.RoleReviewer, models.RoleApprover}, "KPOST"); err != nil {
		t.Fatal(err)
	}
	if got := e.me(ck.Value); got != http.StatusUnauthorized {
		t.Fatalf("old session after a role change: %d, want 401", got)
	}
	if got := e.me(other.Value); got != http.StatusUnauthorized {
		t.Fatalf("the other device's session after a role change: %d, want 401", got)
	}
	page := e.do(secReq{method: http.MethodGet, path: "/review", token: ck.Value})
	if page.Code != http.StatusSeeOther || !strings.HasPrefix(page.Header().Get("Location"), "/login") {
		t.Fatalf("page with the old session: %d %s", page.Code, page.Header().Get("Location"))
	}
	// Signing in again gives the new roles.
	fresh := sessionCookieOf(e.login("reviewer@kpost.test", "correct horse battery", nil))
	body := e.do(secReq{method: http.MethodGet, path: "/api/v1/me", token: fresh.Value}).Body.String()
	if !strings.Contains(body, models.RoleApprover) {
		t.Fatalf("me after re-login: %s", body)
	}
}

// Idle and absolute timeouts, enforced server-side, seen through HTTP.
func TestSessionIdleAndAbsoluteTimeouts(t *testing.T) {
	e := newSecEnv(t, func(env map[string]string) {
		env["RELIEF_SESSION_IDLE"], env["RELIEF_SESSION_ABSOLUTE"] = "30m", "2h"
	})
	clock := &secTestClock{t: time.Now()}
	e.store.Now = clock.Now
	idle := sessionCookieOf(e.login("merchant@kpost.test", "correct horse battery", nil))
	busy := sessionCookieOf(e.login("merchant@kpost.test", "correct horse battery", nil))
	if idle.MaxAge != int((2 * time.Hour).Seconds()) {
		t.Fatalf("cookie Max-Age %d, want the absolute lifetime", idle.MaxAge)
	}
	for i := 1; i <= 5; i++ {
		clock.Add(20 * time.Minute)
		if got := e.me(busy.Value); got != http.StatusOK {
			t.Fatalf("busy session after %d min: %d", 20*i, got)
		}
		if i == 2 {
			if got := e.me(idle.Value); got != http.StatusUnauthorized {
				t.Fatalf("session idle for 40 min: %d, want 401", got)
			}
		}
	}
	clock.Add(20 * time.Minute)
	if got := e.me(busy.Value); got != http.StatusUnauthorized {
		t.Fatalf("session 2 h after login: %d, want 401", got)
	}
}

// Logging out from the page ends the session server-side; a copy of the
// cookie is worthless afterwards.
func TestPageLogoutEndsTheSessionServerSide(t *testing.T) {
	e := newSecEnv(t)
	ck := sessionCookieOf(e.login("auditor@kpost.test", "correct horse battery", nil))
	rec := e.do(secReq{method: http.MethodPost, path: "/logout", token: ck.Value})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	cleared := sessionCookieOf(rec)
	if cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Fatalf("logout did not clear the cookie: %+v", cleared)
	}
	if got := e.me(ck.Value); got != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d", got)
	}
}

// Login throttling per account and per address, through HTTP: the 11th
// attempt on an account is 429 whether or not the account exists, and a
// forged X-Forwarded-For does not buy a fresh address budget.
func TestLoginThrottlingThroughHTTP(t *testing.T) {
	e := newSecEnv(t)
	for _, email := range []string{"merchant@kpost.test", "nobody@nowhere.test"} {
		var last *httptest.ResponseRecorder
		for i := 0; i < 10; i++ {
			last = e.login(email, "wrong password!", map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)})
			if last.Code != http.StatusUnauthorized {
				t.Fatalf("%s attempt %d: %d", email, i+1, last.Code)
			}
		}
		last = e.login(email, "wrong password!", map[string]string{"X-Forwarded-For": "198.51.100.250"})
		if last.Code != http.StatusTooManyRequests || !strings.Contains(last.Body.String(), `"throttled"`) || last.Header().Get("Retry-After") == "" {
			t.Fatalf("%s 11th attempt: %d %s", email, last.Code, last.Body.String())
		}
	}
	// The right password is throttled too while the account is (no oracle).
	if rec := e.login("merchant@kpost.test", "correct horse battery", nil); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("correct password on a throttled account: %d", rec.Code)
	}
	// Spraying many accounts from one address (httptest's 192.0.2.1), however
	// X-Forwarded-For is forged: the address budget ends it.
	refused := 0
	for i := 0; i < 60; i++ {
		rec := e.login(fmt.Sprintf("spray%d@example.test", i), "Winter2025!", map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.0.%d", i)})
		if rec.Code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("60 accounts sprayed from one address were never throttled: X-Forwarded-For is trusted")
	}
	var ips []string
	rows, err := e.store.Pool.Query(context.Background(), `SELECT DISTINCT ip FROM audit_log WHERE action = 'login_failed'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ip string
		_ = rows.Scan(&ip)
		ips = append(ips, ip)
	}
	rows.Close()
	if len(ips) != 1 || ips[0] != "192.0.2.1" {
		t.Fatalf("audit log records forged addresses: %v", ips)
	}
}

// With RELIEF_TRUSTED_PROXIES the proxy's X-Forwarded-For is believed, and
// only from the proxy.
func TestTrustedProxyForwardedFor(t *testing.T) {
	e := newSecEnv(t, func(env map[string]string) { env["RELIEF_TRUSTED_PROXIES"] = "192.0.2.0/24" })
	rec := e.login("nobody@nowhere.test", "wrong password!", map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if rec.Code != http.StatusUnauthorized {
		t.Fatal(rec.Code)
	}
	var ip string
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT ip FROM audit_log WHERE action = 'login_failed'`).Scan(&ip); err != nil || ip != "203.0.113.9" {
		t.Fatalf("client address behind a trusted proxy: %q %v", ip, err)
	}
}

// Unknown e-mail and wrong password answer alike, byte for byte, and take
// about as long (the timing is measured and logged, not asserted: shared CI
// machines are noisy).
func TestLoginAnswersAlikeForUnknownAndKnownUsers(t *testing.T) {
	e := newSecEnv(t)
	known := e.login("finance@kpost.test", "wrong password!", nil)
	unknown := e.login("finance@nowhere.test", "wrong password!", nil)
	if known.Code != unknown.Code || !bytes.Equal(known.Body.Bytes(), unknown.Body.Bytes()) {
		t.Fatalf("known %d %s vs unknown %d %s", known.Code, known.Body, unknown.Code, unknown.Body)
	}
	for _, h := range []string{"Content-Type", "Set-Cookie", "Retry-After"} {
		if known.Header().Get(h) != unknown.Header().Get(h) {
			t.Fatalf("header %s differs: %q vs %q", h, known.Header().Get(h), unknown.Header().Get(h))
		}
	}
	page := func(email string) string {
		rec := e.do(secReq{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
			body: []byte("email=" + url.QueryEscape(email) + "&password=wrong+password%21&next=%2Fclaims")})
		body := strings.ReplaceAll(rec.Body.String(), email, "EMAIL")
		return fmt.Sprint(rec.Code) + regexp.MustCompile(`request_id[^<]*|[0-9a-f]{16}`).ReplaceAllString(body, "")
	}
	if a, b := page("finance@kpost.test"), page("finance@nowhere.test"); a != b {
		t.Fatal("the login page answers differently for a known and an unknown e-mail")
	}
	measure := func(email string) time.Duration {
		const n = 6
		start := time.Now()
		for i := 0; i < n; i++ {
			e.login(email, fmt.Sprintf("wrong password %d", i), map[string]string{})
		}
		return time.Since(start) / n
	}
	// Fresh throttle budget per account: 6 attempts each stay under 10.
	k, u := measure("approver@kpost.test"), measure("approver@nowhere.test")
	t.Logf("mean login time: known user, wrong password %v; unknown user %v (ratio %.2f)", k, u, float64(k)/float64(u))
}
