package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// session is a signed-in API user: the Cookie header to send.
type session struct {
	email  string
	cookie string
}

// login signs in through POST /api/v1/session, waiting out 429 and 503.
func login(ctx context.Context, c *http.Client, base, email, password string) (*session, error) {
	body := map[string]string{"email": email, "password": password}
	for attempt := 0; ; attempt++ {
		st, data, h, err := apiCall(ctx, c, http.MethodPost, base+"/api/v1/session", "", "", body)
		if err == nil && st == http.StatusOK {
			var parts []string
			for _, ck := range (&http.Response{Header: h}).Cookies() {
				if ck.Value != "" && ck.MaxAge >= 0 {
					parts = append(parts, ck.Name+"="+ck.Value)
				}
			}
			if len(parts) == 0 {
				return nil, fmt.Errorf("login %s: 200 without a session cookie", email)
			}
			return &session{email: email, cookie: strings.Join(parts, "; ")}, nil
		}
		if err == nil && st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("login %s: HTTP %d: %s", email, st, snippet(data))
		}
		if attempt >= 30 {
			return nil, fmt.Errorf("login %s: still failing: %v (HTTP %d)", email, err, st)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return nil, err
		}
	}
}

// apiCall sends one JSON request. It carries no Origin header, so the
// server's cross-origin protection treats it as a non-browser client.
func apiCall(ctx context.Context, c *http.Client, method, url, cookie, idemKey string, body any) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return 0, nil, nil, err
			}
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
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	return resp.StatusCode, data, resp.Header, err
}

// callRetrying repeats a state-changing call with the same Idempotency-Key
// and body on transport errors, 429 and 503 until it gets another answer or
// ctx ends.
func callRetrying(ctx context.Context, c *http.Client, method, url, cookie, idemKey string, body any) (int, []byte, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		st, data, h, err := apiCall(rctx, c, method, url, cookie, idemKey, body)
		cancel()
		if err == nil && st != http.StatusTooManyRequests && st != http.StatusServiceUnavailable {
			return st, data, nil
		}
		wait := time.Second
		if err == nil {
			wait = retryAfter(h.Get("Retry-After"))
		}
		if serr := sleepCtx(ctx, wait); serr != nil {
			return st, data, fmt.Errorf("%s %s: gave up (%v, last HTTP %d)", method, url, err, st)
		}
	}
}

// retryAfter reads Retry-After seconds, capped at 2 s so drills stay short
// (the server says 5 s for 503 and 429).
func retryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 500 * time.Millisecond
	}
	return min(time.Duration(secs)*time.Second, 2*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// claimInput is a claim that passes validation: BRN from the NTS-valid seed
// space (rules.ValidBRNFromSeed), a KB국민 account, one goods line. It is a
// pure function of seed, so a retry sends the same bytes.
func claimInput(seed int) models.ClaimInput {
	return models.ClaimInput{
		Program:        models.DemoProgram,
		BRN:            rules.ValidBRNFromSeed(seed).Formatted(),
		BusinessName:   fmt.Sprintf("장애훈련상회 %d", seed),
		Representative: "김훈련",
		Phone:          fmt.Sprintf("010-%04d-%04d", 1000+seed/10000%9000, seed%10000),
		Category:       "food",
		Region:         "대전",
		ClaimedLoss:    int64(500_000 + seed%9000*1000),
		Bank:           models.BankInput{BankCode: "004", AccountNumber: fmt.Sprintf("9004%09d", seed), Holder: "김훈련"},
		Goods:          []models.GoodsItem{{SKU: "DRILL-RICE-10", Name: "햅쌀 10kg", UnitPrice: 25_000, Quantity: int64(1 + seed%50), Perishable: true}},
	}
}

// newKey returns a random Idempotency-Key.
func newKey() string { return uuid.NewString() }

// runTag is a short random tag keeping runs apart in names.
func runTag() string { return strings.ToLower(rand.Text()[:6]) }

// receipt is the 202 answer to a claim.
type receipt struct {
	ID        uuid.UUID `json:"id"`
	ReceiptNo string    `json:"receipt_no"`
	Status    string    `json:"status"`
}
