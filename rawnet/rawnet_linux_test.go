package rawnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPair returns an accepted rawConn and the client end of its connection,
// dialled through Dialing (so raw too).
func rawPair(t *testing.T) (*rawConn, *rawConn) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dialled, err := Dialing((&net.Dialer{}).DialContext)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialled.Close() })
	client, ok := dialled.(*rawConn)
	if !ok {
		t.Fatalf("dialled %T, want *rawConn", dialled)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, ok := c.(*rawConn)
	if !ok {
		t.Fatalf("accepted %T, want *rawConn", c)
	}
	return rc, client
}

func TestRawConnCarriesBytesBothWays(t *testing.T) {
	server, client := rawPair(t)
	deadline := time.Now().Add(20 * time.Second) // a lost byte fails, not hangs
	_ = server.SetDeadline(deadline)
	_ = client.SetDeadline(deadline)
	// Small socket buffers, and a reader that starts late: the raw writes of
	// the larger sizes fill them and must park on EAGAIN.
	for _, c := range []*rawConn{server, client} {
		_ = c.SetWriteBuffer(32 << 10)
		_ = c.SetReadBuffer(32 << 10)
	}
	// Sizes on both sides of rawMax, and 8 MB in raw-sized pieces: more than
	// the socket buffers hold, so raw writes meet EAGAIN and park until the
	// other end reads.
	for _, size := range []int{1, 4096, rawMax, rawMax + 1, 8 << 20} {
		want := bytes.Repeat([]byte(fmt.Sprint(size%10)), size)
		carry(t, server, client, want, fmt.Sprintf("size %d, server to client", size))
		carry(t, client, server, want, fmt.Sprintf("size %d, client to server", size))
	}
}

// carry writes want from one end in raw-sized pieces while the other end,
// starting late, reads it whole, and fails the test unless every byte
// arrived in order.
func carry(t *testing.T, from, to *rawConn, want []byte, what string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for rest := want; len(rest) > 0; {
			piece := rest[:min(len(rest), rawMax)]
			n, err := from.Write(piece)
			if err == nil && n != len(piece) {
				err = fmt.Errorf("wrote %d of %d bytes", n, len(piece))
			}
			if err != nil {
				errc <- err
				return
			}
			rest = rest[n:]
		}
		errc <- nil
	}()
	got := make([]byte, len(want))
	time.Sleep(20 * time.Millisecond)
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("%s: read: %v", what, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: bytes differ", what)
	}
}

func TestRawConnEOFDeadlineAndClose(t *testing.T) {
	server, _ := rawPair(t)

	// A parked read ends at its deadline with a timeout error.
	if err := server.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_, err := server.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	if oe, ok := err.(*net.OpError); !ok || oe.Op != "read" {
		t.Fatalf("read past its deadline: %#v, want a *net.OpError for read", err)
	}
	_ = server.SetReadDeadline(time.Time{})

	// A parked read ends when another goroutine closes the connection.
	done := make(chan error, 1)
	go func() { _, err := server.Read(buf); done <- err }()
	time.Sleep(20 * time.Millisecond)
	server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still parked after Close")
	}

	// The peer's close is io.EOF, and writing to a peer that is gone fails
	// with an error, not a signal.
	server2, client2 := rawPair(t)
	client2.Close()
	if _, err := server2.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = server2.Write([]byte("hello"))
		time.Sleep(time.Millisecond)
	}
	if werr == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}

// TestRawListenerServesHTTP: keep-alive requests, a body larger than a raw
// read, and a 429 turned away before its body is read all pass through
// net/http on raw connections.
func TestRawListenerServesHTTP(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conn := dial()
	br := bufio.NewReader(conn)
	for i, size := range []int{0, 300, 200 << 10, 300} {
		path := "/echo"
		if i == 2 {
			path = "/busy"
		}
		body := strings.Repeat("x", size)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", path, size, body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/busy" {
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
				t.Fatalf("request %d: %d %v", i, resp.StatusCode, resp.Header)
			}
			if resp.Close {
				// net/http closes when an unread body exceeds what it
				// discards; then the next request needs a new connection.
				conn = dial()
				br = bufio.NewReader(conn)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || string(got) != fmt.Sprint(size) {
			t.Fatalf("request %d: %d %q, want 200 %d", i, resp.StatusCode, got, size)
		}
	}
}

// Dialing calls the dialer it was given (pgx's carries connect_timeout),
// passes its errors through, and leaves connections other than TCP as they
// are.
func TestDialingKeepsTheDialer(t *testing.T) {
	pipe, other := net.Pipe()
	defer pipe.Close()
	defer other.Close()
	calls := 0
	dial := Dialing(func(_ context.Context, _, addr string) (net.Conn, error) {
		calls++
		if addr == "refused" {
			return nil, errors.New("connection refused")
		}
		return pipe, nil
	})
	if c, err := dial(context.Background(), "unix", "/run/x"); err != nil || c != pipe {
		t.Fatalf("a pipe came back as %T (%v), want it unchanged", c, err)
	}
	if c, err := dial(context.Background(), "tcp", "refused"); err == nil || err.Error() != "connection refused" || c != nil {
		t.Fatalf("a refused dial came back as %v, %v", c, err)
	}
	if calls != 2 {
		t.Fatalf("the given dialer was called %d times, want 2", calls)
	}
}
