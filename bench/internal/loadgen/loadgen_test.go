package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond // 1ms .. 1000ms
	}
	cases := []struct {
		p    float64
		want time.Duration
	}{
		{0, 1 * time.Millisecond},
		{0.1, 1 * time.Millisecond},
		{50, 500 * time.Millisecond},
		{95, 950 * time.Millisecond},
		{99, 990 * time.Millisecond},
		{99.9, 999 * time.Millisecond},
		{100, 1000 * time.Millisecond},
	}
	for _, c := range cases {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("Percentile(1..1000ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
	one := []time.Duration{7}
	for _, p := range []float64{1, 50, 99.9, 100} {
		if got := Percentile(one, p); got != 7 {
			t.Errorf("Percentile([7], %v) = %v", p, got)
		}
	}
	// Small sets: p50 of 4 samples is the 2nd, p99.9 the last.
	four := []time.Duration{10, 20, 30, 40}
	if got := Percentile(four, 50); got != 20 {
		t.Errorf("p50 of 4 = %v, want 20", got)
	}
	if got := Percentile(four, 75.1); got != 40 {
		t.Errorf("p75.1 of 4 = %v, want 40", got)
	}
}

func TestSummarizeUnsortedInput(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	s := Summarize(in)
	if s.Count != 10 || s.Min != 1 || s.Max != 10 || s.P50 != 5 || s.P90 != 9 || s.P99 != 10 || s.Mean != 5 {
		t.Fatalf("Summarize = %+v", s)
	}
	if in[0] != 5 {
		t.Fatal("Summarize reordered its input")
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("Summarize(nil) not zero")
	}
}

func TestLoopbackGuard(t *testing.T) {
	ok := []string{
		"http://127.0.0.1:8080",
		"http://127.0.0.1",
		"http://127.1.2.3:9000/",
		"https://127.255.255.254:443",
		"http://localhost:8080",
		"http://LOCALHOST:8080",
		"http://localhost.:8080",
		"http://[::1]:8080",
		"http://[::ffff:127.0.0.1]:8080",
		"http://127.0.0.1:8080/prefix/",
	}
	for _, raw := range ok {
		if _, err := CheckLoopbackURL(raw); err != nil {
			t.Errorf("CheckLoopbackURL(%q) refused: %v", raw, err)
		}
	}
	bad := []string{
		"http://10.0.0.1:8080",
		"http://192.168.1.10",
		"http://0.0.0.0:8080",
		"http://8.8.8.8",
		"http://[::]:8080",
		"http://[2001:db8::1]:8080",
		"http://example.com",
		"http://localhost.example.com",
		"http://foo.localhost",
		"http://127.0.0.1.nip.io",
		"http://2130706433", // 127.0.0.1 as a decimal number: not an IP literal here
		"http://127.1",      // shorthand some resolvers expand; refused
		"http://[::ffff:10.0.0.1]:80",
		"ftp://127.0.0.1",
		"127.0.0.1:8080",
		"http://",
		"http://user:pw@127.0.0.1:8080",
		"",
	}
	for _, raw := range bad {
		if u, err := CheckLoopbackURL(raw); err == nil {
			t.Errorf("CheckLoopbackURL(%q) accepted as %v", raw, u)
		}
	}
	u, err := CheckLoopbackURL(" http://127.0.0.1:8080/x/?q=1#f ")
	if err != nil || u.String() != "http://127.0.0.1:8080/x" {
		t.Errorf("base URL = %v, %v", u, err)
	}
}

func TestDialerRefusesNonLoopback(t *testing.T) {
	if err := loopbackControl("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("loopback refused: %v", err)
	}
	if err := loopbackControl("tcp6", "[::1]:80", nil); err != nil {
		t.Errorf("::1 refused: %v", err)
	}
	if err := loopbackControl("tcp", "10.1.2.3:80", nil); err == nil {
		t.Error("10.1.2.3 accepted by the dialer")
	}
}

func TestClientReachesLoopbackServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/", http.StatusFound)
	}))
	defer srv.Close()
	c := NewClient(4)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect was followed: %d", resp.StatusCode)
	}
}

// A server that takes 50 ms per request, reached through one connection at a
// time, cannot keep up with 100/s: open-loop latency must count the queueing.
func TestRunMeasuresFromIntendedTime(t *testing.T) {
	const n = 20
	rep := Run(context.Background(), Config{N: n, Rate: 100, Concurrency: 1, Duration: 10 * time.Second},
		func(ctx context.Context, i, attempt int) Outcome {
			time.Sleep(50 * time.Millisecond)
			return Outcome{}
		})
	if rep.Completed != n || rep.NotSent != 0 || rep.Cancelled != 0 || rep.Scheduled != n {
		t.Fatalf("report = %+v", rep)
	}
	// Request 19 is due at 190 ms but can only finish after 20*50 = 1000 ms:
	// its latency is about 810 ms, not the 50 ms service time.
	if last := rep.Latency[n-1]; last < 700*time.Millisecond {
		t.Fatalf("last latency %v: measured from the send time, not the intended time", last)
	}
	if rep.LateStarts == 0 || rep.MaxStartLag < 500*time.Millisecond {
		t.Fatalf("late starts %d, max lag %v", rep.LateStarts, rep.MaxStartLag)
	}
	if rep.MaxInFlight != 1 {
		t.Fatalf("max in flight %d, want 1", rep.MaxInFlight)
	}
}

func TestRunKeepsSchedule(t *testing.T) {
	const n = 50
	var calls atomic.Int64
	rep := Run(context.Background(), Config{N: n, Rate: 500, Concurrency: 8, Duration: 10 * time.Second},
		func(ctx context.Context, i, attempt int) Outcome {
			calls.Add(1)
			return Outcome{}
		})
	if calls.Load() != n || rep.Completed != n {
		t.Fatalf("calls %d, report %+v", calls.Load(), rep)
	}
	// 50 requests at 500/s take ~98 ms to offer.
	if rep.Elapsed < 90*time.Millisecond || rep.Elapsed > 2*time.Second {
		t.Fatalf("elapsed %v, want about 100ms", rep.Elapsed)
	}
}

func TestRunRetries(t *testing.T) {
	var attempts [4]atomic.Int64
	rep := Run(context.Background(), Config{N: 4, Rate: 1000, Concurrency: 2, Duration: 10 * time.Second},
		func(ctx context.Context, i, attempt int) Outcome {
			attempts[i].Add(1)
			if i%2 == 0 && attempt < 2 {
				return Outcome{Retry: true, RetryAfter: 20 * time.Millisecond}
			}
			return Outcome{}
		})
	if rep.Completed != 4 || rep.Retries != 4 {
		t.Fatalf("report = %+v", rep)
	}
	if attempts[0].Load() != 3 || attempts[1].Load() != 1 {
		t.Fatalf("attempts %d %d", attempts[0].Load(), attempts[1].Load())
	}
	if rep.Latency[0] < 40*time.Millisecond {
		t.Fatalf("retried request latency %v does not include the waits", rep.Latency[0])
	}
}

func TestRunStopsAtCap(t *testing.T) {
	t0 := time.Now()
	rep := Run(context.Background(), Config{N: 1000, Rate: 100, Concurrency: 4, Duration: 300 * time.Millisecond},
		func(ctx context.Context, i, attempt int) Outcome {
			if i == 5 {
				<-ctx.Done() // a request the server never answers
				return Outcome{Aborted: true}
			}
			if i == 6 {
				return Outcome{Retry: true, RetryAfter: time.Hour}
			}
			return Outcome{}
		})
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Run took %v past a 300ms cap", d)
	}
	if !rep.CapReached || rep.Interrupted {
		t.Fatalf("cap not reported: %+v", rep)
	}
	if rep.Cancelled != 2 || rep.Started != rep.Completed+2 || rep.NotSent != 1000-rep.Started {
		t.Fatalf("counts: started %d completed %d cancelled %d not sent %d", rep.Started, rep.Completed, rep.Cancelled, rep.NotSent)
	}
	if rep.Scheduled < 20 || rep.Scheduled > 40 {
		t.Fatalf("scheduled %d in 300ms at 100/s", rep.Scheduled)
	}
	if rep.Latency[5] != -1 || rep.Latency[6] != -1 || rep.Latency[0] < 0 {
		t.Fatalf("latencies %v %v %v", rep.Latency[0], rep.Latency[5], rep.Latency[6])
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	rep := Run(ctx, Config{N: 100, Rate: 100, Concurrency: 4, Duration: time.Minute},
		func(ctx context.Context, i, attempt int) Outcome { return Outcome{} })
	if !rep.Interrupted || rep.CapReached || rep.Completed == 0 || rep.Completed == 100 {
		t.Fatalf("report = %+v", rep)
	}
}
