package app_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Web processes cache sessions (models/session_cache.go). Through the real
// program: a logged-out cookie is refused at once, and a session ended by
// another process or by psql is refused as soon as the notification lands.
func TestE2ESessionCacheFollowsLogoutAndOtherWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole program")
	}
	p := boot(t)
	signup := newAPIClient(t, p.url)
	signup.must(http.StatusCreated, "signup", "POST", "/api/v1/merchants/signup",
		map[string]string{"email": "cache@example.kr", "password": "correct horse battery", "name": "김캐시", "phone": "010-3333-4444"})

	// loginTwice signs in and returns a client plus a second client holding a
	// copy of the same cookie (a stolen or second-tab copy).
	loginTwice := func() (*apiClient, *apiClient) {
		a := newAPIClient(t, p.url)
		a.must(http.StatusOK, "login", "POST", "/api/v1/session", map[string]string{"email": "cache@example.kr", "password": "correct horse battery"})
		u, _ := url.Parse(p.url)
		b := newAPIClient(t, p.url)
		b.hc.Jar.SetCookies(u, a.hc.Jar.Cookies(u))
		for _, c := range []*apiClient{a, b, a, b} { // the second round is served from the cache
			c.must(http.StatusOK, "own claims", "GET", "/api/v1/claims", nil)
		}
		return a, b
	}
	refusedWithin := func(c *apiClient, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, body := c.call("GET", "/api/v1/claims", nil)
			if st == http.StatusUnauthorized {
				return
			}
			if st != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("%s: the old cookie still answers %d: %s", what, st, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	a, b := loginTwice()
	a.must(http.StatusNoContent, "logout", "DELETE", "/api/v1/session", nil)
	if st, body := b.call("GET", "/api/v1/claims", nil); st != http.StatusUnauthorized {
		t.Fatalf("right after logout the copied cookie answers %d: %s", st, body)
	}

	_, b = loginTwice()
	if _, err := p.store.Pool.Exec(context.Background(), `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	refusedWithin(b, "sessions deleted by another writer")

	_, b = loginTwice()
	if _, err := p.store.Pool.Exec(context.Background(), `UPDATE users SET password_hash = '!reset' WHERE email = 'cache@example.kr'`); err != nil {
		t.Fatal(err)
	}
	refusedWithin(b, "password reset by another writer")
}
