package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loopAnswers collects what RunLoop reported per request.
type loopAnswers struct {
	status  []int
	body    []string
	retry   []string
	err     []error
	latency []time.Duration
	calls   int
}

func newLoopAnswers(n int) *loopAnswers {
	return &loopAnswers{status: make([]int, n), body: make([]string, n), retry: make([]string, n), err: make([]error, n), latency: make([]time.Duration, n)}
}

func (a *loopAnswers) answer(i int, latency time.Duration, resp *RawResponse, err error) {
	a.calls++
	a.err[i], a.latency[i] = err, latency
	if resp != nil {
		a.status[i], a.body[i], a.retry[i] = resp.StatusCode, string(resp.Body), resp.RetryAfter
	}
}

func keyedPost(c *RawClient) LoopRequest {
	return func(i int, dst []byte) []byte {
		return c.AppendRequest(dst, post(`{"i":`+strconv.Itoa(i)+`}`, RawHeader{"Idempotency-Key", strconv.Itoa(i)}))
	}
}

// runKeyed runs cfg (its Client set here) against url with keyedPost
// requests and returns the report, the connection counts, what each request
// was answered, and the client; a set-up error ends the test.
func runKeyed(t *testing.T, url string, cfg LoopConfig) (*Report, LoopStats, *loopAnswers, *RawClient) {
	t.Helper()
	c := newRaw(t, url, RawClientConfig{})
	cfg.Client = c
	a := newLoopAnswers(cfg.N)
	rep, st, err := RunLoop(t.Context(), cfg, keyedPost(c), a.answer)
	if err != nil {
		t.Fatal(err)
	}
	return rep, st, a, c
}

// Every request is sent once, on the connections opened and primed before
// the clock, and each answer (202, 429 with Retry-After, a chunked one)
// reaches the right request.
func TestLoopSendsEveryRequestOnce(t *testing.T) {
	var primes atomic.Int64
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			primes.Add(1)
			io.WriteString(w, "ok")
			return
		}
		i, _ := strconv.Atoi(r.Header.Get("Idempotency-Key"))
		switch i % 3 {
		case 0:
			echo(w, r)
		case 1:
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, "busy")
		case 2:
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush() // chunked
			io.WriteString(w, "part two")
		}
	})
	const n, conns = 600, 16
	rep, st, a, _ := runKeyed(t, srv.URL, LoopConfig{
		Config:  Config{N: n, Rate: 3000, Concurrency: conns, Duration: 10 * time.Second},
		Timeout: 5 * time.Second,
		Prime:   &RawRequest{Method: "GET", Target: "/healthz"},
	})
	if rep.Completed != n || rep.Started != n || rep.NotSent != 0 || rep.Cancelled != 0 || rep.Scheduled != n || rep.CapReached {
		t.Fatalf("report %+v", rep)
	}
	if a.calls != n || srv.reqs.Load() != n+conns || primes.Load() != conns {
		t.Fatalf("%d answers, server saw %d requests (%d primes), want %d + %d", a.calls, srv.reqs.Load(), primes.Load(), n, conns)
	}
	if st.Opened != conns || st.Dials != 0 || st.Resends != 0 || srv.conns.Load() != conns {
		t.Fatalf("stats %+v, server accepted %d connections", st, srv.conns.Load())
	}
	for i := range n {
		if a.err[i] != nil || rep.Latency[i] < 0 || a.latency[i] != rep.Latency[i] {
			t.Fatalf("request %d: err %v latency %v, %v given to the answer", i, a.err[i], rep.Latency[i], a.latency[i])
		}
		switch i % 3 {
		case 0:
			want := fmt.Sprintf(`"key":"%d"`, i)
			if a.status[i] != 202 || !strings.Contains(a.body[i], want) {
				t.Fatalf("request %d: %d %q, want its own echo", i, a.status[i], a.body[i])
			}
		case 1:
			if a.status[i] != 429 || a.retry[i] != "4" || a.body[i] != "busy" {
				t.Fatalf("request %d: %d %q retry %q", i, a.status[i], a.body[i], a.retry[i])
			}
		case 2:
			if a.status[i] != 200 || a.body[i] != "part one, part two" {
				t.Fatalf("request %d: %d %q", i, a.status[i], a.body[i])
			}
		}
	}
	// 600 requests at 3,000/s are offered over ~200 ms.
	if rep.Elapsed < 190*time.Millisecond || rep.Elapsed > 5*time.Second {
		t.Fatalf("elapsed %v", rep.Elapsed)
	}
}

// The loop stops reading a socket once a read leaves room in its buffer and
// relies on epoll to bring it back: an answer whose head and body arrive
// apart, one whose body arrives in three writes, and one larger than the
// read buffer (so a read fills it and the loop must read again at once)
// all reach their request whole.
func TestLoopReadsAnswersInPieces(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3*rawReadBuf/16) + "tail"
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.Header.Get("Idempotency-Key"))
		switch i % 3 {
		case 0: // head, a pause, then the body (chunked)
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
			io.WriteString(w, "late body "+strconv.Itoa(i))
		case 1: // a Content-Length answer in three writes
			body := "one,two,three " + strconv.Itoa(i)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			for _, part := range []string{body[:4], body[4:8], body[8:]} {
				io.WriteString(w, part)
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		case 2:
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		}
	})
	const n = 30
	rep, _, a, _ := runKeyed(t, srv.URL, LoopConfig{Config: Config{N: n, Rate: 500, Concurrency: 4, Duration: 10 * time.Second}, Timeout: 5 * time.Second})
	if rep.Completed != n || a.calls != n {
		t.Fatalf("report %+v, %d answers", rep, a.calls)
	}
	for i := range n {
		var want string
		switch i % 3 {
		case 0:
			want = "late body " + strconv.Itoa(i)
		case 1:
			want = "one,two,three " + strconv.Itoa(i)
		case 2:
			want = big
		}
		if a.err[i] != nil || a.body[i] != want || a.status[i] < 200 || a.status[i] > 299 {
			t.Fatalf("request %d: %d %v, body of %d bytes %.40q…", i, a.status[i], a.err[i], len(a.body[i]), a.body[i])
		}
	}
}

// A server slower than the offered rate: with one connection, requests
// wait for it, and their latency counts from their intended time.
func TestLoopMeasuresFromIntendedTime(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		echo(w, r)
	})
	const n = 10
	rep, _, _, _ := runKeyed(t, srv.URL, LoopConfig{Config: Config{N: n, Rate: 100, Concurrency: 1, Duration: 10 * time.Second}})
	// Request 9 is due at 90 ms and can finish only after 10 × 50 ms.
	if rep.Completed != n || rep.Latency[n-1] < 350*time.Millisecond || rep.MaxStartLag < 300*time.Millisecond || rep.LateStarts == 0 || rep.MaxInFlight != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// The server ends connections (Connection: close, or dropping them with no
// answer); the loop opens new ones, sends an unanswered request once more,
// and reports a request that is never answered as a timeout.
func TestLoopConnectionsClosedAndTimeouts(t *testing.T) {
	var dropped atomic.Bool
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Idempotency-Key") {
		case "3":
			w.Header().Set("Connection", "close")
		case "5":
			if !dropped.Swap(true) { // the first time, hang up without a word
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
		case "7":
			time.Sleep(400 * time.Millisecond)
		}
		echo(w, r)
	})
	const n = 10
	rep, st, a, _ := runKeyed(t, srv.URL, LoopConfig{Config: Config{N: n, Rate: 200, Concurrency: 2, Duration: 10 * time.Second}, Timeout: 150 * time.Millisecond})
	if rep.Completed != n {
		t.Fatalf("report %+v", rep)
	}
	for i := range n {
		switch {
		case i == 7:
			if !errors.Is(a.err[i], context.DeadlineExceeded) {
				t.Fatalf("request 7: err %v, want a timeout", a.err[i])
			}
		case a.err[i] != nil || a.status[i] != 202:
			t.Fatalf("request %d: %d %v", i, a.status[i], a.err[i])
		}
	}
	// New connections after Connection: close, the hang-up and the timeout.
	if st.Resends != 1 || st.Dials < 3 {
		t.Fatalf("stats %+v", st)
	}
}

// A server that never answers: the duration cap ends the run and the
// requests in flight are counted as cancelled, not answered.
func TestLoopStopsAtCapAndOnInterrupt(t *testing.T) {
	hang := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "0" {
			<-hang
		}
		echo(w, r)
	})
	t.Cleanup(func() { close(hang) }) // before the server's Close, which waits for its handlers
	t0 := time.Now()
	rep, _, a, c := runKeyed(t, srv.URL, LoopConfig{Config: Config{N: 1000, Rate: 100, Concurrency: 4, Duration: 300 * time.Millisecond}})
	if time.Since(t0) > 3*time.Second || !rep.CapReached || rep.Interrupted {
		t.Fatalf("after %v: %+v", time.Since(t0), rep)
	}
	if rep.Cancelled != 1 || rep.Latency[0] != -1 || a.err[0] != nil || a.status[0] != 0 || rep.Started != rep.Completed+1 || rep.NotSent != 1000-rep.Started {
		t.Fatalf("counts: started %d completed %d cancelled %d not sent %d", rep.Started, rep.Completed, rep.Cancelled, rep.NotSent)
	}
	if rep.Scheduled < 20 || rep.Scheduled > 45 {
		t.Fatalf("scheduled %d in 300ms at 100/s", rep.Scheduled)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	rep, _, err := RunLoop(ctx, LoopConfig{Config: Config{N: 100, Rate: 100, Concurrency: 4, Duration: time.Minute}, Client: c}, func(i int, dst []byte) []byte {
		return c.AppendRequest(dst, post("{}", RawHeader{"Idempotency-Key", "x"}))
	}, newLoopAnswers(100).answer)
	if err != nil || !rep.Interrupted || rep.CapReached || rep.Completed == 0 || rep.Completed == 100 {
		t.Fatalf("interrupted run: %v %+v", err, rep)
	}

	// Cancelled from an answer (the intake tool's early verdict), the run
	// sends nothing more: request 5's answer ends it at 1,000/s, where
	// request 6 is due 1 ms later (request 0 hangs, as above).
	ctx, cancel = context.WithCancel(t.Context())
	stopAt := newLoopAnswers(100)
	rep, _, err = RunLoop(ctx, LoopConfig{Config: Config{N: 100, Rate: 1000, Concurrency: 4, Duration: time.Minute}, Client: c}, keyedPost(c),
		func(i int, latency time.Duration, resp *RawResponse, err error) {
			stopAt.answer(i, latency, resp, err)
			if i == 5 {
				cancel()
			}
		})
	if err != nil || !rep.Interrupted || stopAt.status[5] != 202 || rep.Started > 6+4 || rep.NotSent < 90 {
		t.Fatalf("run cancelled by answer 5: %v started %d completed %d not sent %d", err, rep.Started, rep.Completed, rep.NotSent)
	}
}

// Set-up failures are errors, not a run: nothing listening, a prime that
// is not answered 2xx, TLS.
func TestLoopSetupErrors(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	c := newRaw(t, srv.URL, RawClientConfig{})
	cfg := LoopConfig{Config: Config{N: 1, Rate: 1, Concurrency: 2}, Client: c, Prime: &RawRequest{Method: "GET", Target: "/healthz"}}
	if _, _, err := RunLoop(t.Context(), cfg, keyedPost(c), newLoopAnswers(1).answer); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("prime answered 404: err %v", err)
	}
	srv.Close()
	cfg.Prime = nil
	if _, _, err := RunLoop(t.Context(), cfg, keyedPost(c), newLoopAnswers(1).answer); err == nil {
		t.Fatal("nothing listening: no error")
	}
	tlsClient := newRaw(t, "https://127.0.0.1:1", RawClientConfig{})
	if _, _, err := RunLoop(t.Context(), LoopConfig{Config: cfg.Config, Client: tlsClient}, keyedPost(tlsClient), newLoopAnswers(1).answer); !errors.Is(err, ErrLoopUnsupported) {
		t.Fatalf("TLS: err %v", err)
	}
}
