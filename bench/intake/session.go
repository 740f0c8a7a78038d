package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// merchant is one signed-up account and its session cookie header value.
type merchant struct {
	email, password string
	cookie          string // "name=value; name2=value2" as sent in Cookie
}

// apiCall sends one JSON request and returns the status, body (at most 64 KiB)
// and headers. It carries no Origin or Sec-Fetch-Site header, so Go's
// http.CrossOriginProtection treats it as a same-origin, non-browser request.
func apiCall(ctx context.Context, c *http.Client, method, url, cookie string, body any) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, data, resp.Header, err
}

// apiCallPatient is apiCall that waits out 429 answers (signup and login are
// throttled) by honouring Retry-After, until ctx ends.
func apiCallPatient(ctx context.Context, c *http.Client, method, url, cookie string, body any) (int, []byte, http.Header, error) {
	for {
		st, data, h, err := apiCall(ctx, c, method, url, cookie, body)
		if err != nil || st != http.StatusTooManyRequests {
			return st, data, h, err
		}
		wait := retryAfter(h.Get("Retry-After"), time.Now())
		select {
		case <-ctx.Done():
			return st, data, h, fmt.Errorf("still throttled (429) when setup time ran out: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// retryAfter interprets a Retry-After header: delay-seconds or an HTTP date.
// A missing or unreadable header means one second; delays are capped at 5
// minutes (the run's own deadline cuts any wait shorter).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Second
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(secs, 0), 300)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return time.Second
	}
	return min(max(d, 0), 5*time.Minute)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func randomPassword() string {
	return "Bench-" + rand.Text() // 26 base32 characters from crypto/rand
}

// setupMerchants signs up k fresh merchant accounts and logs each in, with a
// few requests in parallel (signup and login hash passwords on the server, so
// more parallelism does not help).
func setupMerchants(ctx context.Context, c *http.Client, base, runID string, k int) ([]merchant, error) {
	ms := make([]merchant, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for j := range ms {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ms[j], errs[j] = setupMerchant(ctx, c, base, runID, j)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ms, nil
}

func setupMerchant(ctx context.Context, c *http.Client, base, runID string, j int) (merchant, error) {
	m := merchant{
		email:    fmt.Sprintf("bench-%s-%d@relief-bench.example", runID, j),
		password: randomPassword(),
	}
	signup := map[string]string{
		"email":    m.email,
		"password": m.password,
		"name":     fmt.Sprintf("부하시험 상점 %s-%d", runID, j),
		"phone":    fmt.Sprintf("010-5%03d-%04d", j/10000%1000, j%10000),
	}
	// The sign-up page signs the new merchant in at once (one password hash,
	// and no login throttle, which allows 50 logins per address per 15
	// minutes: too few for a large run). Servers without the page get the API.
	if cookie, ok, err := formSignup(ctx, c, base, signup); err != nil {
		return m, fmt.Errorf("signup %s: %w", m.email, err)
	} else if ok {
		m.cookie = cookie
		return m, nil
	}
	st, data, _, err := apiCallPatient(ctx, c, http.MethodPost, base+"/api/v1/merchants/signup", "", signup)
	if err != nil {
		return m, fmt.Errorf("signup %s: %w", m.email, err)
	}
	if st != http.StatusCreated {
		return m, fmt.Errorf("signup %s: HTTP %d, want 201: %s", m.email, st, snippet(data))
	}
	login := map[string]string{"email": m.email, "password": m.password}
	st, data, h, err := apiCallPatient(ctx, c, http.MethodPost, base+"/api/v1/session", "", login)
	if err != nil {
		return m, fmt.Errorf("login %s: %w", m.email, err)
	}
	if st != http.StatusOK {
		return m, fmt.Errorf("login %s: HTTP %d, want 200: %s", m.email, st, snippet(data))
	}
	if m.cookie = cookieHeader(h); m.cookie == "" {
		return m, fmt.Errorf("login %s: 200 but no session cookie was set", m.email)
	}
	return m, nil
}

// cookieHeader turns Set-Cookie headers into a Cookie header value. The
// cookies are sent back by hand rather than through a cookie jar: a jar would
// withhold a Secure cookie over plain http://127.0.0.1.
func cookieHeader(h http.Header) string {
	var parts []string
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if ck.Value != "" && ck.MaxAge >= 0 {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
	}
	return strings.Join(parts, "; ")
}

// formSignup signs up through the page (POST /signup), which answers 303 with
// a session cookie. ok is false when the server has no such page (404/405).
func formSignup(ctx context.Context, c *http.Client, base string, fields map[string]string) (cookie string, ok bool, err error) {
	form := url.Values{}
	for k, v := range fields {
		form.Set(k, v)
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/signup", strings.NewReader(form.Encode()))
		if err != nil {
			return "", false, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			return "", false, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
			return "", false, nil
		case resp.StatusCode == http.StatusTooManyRequests:
			select {
			case <-ctx.Done():
				return "", false, fmt.Errorf("still turned away (429) when setup time ran out: %w", ctx.Err())
			case <-time.After(retryAfter(resp.Header.Get("Retry-After"), time.Now())):
			}
			continue
		case resp.StatusCode != http.StatusSeeOther:
			return "", false, fmt.Errorf("sign-up page: HTTP %d, want 303: %s", resp.StatusCode, snippet(body))
		}
		if cookie = cookieHeader(resp.Header); !strings.Contains(cookie, "relief_session=") {
			return "", false, errors.New("sign-up page: 303 but no session cookie was set")
		}
		return cookie, true, nil
	}
}
