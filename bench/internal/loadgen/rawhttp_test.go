package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it
// accepted and the requests it served.
type countingServer struct {
	*httptest.Server
	conns, reqs atomic.Int64
}

func newCountingServer(t testing.TB, h http.HandlerFunc) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.reqs.Add(1)
		h(w, r)
	}))
	cs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

func newRaw(t testing.TB, url string, cfg RawClientConfig) *RawClient {
	t.Helper()
	c, err := NewRawClient(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

func post(body string, hdr ...RawHeader) *RawRequest {
	return &RawRequest{Method: "POST", Target: "/api/v1/claims", Header: hdr, Body: []byte(body)}
}

// echo answers 202 with a small JSON body naming what it received.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"method":%q,"path":%q,"key":%q,"cookie":%q,"len":%d,"body":%q}`,
		r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), r.Header.Get("Cookie"), r.ContentLength, b)
}

func TestRawKeepAliveReuse(t *testing.T) {
	srv := newCountingServer(t, echo)
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 4, Timeout: 5 * time.Second})
	var resp RawResponse
	for i := range 20 {
		key := strconv.Itoa(i)
		err := c.Do(t.Context(), post(`{"i":`+key+`}`, RawHeader{"Idempotency-Key", key}, RawHeader{"Cookie", "s=1"}), &resp)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"method":"POST","path":"/api/v1/claims","key":%q,"cookie":"s=1","len":%d,"body":%q}`, key, len(`{"i":`+key+`}`), `{"i":`+key+`}`)
		if resp.StatusCode != 202 || string(resp.Body) != want || resp.Closed || resp.Truncated {
			t.Fatalf("request %d: %d %q closed=%v, want 202 %q", i, resp.StatusCode, resp.Body, resp.Closed, want)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d connections, want 1", n)
	}

	// Concurrent requests: never more connections than MaxConns, all reused.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			var resp RawResponse
			for i := range 25 {
				if err := c.Do(t.Context(), post("x", RawHeader{"Idempotency-Key", fmt.Sprint(g, i)}), &resp); err != nil || resp.StatusCode != 202 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d concurrent requests failed", failed.Load())
	}
	if n := srv.conns.Load(); n > 4 {
		t.Fatalf("%d connections for MaxConns 4", n)
	}
	if st := c.Stats(); st.Dials != srv.conns.Load() || st.Resends != 0 || srv.reqs.Load() != 220 {
		t.Fatalf("stats %+v, server saw %d connections and %d requests", st, srv.conns.Load(), srv.reqs.Load())
	}
}

func TestRawContentLengthAndChunked(t *testing.T) {
	big := strings.Repeat("0123456789", 1000) // 10 kB: net/http chunks it
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(200)
			io.WriteString(w, "hello")
		case "/chunked":
			w.WriteHeader(200)
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush() // headers out before the end: chunked
			io.WriteString(w, "part two")
		case "/big":
			io.WriteString(w, big)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 1, MaxBody: 4096})
	var resp RawResponse
	do := func(path string) {
		t.Helper()
		if err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: path}, &resp); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	do("/small")
	if resp.StatusCode != 200 || string(resp.Body) != "hello" {
		t.Fatalf("/small: %d %q", resp.StatusCode, resp.Body)
	}
	do("/chunked")
	if resp.StatusCode != 200 || string(resp.Body) != "part one, part two" {
		t.Fatalf("/chunked: %d %q", resp.StatusCode, resp.Body)
	}
	do("/big") // kept up to MaxBody, the rest drained
	if string(resp.Body) != big[:4096] || !resp.Truncated || resp.Closed {
		t.Fatalf("/big: %d bytes, truncated %v, closed %v", len(resp.Body), resp.Truncated, resp.Closed)
	}
	do("/empty")
	if resp.StatusCode != 204 || len(resp.Body) != 0 {
		t.Fatalf("/empty: %d %q", resp.StatusCode, resp.Body)
	}
	do("/small") // the connection is still in step after all of them
	if string(resp.Body) != "hello" || srv.conns.Load() != 1 {
		t.Fatalf("after the bodies: %q over %d connections", resp.Body, srv.conns.Load())
	}
}

// scripted is a bare TCP server: serve is called for each request read on
// a connection and writes the answer by hand; returning false closes the
// connection.
type scripted struct {
	url         string
	conns, reqs atomic.Int64
}

func newScripted(t testing.TB, serve func(conn, req int, w net.Conn) bool) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{url: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			ci := int(s.conns.Add(1)) - 1
			wg.Go(func() {
				defer conn.Close()
				go func() { <-done; conn.Close() }()
				br := bufio.NewReader(conn)
				for ri := 0; ; ri++ {
					if err := skipRequest(br); err != nil {
						return
					}
					s.reqs.Add(1)
					if !serve(ci, ri, conn) {
						return
					}
				}
			})
		}
	})
	return s
}

// skipRequest reads one request's header and Content-Length body.
func skipRequest(br *bufio.Reader) error {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(v))
		}
	}
	_, err := br.Discard(n)
	return err
}

const cannedOK = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"id\":\"abc-123\"}"

func TestRawChunkedWireFormat(t *testing.T) {
	srv := newScripted(t, func(_, _ int, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\n"+
			"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nRetry-After: 7\r\n\r\n"+
			"4;ext=1\r\nWiki\r\nA \r\npedia in X\r\n0\r\nX-Trailer: 1\r\n\r\n")
		return true
	})
	c := newRaw(t, srv.url, RawClientConfig{})
	var resp RawResponse
	for range 2 {
		if err := c.Do(t.Context(), post("{}"), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || string(resp.Body) != "Wikipedia in X" || resp.RetryAfter != "7" || resp.Closed {
			t.Fatalf("got %d %q retry-after %q closed %v", resp.StatusCode, resp.Body, resp.RetryAfter, resp.Closed)
		}
	}
	if srv.conns.Load() != 1 {
		t.Fatalf("%d connections", srv.conns.Load())
	}
}

func TestRawConnectionClose(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(200)
		io.WriteString(w, "ok")
	})
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 2})
	var resp RawResponse
	for _, p := range []string{"/close", "/close", "/keep", "/keep"} {
		if err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: p}, &resp); err != nil {
			t.Fatal(err)
		}
		if string(resp.Body) != "ok" || resp.Closed != (p == "/close") {
			t.Fatalf("%s: %q closed %v", p, resp.Body, resp.Closed)
		}
	}
	// Each /close ended its connection; the two /keep shared the third one.
	if st := c.Stats(); srv.conns.Load() != 3 || st.Dials != 3 || st.Resends != 0 {
		t.Fatalf("%d connections, stats %+v", srv.conns.Load(), st)
	}

	// A body delimited by the end of the connection (no length, HTTP/1.0).
	old := newScripted(t, func(_, _ int, w net.Conn) bool {
		io.WriteString(w, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
		return false
	})
	c = newRaw(t, old.url, RawClientConfig{})
	if err := c.Do(t.Context(), post(""), &resp); err != nil || string(resp.Body) != "until the end" || !resp.Closed {
		t.Fatalf("HTTP/1.0: %v %q closed %v", err, resp.Body, resp.Closed)
	}
}

func TestRaw429RetryAfter(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"code":"overloaded"}}`)
	})
	c := newRaw(t, srv.URL, RawClientConfig{})
	var resp RawResponse
	for range 3 {
		if err := c.Do(t.Context(), post(`{"a":1}`), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 429 || resp.RetryAfter != "3" || string(resp.Body) != `{"error":{"code":"overloaded"}}` {
			t.Fatalf("got %d retry-after %q body %q", resp.StatusCode, resp.RetryAfter, resp.Body)
		}
	}
	if srv.conns.Load() != 1 {
		t.Fatalf("429 answers did not keep the connection: %d connections", srv.conns.Load())
	}
	// Fields are reset between answers.
	ok := newCountingServer(t, echo)
	c = newRaw(t, ok.URL, RawClientConfig{})
	if err := c.Do(t.Context(), post("{}"), &resp); err != nil || resp.StatusCode != 202 || resp.RetryAfter != "" {
		t.Fatalf("after a 429: %v %d %q", err, resp.StatusCode, resp.RetryAfter)
	}
}

func TestRawServerClosedIdleConnection(t *testing.T) {
	srv := newCountingServer(t, echo)
	c := newRaw(t, srv.URL, RawClientConfig{})
	var resp RawResponse
	if err := c.Do(t.Context(), post("1"), &resp); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // the server drops the idle connection
	time.Sleep(50 * time.Millisecond)
	if err := c.Do(t.Context(), post("2", RawHeader{"Idempotency-Key", "k2"}), &resp); err != nil {
		t.Fatalf("request after the server closed the idle connection: %v", err)
	}
	if resp.StatusCode != 202 || !bytes.Contains(resp.Body, []byte(`"key":"k2"`)) {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Body)
	}
	if st := c.Stats(); st.Resends != 1 || st.Dials != 2 || srv.reqs.Load() != 2 {
		t.Fatalf("stats %+v, server saw %d requests", st, srv.reqs.Load())
	}

	// The same failure on a fresh connection is not resent: it is an error.
	rude := newScripted(t, func(_, _ int, _ net.Conn) bool { return false })
	c = newRaw(t, rude.url, RawClientConfig{})
	err := c.Do(t.Context(), post("x"), &resp)
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server hanging up without an answer: err %v", err)
	}
	if rude.reqs.Load() != 1 || c.Stats().Resends != 0 {
		t.Fatalf("fresh connection: server saw %d requests, stats %+v", rude.reqs.Load(), c.Stats())
	}
	// A reused connection that fails is resent once, not more.
	once := newScripted(t, func(conn, req int, w net.Conn) bool {
		if conn == 0 && req == 0 {
			io.WriteString(w, cannedOK)
			return true
		}
		return false
	})
	c = newRaw(t, once.url, RawClientConfig{})
	if err := c.Do(t.Context(), post("x"), &resp); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(t.Context(), post("x"), &resp); err == nil {
		t.Fatal("no error from a server that stops answering")
	}
	if once.reqs.Load() != 3 || c.Stats().Resends != 1 {
		t.Fatalf("server saw %d requests, stats %+v", once.reqs.Load(), c.Stats())
	}
	// An answer cut off after its first byte is an error, never resent.
	cut := newScripted(t, func(conn, req int, w net.Conn) bool {
		if req == 0 {
			io.WriteString(w, cannedOK)
			return true
		}
		io.WriteString(w, "HTTP/1.1 202 Acc")
		return false
	})
	c = newRaw(t, cut.url, RawClientConfig{})
	_ = c.Do(t.Context(), post("x"), &resp)
	if err := c.Do(t.Context(), post("x"), &resp); !errors.Is(err, io.ErrUnexpectedEOF) || c.Stats().Resends != 0 || cut.reqs.Load() != 2 {
		t.Fatalf("cut answer: err %v, stats %+v, server saw %d", err, c.Stats(), cut.reqs.Load())
	}
}

func TestRawTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(200)
	})
	defer close(release)
	c := newRaw(t, srv.URL, RawClientConfig{Timeout: 150 * time.Millisecond})
	var resp RawResponse
	if err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: "/fast"}, &resp); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: "/slow"}, &resp)
	el := time.Since(t0)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if el < 140*time.Millisecond || el > 2*time.Second {
		t.Fatalf("timed out after %v, want about 150ms", el)
	}
	if srv.reqs.Load() != 2 || c.Stats().Resends != 0 {
		t.Fatalf("a timed-out request was resent: server saw %d, stats %+v", srv.reqs.Load(), c.Stats())
	}
	// The timed-out connection is gone; the next request gets a new one.
	if err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: "/fast"}, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the timeout: %v %d", err, resp.StatusCode)
	}
	if srv.conns.Load() != 2 {
		t.Fatalf("%d connections, want 2", srv.conns.Load())
	}

	// Waiting for a free connection counts against the timeout too, and a
	// connection given up wakes the waiter.
	one := newRaw(t, srv.URL, RawClientConfig{MaxConns: 1, Timeout: 150 * time.Millisecond})
	one.open = 1 // the only connection is busy
	t0 = time.Now()
	if err := one.Do(t.Context(), &RawRequest{Method: "GET", Target: "/fast"}, &resp); !errors.As(err, &ne) || !ne.Timeout() || time.Since(t0) < 140*time.Millisecond {
		t.Fatalf("waiting for the only connection: %v after %v", err, time.Since(t0))
	}
	time.AfterFunc(30*time.Millisecond, one.release)
	if err := one.Do(t.Context(), &RawRequest{Method: "GET", Target: "/fast"}, &resp); err != nil {
		t.Fatalf("waiter not woken when the connection was given up: %v", err)
	}
}

func TestRawContextCancel(t *testing.T) {
	entered := make(chan struct{}, 1)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			entered <- struct{}{}
			<-r.Context().Done() // until the client hangs up
			return
		}
		w.WriteHeader(200)
	})
	c := newRaw(t, srv.URL, RawClientConfig{Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-entered; cancel() }()
	t0 := time.Now()
	var resp RawResponse
	err := c.Do(ctx, &RawRequest{Method: "GET", Target: "/hang"}, &resp)
	if !errors.Is(err, context.Canceled) || time.Since(t0) > 5*time.Second {
		t.Fatalf("cancelled request: %v after %v", err, time.Since(t0))
	}
	// The handler saw the connection close (it returned), and the client
	// goes on with a new connection.
	if err := c.Do(t.Context(), &RawRequest{Method: "GET", Target: "/ok"}, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after cancel: %v", err)
	}
	if srv.conns.Load() != 2 || c.Stats().Resends != 0 {
		t.Fatalf("%d connections, stats %+v", srv.conns.Load(), c.Stats())
	}
	// An already ended context sends nothing.
	if err := c.Do(ctx, &RawRequest{Method: "GET", Target: "/ok"}, &resp); !errors.Is(err, context.Canceled) || srv.reqs.Load() != 2 {
		t.Fatalf("dead context: %v, server saw %d", err, srv.reqs.Load())
	}
}

func TestRawRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "http://0.0.0.0:80", "http://[2001:db8::1]:80", "ftp://127.0.0.1"} {
		if _, err := NewRawClient(u, RawClientConfig{}); err == nil {
			t.Errorf("NewRawClient(%q) accepted", u)
		}
	}
	// The dialer checks the resolved address too ("localhost" gone astray).
	c, err := NewRawClient("http://localhost:9", RawClientConfig{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.addr = "192.0.2.1:80" // TEST-NET-1: never reached, the guard refuses before connect
	err = c.Do(t.Context(), post("x"), new(RawResponse))
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("dial to 192.0.2.1: %v, want ErrNotLoopback", err)
	}
}

func TestRawMalformedAnswers(t *testing.T) {
	for name, answer := range map[string]string{
		"garbage":        "SMTP ready\r\n\r\n",
		"status":         "HTTP/1.1 2x0 OK\r\n\r\n",
		"length":         "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"two lengths":    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"encoding":       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"chunk size":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk end":      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
		"chunk size off": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\npedia in \r\n0\r\n\r\n",
		"header line":    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"switching":      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"short body":     "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"short chunked":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		srv := newScripted(t, func(_, _ int, w net.Conn) bool {
			io.WriteString(w, answer)
			return false
		})
		c := newRaw(t, srv.url, RawClientConfig{Timeout: 2 * time.Second})
		err := c.Do(t.Context(), post("x"), new(RawResponse))
		if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestRawPoolBound(t *testing.T) {
	var inside, most atomic.Int64
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inside.Add(1)
		for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		inside.Add(-1)
	})
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 2, Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 6 {
		wg.Go(func() {
			if err := c.Do(t.Context(), post("x"), new(RawResponse)); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || srv.conns.Load() != 2 || most.Load() > 2 || srv.reqs.Load() != 6 {
		t.Fatalf("failed %d, %d connections, %d at once, %d requests", failed.Load(), srv.conns.Load(), most.Load(), srv.reqs.Load())
	}
}

func TestRawTLS(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := newRaw(t, srv.URL, RawClientConfig{TLS: &tls.Config{RootCAs: pool}})
	var resp RawResponse
	for range 3 {
		if err := c.Do(t.Context(), post("tls"), &resp); err != nil || resp.StatusCode != 202 {
			t.Fatalf("%v %d", err, resp.StatusCode)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("%d TLS connections", conns.Load())
	}
}

// The hot-path cost of one claim-like POST answered 202 with a small JSON
// body, through RawClient and through net/http (as bench/intake sent claims
// before). cpu-ns/op is the whole process's CPU time (user+system, server
// included) per request; the "canned" server answers from a constant with
// almost no work of its own, so there the difference is the client's.
func BenchmarkRawClient(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 480)
	run := func(b *testing.B, url string) {
		c := newRaw(b, url, RawClientConfig{MaxConns: 1, Timeout: 10 * time.Second})
		var resp RawResponse
		req := &RawRequest{Method: "POST", Target: "/api/v1/claims", Body: body}
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			req.Header = []RawHeader{{"Accept", "application/json"}, {"Content-Type", "application/json"},
				{"Cookie", "relief_session=abcdef"}, {"Idempotency-Key", "0f4e0c9a-8d1b-4c2e-9f3a-5b6c7d8e9f00"}}
			if err := c.Do(b.Context(), req, &resp); err != nil || resp.StatusCode != 202 {
				b.Fatal(err, resp.StatusCode)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("httptest", func(b *testing.B) { run(b, newBenchServer(b)) })
	b.Run("canned", func(b *testing.B) { run(b, newCanned(b)) })
}

func BenchmarkNetHTTPClient(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 480)
	run := func(b *testing.B, url string) {
		c := NewClient(1)
		b.Cleanup(c.CloseIdleConnections)
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/claims", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header = http.Header{
				"Content-Type":    {"application/json"},
				"Accept":          {"application/json"},
				"Idempotency-Key": {"0f4e0c9a-8d1b-4c2e-9f3a-5b6c7d8e9f00"},
				"Cookie":          {"relief_session=abcdef"},
			}
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			cancel()
			if err != nil || resp.StatusCode != 202 || len(data) == 0 {
				b.Fatal(err, resp.StatusCode)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("httptest", func(b *testing.B) { run(b, newBenchServer(b)) })
	b.Run("canned", func(b *testing.B) { run(b, newCanned(b)) })
}

func newBenchServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"id":"0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","receipt_no":"KPOST-2025-000001","status":"received"}`)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

func newCanned(b *testing.B) string {
	return newScripted(b, func(_, _ int, w net.Conn) bool {
		_, err := io.WriteString(w, cannedOK)
		return err == nil
	}).url
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestRawInvalidRequestNotSent(t *testing.T) {
	srv := newCountingServer(t, echo)
	c := newRaw(t, srv.URL, RawClientConfig{})
	for _, req := range []*RawRequest{
		post("x", RawHeader{"Cookie", "a=b\r\nX-Injected: 1"}),
		post("x", RawHeader{"Bad Name", "v"}),
		{Method: "POST", Target: "/a b"},
		{Method: "", Target: "/"},
	} {
		if err := c.Do(t.Context(), req, new(RawResponse)); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: err %v", req, err)
		}
	}
	if srv.reqs.Load() != 0 || c.Stats().Dials != 0 {
		t.Fatalf("invalid requests reached the server: %d", srv.reqs.Load())
	}
}

// A claim-like request allocates nothing in the client once its connection
// and buffers exist (a cancellable context adds the watch that closes the
// connection when it ends).
func TestRawDoAllocations(t *testing.T) {
	answer := []byte(cannedOK)
	srv := newScripted(t, func(_, _ int, w net.Conn) bool {
		_, err := w.Write(answer)
		return err == nil
	})
	c := newRaw(t, srv.url, RawClientConfig{MaxConns: 1, Timeout: 5 * time.Second})
	body := bytes.Repeat([]byte("x"), 480)
	var resp RawResponse
	ctx := context.Background()
	do := func() {
		err := c.Do(ctx, &RawRequest{Method: "POST", Target: "/api/v1/claims", Body: body,
			Header: []RawHeader{{"Accept", "application/json"}, {"Cookie", "s=1"}, {"Idempotency-Key", "k"}}}, &resp)
		if err != nil || resp.StatusCode != 202 {
			t.Fatal(err, resp.StatusCode)
		}
	}
	if n := testing.AllocsPerRun(200, do); n >= 1 {
		t.Errorf("%v allocations per request with a background context", n)
	} else {
		t.Logf("%v allocations per request with a background context", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = cctx
	if n := testing.AllocsPerRun(200, do); n > 3 {
		t.Errorf("%v allocations per request with a cancellable context", n)
	} else {
		t.Logf("%v allocations per request with a cancellable context", n)
	}
}

func TestRawWarmOpensConnectionsBeforeUse(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // keep all requests in flight at once
		echo(w, r)
	})
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 8, Timeout: 5 * time.Second})
	// More than MaxConns asked: the bound wins.
	n, err := c.Warm(t.Context(), 50, nil)
	if err != nil || n != 8 || c.Stats().Dials != 8 {
		t.Fatalf("Warm opened %d (dials %d), err %v", n, c.Stats().Dials, err)
	}
	// Already open: nothing more to do.
	if n, err := c.Warm(t.Context(), 8, nil); err != nil || n != 0 {
		t.Fatalf("second Warm opened %d, err %v", n, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp RawResponse
			errs <- c.Do(t.Context(), post(`{}`, RawHeader{"Idempotency-Key", strconv.Itoa(i)}), &resp)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Eight requests at once went over the warmed connections: no dial.
	if d := c.Stats().Dials; d != 8 || srv.conns.Load() != 8 || srv.reqs.Load() != 8 {
		t.Fatalf("dials %d, server saw %d connections and %d requests", d, srv.conns.Load(), srv.reqs.Load())
	}
}

func TestRawWarmFailureGivesSlotsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	c := newRaw(t, "http://"+addr, RawClientConfig{MaxConns: 4, Timeout: time.Second})
	n, err := c.Warm(t.Context(), 4, nil)
	if n != 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Warm opened %d, err %v", n, err)
	}
	c.mu.Lock()
	open := c.open
	c.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d connection slots still taken after failed dials", open)
	}
}

// A server closes a connection that sends no request within its header
// timeout. Warm replaces such connections, and a request that meets one
// anyway is sent again on a fresh connection instead of failing.
func TestRawWarmedConnectionsTheServerClosed(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	srv.Config.ReadHeaderTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 4, Timeout: 5 * time.Second})
	if n, err := c.Warm(t.Context(), 4, nil); err != nil || n != 4 {
		t.Fatalf("Warm opened %d, err %v", n, err)
	}
	time.Sleep(300 * time.Millisecond) // the server closes all four
	if n, err := c.Warm(t.Context(), 4, nil); err != nil || n != 4 {
		t.Fatalf("second Warm opened %d, want the 4 closed ones replaced (err %v)", n, err)
	}
	time.Sleep(300 * time.Millisecond) // and these four too
	var resp RawResponse
	if err := c.Do(t.Context(), post(`{}`, RawHeader{"Idempotency-Key", "k"}), &resp); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("request on a closed warmed connection: %v (status %d)", err, resp.StatusCode)
	}
	if st := c.Stats(); st.Resends != 1 || st.Dials != 9 {
		t.Fatalf("stats %+v, want 1 resend and 9 dials", st)
	}
}

// A connection primed with one request is kept by the server for its idle
// timeout, not closed at its header timeout.
func TestRawWarmPrimedConnectionsStayOpen(t *testing.T) {
	var reqs, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/nowhere":
			http.NotFound(w, r)
		default:
			echo(w, r)
		}
	}))
	srv.Config.ReadHeaderTimeout = 50 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newRaw(t, srv.URL, RawClientConfig{MaxConns: 4, Timeout: 5 * time.Second})
	prime := &RawRequest{Method: "GET", Target: "/healthz"}
	if n, err := c.Warm(t.Context(), 4, prime); err != nil || n != 4 || reqs.Load() != 4 {
		t.Fatalf("Warm opened %d, server served %d, err %v", n, reqs.Load(), err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, err := c.Warm(t.Context(), 4, prime); err != nil || n != 0 {
		t.Fatalf("primed connections were closed: Warm opened %d more (err %v)", n, err)
	}
	var resp RawResponse
	if err := c.Do(t.Context(), post(`{}`, RawHeader{"Idempotency-Key", "k"}), &resp); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("Do: %v (status %d)", err, resp.StatusCode)
	}
	if st := c.Stats(); st.Dials != 4 || st.Resends != 0 || conns.Load() != 4 {
		t.Fatalf("stats %+v, server saw %d connections", st, conns.Load())
	}
	// A prime the server does not answer 2xx is an error (the connections
	// are kept all the same).
	c2 := newRaw(t, srv.URL, RawClientConfig{MaxConns: 2, Timeout: 5 * time.Second})
	if _, err := c2.Warm(t.Context(), 2, &RawRequest{Method: "GET", Target: "/nowhere"}); err == nil || !strings.Contains(err.Error(), "GET /nowhere answered 404") {
		t.Fatalf("Warm with a prime answered 404: err %v", err)
	}
}
