package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relief/relief/bench/internal/loadgen"
)

// Final per-claim outcomes other than an HTTP status.
const (
	stNone      int16 = 0  // not sent, or cut off by the cap
	stTransport int16 = -1 // transport error (see errKind)
)

// Transport error kinds.
const (
	ekNone uint8 = iota
	ekTimeout
	ekRefused
	ekReset
	ekEOF
	ekPorts
	ekFiles
	ekGuard
	ekOther
)

var errKindNames = [...]string{
	ekNone:    "",
	ekTimeout: "timeout",
	ekRefused: "connection refused",
	ekReset:   "connection reset",
	ekEOF:     "connection closed early (EOF)",
	ekPorts:   "no local port available (EADDRNOTAVAIL)",
	ekFiles:   "too many open files",
	ekGuard:   "refused by the loopback guard",
	ekOther:   "other",
}

func classifyErr(err error) uint8 {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ekTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ekRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ekReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ekEOF
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ekPorts
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return ekFiles
	case errors.Is(err, loadgen.ErrNotLoopback):
		return ekGuard
	}
	return ekOther
}

// results holds per-claim outcomes. Each slot is written only by the worker
// currently handling that claim; everything is read after the run.
type results struct {
	status   []int16
	errKind  []uint8
	ids      [][16]byte
	accepted atomic.Int64 // live counters for progress lines
	answered atomic.Int64
	seen429  atomic.Int64
	bad202   atomic.Int64
	not202rx atomic.Int64 // 202 whose status was not "received"

	// The lost-answer drill (-replay-every): a 202 is sent again once with
	// the same key and body, as a client would after a timeout, and must be
	// answered with the same claim.
	replayed       []atomic.Bool
	replays        atomic.Int64
	replayMismatch atomic.Int64

	exMu      sync.Mutex
	exTaken   [1000]atomic.Bool
	examples  map[int]string // first body seen per non-202 status
	otherOnce sync.Once
	otherErr  string
}

func newResults(n int) *results {
	return &results{
		status:   make([]int16, n),
		errKind:  make([]uint8, n),
		ids:      make([][16]byte, n),
		examples: map[int]string{},
	}
}

func (r *results) example(status int, body []byte) {
	if status < 0 || status >= len(r.exTaken) || !r.exTaken[status].CompareAndSwap(false, true) {
		return
	}
	r.exMu.Lock()
	r.examples[status] = snippet(body)
	r.exMu.Unlock()
}

type intakeRun struct {
	opts        *options
	client      *http.Client       // set-up calls
	raw         *loadgen.RawClient // the claims
	base        string             // server base URL, no trailing slash
	claimsPath  string             // request target of POST /api/v1/claims
	bodies      *claimBodies
	keys        *idemKeys
	runID       string
	merchants   []merchant
	perMerchant int
	res         *results
	acceptedIDs [][16]byte // distinct ids of accepted claims, after the run
	early       *earlyMiss // ends the run once it cannot pass (loop engine only); nil: runs whole
	// Connections the claim client opened during the load, and claims it
	// sent again on a fresh connection because a kept-alive one had been
	// closed by the server before answering (same key and body; net/http
	// did the same, uncounted).
	dials, resends int
	warmed         int   // connections opened before the clock started
	setupErr       error // the event loop could not open its connections
}

// preflight fails when nothing listens at the URL and warns when /readyz
// says a dependency is down.
func (r *intakeRun) preflight(ctx context.Context, w io.Writer) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, body, _, err := apiCall(cctx, r.client, http.MethodGet, r.base+"/readyz", "", nil)
	if err != nil {
		return fmt.Errorf("server not reachable at %s: %w", r.base, err)
	}
	if st != http.StatusOK {
		fmt.Fprintf(w, "  warning      GET /readyz answered %d: %s\n", st, snippet(body))
	}
	return nil
}

// checkProgram warns when the program does not answer for a merchant; the run
// goes on, since the claim answers show the problem anyway.
func (r *intakeRun) checkProgram(ctx context.Context, w io.Writer) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, body, _, err := apiCall(cctx, r.client, http.MethodGet, r.base+"/api/v1/programs/"+url.PathEscape(r.opts.program), r.merchants[0].cookie, nil)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  warning      GET program %s: %v\n", r.opts.program, err)
	case st != http.StatusOK:
		fmt.Fprintf(w, "  warning      GET program %s answered %d: %s\n", r.opts.program, st, snippet(body))
	}
}

// rawResponses recycles answer buffers between claims.
var rawResponses = sync.Pool{New: func() any { return new(loadgen.RawResponse) }}

// claimRequest is claim i's request: the request net/http sent before,
// byte for byte (the client writes Host, User-Agent and Content-Length,
// then these fields in the sorted order net/http uses).
func (r *intakeRun) claimRequest(i int) *loadgen.RawRequest {
	m := &r.merchants[min(i/r.perMerchant, len(r.merchants)-1)]
	return &loadgen.RawRequest{
		Method: http.MethodPost,
		Target: r.claimsPath,
		Header: []loadgen.RawHeader{
			{Name: "Accept", Value: "application/json"},
			{Name: "Content-Type", Value: "application/json"},
			{Name: "Cookie", Value: m.cookie},
			{Name: "Idempotency-Key", Value: r.keys.key(i)},
		},
		Body: r.bodies.body(i),
	}
}

// attempt sends claim i once. It is the loadgen.Func of the goroutine
// engine; r.raw enforces -timeout.
func (r *intakeRun) attempt(ctx context.Context, i, attempt int) loadgen.Outcome {
	resp := rawResponses.Get().(*loadgen.RawResponse)
	defer rawResponses.Put(resp)
	err := r.raw.Do(ctx, r.claimRequest(i), resp)
	if err != nil && ctx.Err() != nil { // the duration cap or an interrupt, not the server
		return loadgen.Outcome{Aborted: true}
	}
	return r.record(i, resp, err)
}

// record keeps claim i's answer (or transport error) and says whether to
// send it again.
func (r *intakeRun) record(i int, resp *loadgen.RawResponse, err error) loadgen.Outcome {
	res := r.res
	if err != nil {
		res.status[i] = stTransport
		res.errKind[i] = classifyErr(err)
		if res.errKind[i] == ekOther {
			res.otherOnce.Do(func() { res.otherErr = err.Error() })
		}
		return loadgen.Outcome{}
	}
	data := resp.Body // valid until resp goes back to the pool
	res.answered.Add(1)
	res.status[i] = int16(min(resp.StatusCode, 999))
	switch resp.StatusCode {
	case http.StatusAccepted:
		var filed struct {
			ID        string `json:"id"`
			ReceiptNo string `json:"receipt_no"`
			Status    string `json:"status"`
		}
		id, perr := [16]byte{}, json.Unmarshal(data, &filed)
		if perr == nil {
			id, perr = parseUUID(filed.ID)
		}
		if perr != nil || filed.ReceiptNo == "" || id == ([16]byte{}) {
			res.bad202.Add(1)
			res.example(999, data)
			return loadgen.Outcome{}
		}
		if filed.Status != "received" {
			res.not202rx.Add(1)
		}
		if res.replayed != nil && i%r.opts.replayEvery == 0 {
			if !res.replayed[i].Swap(true) {
				res.ids[i] = id
				return loadgen.Outcome{Retry: true} // send it again at once: the "lost" answer
			}
			res.replays.Add(1)
			if res.ids[i] != id {
				res.replayMismatch.Add(1)
				res.example(998, data)
			}
		}
		res.ids[i] = id
		res.accepted.Add(1)
	case http.StatusConflict:
		// A resubmission: the claim the server names is kept for the check
		// that it is the one filed first (the resubmit scenario).
		var dup struct {
			Error struct {
				Code string `json:"code"`
				ID   string `json:"id"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &dup) == nil && dup.Error.Code == "duplicate_claim" {
			res.ids[i], _ = parseUUID(dup.Error.ID)
		}
		res.example(resp.StatusCode, data)
	case http.StatusTooManyRequests:
		res.seen429.Add(1)
		res.example(resp.StatusCode, data)
		if r.opts.retry {
			return loadgen.Outcome{Retry: true, RetryAfter: retryAfter(resp.RetryAfter, time.Now())}
		}
	default:
		res.example(resp.StatusCode, data)
	}
	return loadgen.Outcome{}
}

// load runs the open loop, printing a progress line every 10 s.
func (r *intakeRun) load(ctx context.Context, w io.Writer) *loadgen.Report {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t0 := time.Now()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(w, "  … %3.0fs  answered %d  accepted %d  429 %d\n", time.Since(t0).Seconds(),
					r.res.answered.Load(), r.res.accepted.Load(), r.res.seen429.Load())
			}
		}
	}()
	// All the connections the run may use are opened before the clock
	// starts, as wrk opens all of its connections first. Dialled during the
	// run instead, they arrive exactly when the server is slowest (a pause
	// of the database holds hundreds of requests, and each request behind
	// them needs another connection), and accepting thousands of connections
	// then took a tenth of the web process's CPU on 2 cores: a 150 ms pause
	// grew into a second of late answers. New connections from a crowd of
	// browsers are the load balancer's to absorb in production. Each is
	// primed with GET /healthz (never turned away, no database): Relief
	// keeps a connection that has served a request for two minutes, one
	// that has not for ten seconds.
	if r.useLoop() {
		return r.loadLoop(ctx)
	}
	warmed, err := r.raw.Warm(ctx, r.opts.concurrency, &loadgen.RawRequest{Method: http.MethodGet, Target: requestTarget(r.base, "/healthz")})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(w, "  warning      opening connections before the run: %v\n", err)
	}
	r.warmed = warmed
	before := r.raw.Stats()
	rep := loadgen.Run(ctx, loadgen.Config{
		N:           r.opts.n,
		Rate:        r.opts.rate,
		Concurrency: r.opts.concurrency,
		Duration:    r.opts.duration,
	}, r.attempt)
	after := r.raw.Stats()
	r.dials, r.resends = int(after.Dials-before.Dials), int(after.Resends-before.Resends)
	return rep
}

// Engines: how the tool sends the claims.
const (
	engineLoop       = "loop"
	engineGoroutines = "goroutines"
	engineUsage      = `how claims are sent: "loop" (one epoll event loop owns every connection, as wrk does; Linux, plain HTTP, runs without -retry or -replay-every) or "goroutines" (a goroutine per request in flight)`
)

func validEngine(name string) bool { return name == engineLoop || name == engineGoroutines }

var errEngine = fmt.Errorf("-engine must be %q or %q", engineLoop, engineGoroutines)

// useLoop: the run goes through loadgen.RunLoop, which sends every claim
// once (no Retry-After waits, no replays).
func (r *intakeRun) useLoop() bool {
	return r.opts.engine == engineLoop && runtime.GOOS == "linux" && r.raw.Plain() && !r.opts.retry && r.res.replayed == nil
}

// engineName is the engine r's run uses.
func engineName(r *intakeRun) string {
	if r.useLoop() {
		return engineLoop
	}
	return engineGoroutines
}

// loadLoop is load on the event loop. Its connections are its own, opened
// and primed before the clock and closed after the run.
func (r *intakeRun) loadLoop(ctx context.Context) *loadgen.Report {
	rep, st, err := loadgen.RunLoop(ctx, loadgen.LoopConfig{
		Config:  loadgen.Config{N: r.opts.n, Rate: r.opts.rate, Concurrency: r.opts.concurrency, Duration: r.opts.duration},
		Client:  r.raw,
		Timeout: r.opts.timeout,
		Prime:   &loadgen.RawRequest{Method: http.MethodGet, Target: requestTarget(r.base, "/healthz")},
	}, func(i int, dst []byte) []byte {
		return r.raw.AppendRequest(dst, r.claimRequest(i))
	}, func(i int, latency time.Duration, resp *loadgen.RawResponse, err error) {
		r.record(i, resp, err)
		if r.early != nil {
			r.early.observe(i, r.res.status[i], r.res.ids[i] != ([16]byte{}), latency)
		}
	})
	r.warmed, r.dials, r.resends = st.Opened, st.Dials, st.Resends
	if err != nil {
		r.setupErr = err
		rep = &loadgen.Report{Latency: make([]time.Duration, r.opts.n), NotSent: r.opts.n}
		for i := range rep.Latency {
			rep.Latency[i] = -1
		}
	}
	return rep
}

// claimsTarget is the request target of the claims endpoint under base, as
// net/http put it on the request line.
func claimsTarget(base string) string { return requestTarget(base, "/api/v1/claims") }

// requestTarget is the request target of path under base.
func requestTarget(base, path string) string {
	u, err := url.Parse(base + path)
	if err != nil {
		panic(err) // base passed loadgen.CheckLoopbackURL
	}
	return u.RequestURI()
}

// openTarget checks that -url is loopback and returns its base URL and the
// lean HTTP/1.1 client the claims go through: one connection per request in
// flight at most, -timeout per request.
func openTarget(rawURL string, concurrency int, timeout time.Duration) (string, *loadgen.RawClient, error) {
	base, err := loadgen.CheckLoopbackURL(rawURL)
	if err != nil {
		return "", nil, err
	}
	raw, err := loadgen.NewRawClient(base.String(), loadgen.RawClientConfig{MaxConns: concurrency, Timeout: timeout})
	return base.String(), raw, err
}

// latencyMS is a latency summary in milliseconds.
type latencyMS struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func toMS(s loadgen.Summary) latencyMS {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return latencyMS{Count: s.Count, Mean: ms(s.Mean), P50: ms(s.P50), P95: ms(s.P95), P99: ms(s.P99), P999: ms(s.P999), Max: ms(s.Max)}
}

// summary is the whole report; the human text is printed from it and -json
// prints it as is.
type summary struct {
	URL           string  `json:"url"`
	Program       string  `json:"program"`
	Claims        int     `json:"claims"`
	OfferedRate   float64 `json:"offered_per_sec"`
	Concurrency   int     `json:"concurrency"`
	DurationCap   string  `json:"duration_cap"`
	Retry         bool    `json:"retry"`
	BRNOffset     uint64  `json:"brn_offset"`
	NextBRNOffset uint64  `json:"next_brn_offset"`

	Scheduled      int     `json:"scheduled"`
	Sent           int     `json:"sent"`
	Completed      int     `json:"completed"`
	CancelledAtCap int     `json:"cancelled_at_cap"`
	NotSent        int     `json:"not_sent"`
	Retries        int     `json:"retries"`
	Responses429   int     `json:"responses_429"`
	CapReached     bool    `json:"cap_reached"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	SentPerSec     float64 `json:"sent_per_sec"`

	Accepted       int     `json:"accepted"`
	AcceptedPerSec float64 `json:"accepted_per_sec"`
	Bad202         int     `json:"bad_202_bodies"`
	NotReceived202 int     `json:"accepted_not_received_status"`
	DuplicateIDs   int     `json:"duplicate_ids"`

	LatencyAccepted latencyMS `json:"latency_ms_accepted"`
	LatencyRejected latencyMS `json:"latency_ms_429"` // final 429 answers (without -retry)
	LatencyAll      latencyMS `json:"latency_ms_all_responses"`
	// WorstSeconds are the one-second windows (by intended send time) with
	// the highest p99 over all answers, worst first: they tell a tail spread
	// over the whole run from one made in a few pauses.
	WorstSeconds    []secondWindow `json:"worst_seconds,omitempty"`
	Status5xx       int            `json:"status_5xx"`
	Replays         int            `json:"replays,omitempty"`         // 202s sent again with the same key (lost-answer drill)
	ReplayMismatch  int            `json:"replay_mismatch,omitempty"` // replays answered with another claim id
	StatusCounts    map[string]int `json:"status_counts"`
	TransportErrors map[string]int `json:"transport_errors"`
	OtherError      string         `json:"other_error_example,omitempty"`
	Examples        map[int]string `json:"example_bodies,omitempty"`

	Engine        string  `json:"engine"` // how the claims were sent: "loop" or "goroutines"
	MaxStartLagMS float64 `json:"max_start_lag_ms"`
	LateStarts    int     `json:"late_starts"`
	MaxInFlight   int     `json:"max_in_flight"`
	ConnsWarmed   int     `json:"connections_opened_before_start"`
	ConnsOpened   int     `json:"connections_opened"`
	StaleResends  int     `json:"stale_connection_resends"`

	Check          *checkResult   `json:"check,omitempty"`
	Pgbench        *pgbenchResult `json:"pgbench,omitempty"`
	RatioToPgbench float64        `json:"ratio_to_pgbench,omitempty"`

	OK       bool     `json:"ok"`
	Failures []string `json:"failures"`
}

func (r *intakeRun) summarizeLoad(rep *loadgen.Report, s *summary) {
	res := r.res
	s.Scheduled, s.Sent, s.Completed = rep.Scheduled, rep.Started, rep.Completed
	s.CancelledAtCap, s.NotSent, s.Retries = rep.Cancelled, rep.NotSent, rep.Retries
	s.CapReached = rep.CapReached
	s.Responses429 = int(res.seen429.Load())
	s.Bad202 = int(res.bad202.Load())
	s.NotReceived202 = int(res.not202rx.Load())
	s.ElapsedSeconds = rep.Elapsed.Seconds()
	s.MaxStartLagMS = float64(rep.MaxStartLag.Microseconds()) / 1000
	s.LateStarts, s.MaxInFlight = rep.LateStarts, rep.MaxInFlight
	s.ConnsOpened, s.StaleResends, s.ConnsWarmed = r.dials, r.resends, r.warmed
	s.StatusCounts = map[string]int{}
	s.TransportErrors = map[string]int{}

	var accLat, rejLat, allLat []time.Duration
	windows := map[int][]time.Duration{}
	for i, lat := range rep.Latency {
		if lat < 0 {
			continue // not completed: no status is final
		}
		st := res.status[i]
		switch {
		case st == stTransport:
			s.TransportErrors[errKindNames[res.errKind[i]]]++
		case st > 0:
			s.StatusCounts[strconv.Itoa(int(st))]++
			allLat = append(allLat, lat)
			sec := int(float64(i) / r.opts.rate)
			windows[sec] = append(windows[sec], lat)
			if st >= 500 {
				s.Status5xx++
			}
			if st == http.StatusTooManyRequests {
				rejLat = append(rejLat, lat)
			}
			if st == http.StatusAccepted && res.ids[i] != ([16]byte{}) {
				accLat = append(accLat, lat)
				r.acceptedIDs = append(r.acceptedIDs, res.ids[i])
			}
		}
	}
	s.Replays, s.ReplayMismatch = int(res.replays.Load()), int(res.replayMismatch.Load())
	s.OtherError = res.otherErr
	s.Examples = res.examples

	// Distinct ids; two accepted claims with one id would be a server bug.
	slices.SortFunc(r.acceptedIDs, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	n := len(r.acceptedIDs)
	r.acceptedIDs = slices.Compact(r.acceptedIDs)
	s.DuplicateIDs = n - len(r.acceptedIDs)

	s.Accepted = len(accLat)
	if rep.Elapsed > 0 {
		s.AcceptedPerSec = float64(s.Accepted) / rep.Elapsed.Seconds()
		s.SentPerSec = float64(s.Sent) / rep.Elapsed.Seconds()
	}
	s.LatencyAccepted = toMS(loadgen.Summarize(accLat))
	s.LatencyRejected = toMS(loadgen.Summarize(rejLat))
	s.LatencyAll = toMS(loadgen.Summarize(allLat))
	s.WorstSeconds = worstSeconds(windows, 3)
}

// secondWindow is the latency of the answers to claims due in one second of
// the run.
type secondWindow struct {
	Second int     `json:"second"` // from the start of the run
	Count  int     `json:"count"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// worstSeconds returns the k windows with the highest p99, worst first.
func worstSeconds(windows map[int][]time.Duration, k int) []secondWindow {
	out := make([]secondWindow, 0, len(windows))
	for sec, lats := range windows {
		l := toMS(loadgen.Summarize(lats))
		out = append(out, secondWindow{Second: sec, Count: l.Count, P50: l.P50, P99: l.P99, Max: l.Max})
	}
	slices.SortFunc(out, func(a, b secondWindow) int {
		if a.P99 != b.P99 {
			return cmp.Compare(b.P99, a.P99)
		}
		return cmp.Compare(a.Second, b.Second)
	})
	return out[:min(k, len(out))]
}

func fmtMS(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func latLine(l latencyMS) string {
	if l.Count == 0 {
		return "(none)"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  p99.9 %s  max %s  (n=%d, mean %s)",
		fmtMS(l.P50), fmtMS(l.P95), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), l.Count, fmtMS(l.Mean))
}

func sortedKeys[M ~map[K]V, K string | int, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	return keys
}

func printLoad(w io.Writer, s *summary) {
	planned := float64(s.Claims) / s.OfferedRate
	fmt.Fprintf(w, "  offered      %d claims at %.1f/s (%.1fs planned), in-flight cap %d, duration cap %s, retry 429: %v\n",
		s.Claims, s.OfferedRate, planned, s.Concurrency, s.DurationCap, s.Retry)
	fmt.Fprintf(w, "  sent         %d (%.1f/s)  completed %d  cancelled at cap %d  never sent %d  retries %d\n",
		s.Sent, s.SentPerSec, s.Completed, s.CancelledAtCap, s.NotSent, s.Retries)
	fmt.Fprintf(w, "  achieved     %.1f accepted/s  (%d accepted in %.2fs)\n", s.AcceptedPerSec, s.Accepted, s.ElapsedSeconds)
	fmt.Fprintf(w, "  latency      from the intended send time\n")
	fmt.Fprintf(w, "    accepted   %s\n", latLine(s.LatencyAccepted))
	if s.LatencyRejected.Count > 0 {
		fmt.Fprintf(w, "    429        %s\n", latLine(s.LatencyRejected))
	}
	fmt.Fprintf(w, "    all HTTP   %s\n", latLine(s.LatencyAll))
	if len(s.WorstSeconds) > 0 {
		parts := make([]string, len(s.WorstSeconds))
		for j, ws := range s.WorstSeconds {
			parts[j] = fmt.Sprintf("s%d p50 %s p99 %s (n=%d)", ws.Second, fmtMS(ws.P50), fmtMS(ws.P99), ws.Count)
		}
		fmt.Fprintf(w, "    worst s    %s\n", strings.Join(parts, "  "))
	}
	statuses := []string{}
	for _, k := range sortedKeys(s.StatusCounts) {
		statuses = append(statuses, fmt.Sprintf("%s: %d", k, s.StatusCounts[k]))
	}
	if len(statuses) == 0 {
		statuses = append(statuses, "(no HTTP answers)")
	}
	fmt.Fprintf(w, "  status       %s\n", strings.Join(statuses, "  "))
	if s.Responses429 > 0 {
		fmt.Fprintf(w, "  429s         %d answers with 429 in all (final and retried)\n", s.Responses429)
	}
	if len(s.TransportErrors) == 0 {
		fmt.Fprintf(w, "  transport    no errors\n")
	} else {
		for _, k := range sortedKeys(s.TransportErrors) {
			fmt.Fprintf(w, "  transport    %s: %d\n", k, s.TransportErrors[k])
		}
		if s.OtherError != "" {
			fmt.Fprintf(w, "               e.g. %s\n", s.OtherError)
		}
	}
	fmt.Fprintf(w, "  generator    %s engine, max in flight %d, max start lag %s, %d claims started >1ms late",
		s.Engine, s.MaxInFlight, fmtMS(s.MaxStartLagMS), s.LateStarts)
	if s.MaxInFlight >= s.Concurrency {
		fmt.Fprint(w, " (in-flight cap reached)")
	}
	fmt.Fprintf(w, ", %d connections opened before the start and %d during the run", s.ConnsWarmed, s.ConnsOpened)
	if s.StaleResends > 0 {
		fmt.Fprintf(w, ", %d claims resent after a kept-alive connection closed unanswered", s.StaleResends)
	}
	fmt.Fprintln(w)
	if s.CapReached {
		fmt.Fprintf(w, "  note         the %s duration cap ended the run\n", s.DurationCap)
	}
	if s.Replays > 0 {
		fmt.Fprintf(w, "  replays      %d accepted claims sent again with the same key: %d answered with another claim\n", s.Replays, s.ReplayMismatch)
	}
	if s.NotReceived202 > 0 {
		fmt.Fprintf(w, "  note         %d 202 answers had a status other than \"received\"\n", s.NotReceived202)
	}
	for _, k := range sortedKeys(s.Examples) {
		label := strconv.Itoa(k)
		switch k {
		case 999:
			label = "bad 202"
		case 998:
			label = "replay"
		}
		fmt.Fprintf(w, "  example %-4s %s\n", label, s.Examples[k])
	}
}

func okMark(good bool) string {
	if good {
		return "ok"
	}
	return "FAIL"
}

func printCheck(w io.Writer, c *checkResult) {
	fmt.Fprintf(w, "  accepted          %d\n", c.Accepted)
	fmt.Fprintf(w, "  found in DB       %-8d %s\n", c.Found, okMark(c.Found == c.Accepted && c.WrongProgram == 0))
	if c.WrongProgram > 0 {
		fmt.Fprintf(w, "  wrong program     %d\n", c.WrongProgram)
	}
	fmt.Fprintf(w, "  duplicate BRNs    %-8d %s", c.DuplicateBRNs, okMark(c.DuplicateBRNs == 0))
	if len(c.DuplicateSample) > 0 {
		fmt.Fprintf(w, "  e.g. %v", c.DuplicateSample)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  dispatched        %-8d %s\n", c.Dispatched, okMark(c.Dispatched == c.Accepted))
	fmt.Fprintf(w, "  reached workflow  %-8d %s  (checked for %.1fs)\n", c.Reached, okMark(c.Reached == c.Accepted), c.WaitedSeconds)
}

func printPgbench(w io.Writer, s *summary) {
	pg := s.Pgbench
	fmt.Fprintf(w, "  ours         %.1f accepted claims/s\n", s.AcceptedPerSec)
	fmt.Fprintf(w, "  pgbench      %.1f single-row inserts/s  (%d transactions, %d failed; %s)\n", pg.TPS, pg.Transactions, pg.Failed, pg.Binary)
	if pg.TPS > 0 {
		fmt.Fprintf(w, "  ratio        %.3f (ours/pgbench)\n", s.RatioToPgbench)
	}
	if s.AcceptedPerSec >= 0.95*s.OfferedRate {
		fmt.Fprintf(w, "  note         we accepted about all of the offered %.0f/s; raise -rate to measure capacity\n", s.OfferedRate)
	}
}
