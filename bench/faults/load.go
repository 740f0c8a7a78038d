package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/bench/internal/loadgen"
	"github.com/relief/relief/models/rules"
)

// loadOpts describe a steady claim load.
type loadOpts struct {
	rate     float64       // claims offered per second
	dur      time.Duration // how long new claims are offered
	seedBase int           // BRN seeds seedBase, seedBase+1, ...
	giveUp   time.Duration // a claim stops retrying this long after its due time
}

// request is one claim as the client sees it: a fixed body and key, retried
// until the server acknowledges it (202) or refuses it for good.
type request struct {
	seed     int
	brn      string // 10 digits
	key      string
	body     []byte
	merchant *session

	acked    bool
	id       uuid.UUID // from the 202
	final    int       // the last HTTP status (0: none)
	attempts int
	gaveUp   bool
}

// attempt is one HTTP exchange.
type attempt struct {
	start  time.Time
	lat    time.Duration
	status int    // 0: transport error
	err    string // transport error kind
}

type load struct {
	opts  loadOpts
	reqs  []*request
	start time.Time
	mu    sync.Mutex
	atts  []attempt
}

const attemptTimeout = 15 * time.Second

// newLoad prepares the requests, spread over the env's merchants.
func newLoad(e *env, o loadOpts) (*load, error) {
	n := int(o.rate * o.dur.Seconds())
	l := &load{opts: o, reqs: make([]*request, n)}
	for i := range n {
		seed := o.seedBase + i
		in := claimInput(seed)
		body, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		l.reqs[i] = &request{seed: seed, brn: rules.ValidBRNFromSeed(seed).String(), key: newKey(), body: body,
			merchant: e.merchants[i%len(e.merchants)]}
	}
	return l, nil
}

// run offers the claims at the fixed rate and returns when every claim is
// acknowledged, refused or given up.
func (l *load) run(ctx context.Context, e *env) {
	l.start = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i, r := range l.reqs {
		due := loadgen.Intended(l.start, l.opts.rate, i)
		if sleepCtx(ctx, time.Until(due)) != nil {
			r.gaveUp = true
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.gaveUp = true
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.send(ctx, e, r, due)
		}()
	}
	wg.Wait()
}

// send files one claim, retrying with the same key and body on transport
// errors, 429 and any 5xx (a 5xx other than 503 still counts against the
// drill).
func (l *load) send(ctx context.Context, e *env, r *request, due time.Time) {
	url := e.base + "/api/v1/claims"
	for {
		if time.Since(due) > l.opts.giveUp || ctx.Err() != nil {
			r.gaveUp = true
			return
		}
		t0 := time.Now()
		st, data, h, err := l.post(ctx, e.http, url, r)
		a := attempt{start: t0, lat: time.Since(t0), status: st}
		if err != nil {
			a.status, a.err = 0, errKind(err)
		}
		l.mu.Lock()
		l.atts = append(l.atts, a)
		l.mu.Unlock()
		r.attempts++
		r.final = a.status
		switch {
		case a.status == http.StatusAccepted:
			var rc receipt
			if json.Unmarshal(data, &rc) == nil {
				r.id = rc.ID
			}
			r.acked = true
			return
		case a.status == 0 || a.status == http.StatusTooManyRequests || a.status >= 500:
			wait := 300 * time.Millisecond
			if h != nil && a.status != 0 {
				wait = retryAfter(h.Get("Retry-After"))
			}
			if sleepCtx(ctx, wait) != nil {
				r.gaveUp = true
				return
			}
		default: // refused for good
			return
		}
	}
}

func (l *load) post(ctx context.Context, c *http.Client, url string, r *request) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = http.Header{
		"Content-Type":    {"application/json"},
		"Accept":          {"application/json"},
		"Idempotency-Key": {r.key},
		"Cookie":          {r.merchant.cookie},
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, data, resp.Header, err
}

func errKind(err error) string {
	s := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "Client.Timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "reset by peer") || strings.Contains(s, "broken pipe"):
		return "reset"
	case strings.Contains(s, "EOF"):
		return "eof"
	}
	return "other"
}

// summary of a load run.
type loadSummary struct {
	sent, acked, refused, gaveUp int
	attempts, retried            int
	byStatus                     map[string]int // over all attempts
	bad5xx                       int            // 5xx answers other than 503
}

func (l *load) summary() loadSummary {
	s := loadSummary{sent: len(l.reqs), byStatus: map[string]int{}}
	for _, r := range l.reqs {
		switch {
		case r.acked:
			s.acked++
		case r.gaveUp:
			s.gaveUp++
		default:
			s.refused++
		}
		if r.attempts > 1 {
			s.retried++
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s.attempts = len(l.atts)
	for _, a := range l.atts {
		k := fmt.Sprint(a.status)
		if a.status == 0 {
			k = "conn:" + a.err
		}
		s.byStatus[k]++
		if a.status >= 500 && a.status != http.StatusServiceUnavailable {
			s.bad5xx++
		}
	}
	return s
}

// window returns the attempts that started in [from, to).
func (l *load) window(from, to time.Time) []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []attempt
	for _, a := range l.atts {
		if !a.start.Before(from) && a.start.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// refusals describes the final answers of refused claims (status: count).
func (l *load) refusals() string {
	m := map[int]int{}
	for _, r := range l.reqs {
		if !r.acked && !r.gaveUp {
			m[r.final]++
		}
	}
	return fmtCounts(m)
}

func fmtStatus(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fmtCounts(m map[int]int) string {
	s := map[string]int{}
	for k, v := range m {
		s[fmt.Sprint(k)] = v
	}
	return fmtStatus(s)
}
