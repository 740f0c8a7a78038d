package loadgen

// A lean HTTP/1.1 keep-alive client for the hot path of a load run.
//
// net/http's Transport serves each connection with a reader and a writer
// goroutine and hands every request and response between them and the
// caller; on a small machine those hand-offs (futex wake-ups, scheduler
// work) cost a load generator a few hundred microseconds of CPU per request,
// which the server under test then lacks. RawClient does what wrk does: the
// calling goroutine writes the request on a pooled connection and reads the
// response itself, with one write system call and a reused buffer per
// connection, and no goroutine of its own.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// RawHeader is one request header field, written as "Name: Value".
type RawHeader struct{ Name, Value string }

// RawRequest is one request. The client writes the request line, Host,
// User-Agent and Content-Length (when there is a body or the method is POST,
// PUT or PATCH, as net/http does), then Header in its order, then Body.
type RawRequest struct {
	Method string // "GET", "POST", …
	Target string // request target: an escaped absolute path with an optional query, e.g. "/api/v1/claims"
	Header []RawHeader
	Body   []byte
}

// RawResponse is what Do read. Do reuses the capacity of Body, so a caller
// that keeps one RawResponse per goroutine reads without allocating.
type RawResponse struct {
	StatusCode int
	RetryAfter string // the Retry-After field, "" when absent
	// Body holds the first MaxBody bytes of the (de-chunked) body; Truncated
	// reports that there was more.
	Body      []byte
	Truncated bool
	// Closed reports that the connection was closed after this response
	// (Connection: close, HTTP/1.0, a body delimited by the end of the
	// connection, or one too large to drain) instead of being kept for reuse.
	Closed bool
}

// RawClientConfig configures NewRawClient.
type RawClientConfig struct {
	// MaxConns bounds the open connections (default 1). A request that finds
	// them all busy waits for one; a load generator sets it to its in-flight
	// cap, so under it no request ever waits.
	MaxConns int
	// Timeout bounds each request: waiting for a connection, dialling,
	// writing and reading the whole response. 0 means no limit.
	Timeout time.Duration
	// MaxBody is how many body bytes a RawResponse keeps (default 64 KiB).
	// Up to 1 MiB more is read and dropped so the connection can be reused;
	// a longer body closes the connection instead.
	MaxBody int
	// IdleTimeout drops a pooled connection idle for longer (default 90 s,
	// like net/http's, below the usual server idle timeouts).
	IdleTimeout time.Duration
	// TLS is used for https URLs (nil: verify against the system roots, as
	// net/http does). Only HTTP/1.1 is offered.
	TLS *tls.Config
}

// RawStats counts connection events since the client was made.
type RawStats struct {
	Dials   int64 // connections opened
	Resends int64 // requests sent again on a fresh connection after a reused one failed before any response byte
}

// RawClient sends HTTP/1.1 requests over a pool of persistent connections to
// one loopback server. Each connection carries one request at a time; Do
// writes and reads on the calling goroutine. It is safe for concurrent use.
type RawClient struct {
	host   string // Host header value
	addr   string // dial address, host:port
	prefix []byte // " HTTP/1.1\r\nHost: …\r\nUser-Agent: …\r\n"

	timeout     time.Duration
	maxBody     int
	maxConns    int
	idleTimeout time.Duration
	dialer      net.Dialer
	tls         *tls.Config

	mu   sync.Mutex
	idle []*rawConn // LIFO: the most recently used connection is reused first
	open int        // connections open or being dialled
	wake chan struct{}

	dials, resends atomic.Int64
}

type rawConn struct {
	tcp       net.Conn // the TCP connection (closed on cancellation)
	c         net.Conn // tcp, or a TLS client on it
	br        *bufio.Reader
	wbuf      []byte
	line      []byte // long header lines that do not fit in br
	pooled    bool   // has waited in the idle pool: the server may have closed it meanwhile
	idleSince time.Time
}

const (
	rawReadBuf       = 4 << 10
	rawDiscardLimit  = 1 << 20
	rawMaxHeaderSize = 1 << 20
	rawUserAgent     = "Go-http-client/1.1" // what net/http sends; the server sees the same requests as before
)

// Errors for answers that are not well-formed HTTP/1.x. The connection is
// closed and Do returns the error wrapped.
var (
	ErrMalformedResponse = errors.New("malformed HTTP response")
	errHeaderTooLarge    = fmt.Errorf("%w: header larger than %d bytes", ErrMalformedResponse, rawMaxHeaderSize)
)

// NewRawClient returns a client for the server at base, which must pass
// CheckLoopbackURL (only its scheme and host are used). Its dialer, like
// NewClient's, refuses any address that is not loopback.
func NewRawClient(base string, cfg RawClientConfig) (*RawClient, error) {
	u, err := CheckLoopbackURL(base)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := u.Host
	if i := strings.IndexByte(host, '%'); i >= 0 && strings.HasPrefix(host, "[") { // no IPv6 zone in Host, as net/http
		if j := strings.IndexByte(host[i:], ']'); j >= 0 {
			host = host[:i] + host[i+j:]
		}
	}
	c := &RawClient{
		host:        host,
		addr:        net.JoinHostPort(u.Hostname(), port),
		timeout:     max(cfg.Timeout, 0),
		maxBody:     cfg.MaxBody,
		maxConns:    max(cfg.MaxConns, 1),
		idleTimeout: cfg.IdleTimeout,
		dialer:      net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackControl},
	}
	if c.maxBody <= 0 {
		c.maxBody = 64 << 10
	}
	if c.idleTimeout <= 0 {
		c.idleTimeout = 90 * time.Second
	}
	if u.Scheme == "https" {
		c.tls = &tls.Config{}
		if cfg.TLS != nil {
			c.tls = cfg.TLS.Clone()
		}
		if c.tls.ServerName == "" {
			c.tls.ServerName = u.Hostname()
		}
		c.tls.NextProtos = []string{"http/1.1"}
	}
	c.prefix = []byte(" HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + rawUserAgent + "\r\n")
	return c, nil
}

// Stats returns the connection counters.
func (c *RawClient) Stats() RawStats {
	return RawStats{Dials: c.dials.Load(), Resends: c.resends.Load()}
}

// CloseIdle closes the pooled connections not in use.
func (c *RawClient) CloseIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.open -= len(idle)
	c.wakeLocked()
	c.mu.Unlock()
	for _, pc := range idle {
		pc.tcp.Close()
	}
}

// Warm opens connections until n are open (at most MaxConns), 32 dials at a
// time, and keeps them idle for the requests to come. It returns how many it
// opened. Idle connections the server has closed meanwhile are dropped first
// and opened anew.
//
// When prime is not nil it is sent once on each new connection (a cheap,
// safe request such as GET /healthz) and must be answered 2xx: a server
// closes a connection that has sent no request within its header timeout
// (seconds), but keeps one that has served a request for its idle timeout
// (minutes).
func (c *RawClient) Warm(ctx context.Context, n int, prime *RawRequest) (int, error) {
	c.dropClosedIdle()
	var (
		wg     sync.WaitGroup
		opened atomic.Int64
		first  error
		errMu  sync.Mutex
		slots  = make(chan struct{}, 32)
	)
	for {
		c.mu.Lock()
		if c.open >= min(n, c.maxConns) {
			c.mu.Unlock()
			break
		}
		c.open++
		c.mu.Unlock()
		errMu.Lock()
		failed := first != nil
		errMu.Unlock()
		if failed || ctx.Err() != nil {
			c.release()
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			var deadline time.Time
			if c.timeout > 0 {
				deadline = time.Now().Add(c.timeout)
			}
			fail := func(err error) {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
			pc, err := c.dial(ctx, deadline)
			if err != nil {
				c.release()
				fail(err)
				return
			}
			if prime == nil {
				opened.Add(1)
				c.put(pc)
				return
			}
			var resp RawResponse
			if _, err := c.roundTrip(ctx, pc, deadline, prime, &resp); err != nil { // closes pc on error, pools it otherwise
				fail(err)
				return
			}
			opened.Add(1)
			if resp.StatusCode/100 != 2 {
				fail(fmt.Errorf("%s %s answered %d", prime.Method, prime.Target, resp.StatusCode))
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return int(opened.Load()), first
}

// dropClosedIdle closes the idle connections whose server has closed its end
// or sent something unasked.
func (c *RawClient) dropClosedIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	var alive []*rawConn
	for _, pc := range idle {
		if pc.br.Buffered() == 0 && quietAndOpen(pc.tcp) {
			alive = append(alive, pc)
			continue
		}
		pc.tcp.Close()
		c.release()
	}
	c.mu.Lock()
	// Connections put back meanwhile were used more recently: they stay on top.
	c.idle = append(alive, c.idle...)
	c.mu.Unlock()
}

// Do sends req and reads the answer into resp. A non-nil error means no
// complete answer: an I/O error (timeouts are net.Errors with Timeout true),
// a refused dial (wrapping ErrNotLoopback when the guard refused it), a
// malformed answer (wrapping ErrMalformedResponse), or ctx's error when ctx
// ended first. The connection is then closed.
//
// When a request fails on a connection taken from the pool (used before, or
// opened by Warm) before any byte of the answer arrived (the server had
// closed the idle connection), it is sent once more on a fresh connection,
// as net/http does for requests with an
// Idempotency-Key; Stats counts these resends. A caller whose requests are
// not safe to repeat must not use RawClient.
func (c *RawClient) Do(ctx context.Context, req *RawRequest, resp *RawResponse) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRequest(req); err != nil {
		return c.fail(ctx, req, err)
	}
	var deadline time.Time
	if c.timeout > 0 {
		deadline = time.Now().Add(c.timeout)
	}
	pc, err := c.get(ctx, deadline, false)
	if err != nil {
		return c.fail(ctx, req, err)
	}
	reused := pc.pooled
	retry, err := c.roundTrip(ctx, pc, deadline, req, resp)
	if err != nil && retry && reused && ctx.Err() == nil {
		c.resends.Add(1)
		if pc, err = c.get(ctx, deadline, true); err != nil {
			return c.fail(ctx, req, err)
		}
		_, err = c.roundTrip(ctx, pc, deadline, req, resp)
	}
	if err != nil {
		return c.fail(ctx, req, err)
	}
	return nil
}

// ErrInvalidRequest is returned (wrapped) for a request that cannot be
// written as is: a method, target or header name that is not a single token,
// or a value with a control character such as a line break (header
// injection), by the rules net/http applies. Nothing is sent.
var ErrInvalidRequest = errors.New("invalid request")

func checkRequest(req *RawRequest) error {
	if !httpguts.ValidHeaderFieldName(req.Method) || strings.ContainsAny(req.Target, " \r\n") || (req.Target != "" && req.Target[0] != '/') {
		// strconv.Quote copies: req's fields must not escape.
		return fmt.Errorf("%w: method %s, target %s", ErrInvalidRequest, strconv.Quote(req.Method), strconv.Quote(req.Target))
	}
	for _, h := range req.Header {
		if !httpguts.ValidHeaderFieldName(h.Name) || !httpguts.ValidHeaderFieldValue(h.Value) {
			return fmt.Errorf("%w: header field %s", ErrInvalidRequest, strconv.Quote(h.Name))
		}
	}
	return nil
}

func (c *RawClient) fail(ctx context.Context, req *RawRequest, err error) error {
	what := req.Method + " " + req.Target // a copy: req's fields must not escape (nor the caller's Header with them)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w (%v)", what, ctxErr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// errPoolTimeout is a timeout (net.Error) while waiting for a connection.
var errPoolTimeout = fmt.Errorf("waiting for a free connection: %w", os.ErrDeadlineExceeded)

// get returns an idle connection or dials one; fresh skips the idle ones.
func (c *RawClient) get(ctx context.Context, deadline time.Time, fresh bool) (*rawConn, error) {
	for {
		c.mu.Lock()
		for !fresh && len(c.idle) > 0 {
			pc := c.idle[len(c.idle)-1]
			c.idle = c.idle[:len(c.idle)-1]
			if time.Since(pc.idleSince) <= c.idleTimeout {
				c.mu.Unlock()
				return pc, nil
			}
			c.open--
			c.mu.Unlock()
			pc.tcp.Close()
			c.mu.Lock()
		}
		if c.open < c.maxConns {
			c.open++
			c.mu.Unlock()
			pc, err := c.dial(ctx, deadline)
			if err != nil {
				c.release()
			}
			return pc, err
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		c.mu.Unlock()
		// All connections are busy (the caller runs more requests at once
		// than MaxConns): the rare path, so a timer is affordable.
		if err := waitFor(ctx, wake, deadline); err != nil {
			return nil, err
		}
	}
}

func waitFor(ctx context.Context, wake <-chan struct{}, deadline time.Time) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-wake:
		return nil
	case <-timeout:
		return errPoolTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *RawClient) dial(ctx context.Context, deadline time.Time) (*rawConn, error) {
	d := c.dialer
	d.Deadline = deadline
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	pc := &rawConn{tcp: conn, c: conn, br: bufio.NewReaderSize(conn, rawReadBuf), wbuf: make([]byte, 0, 1024)}
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		_ = conn.SetDeadline(deadline)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		pc.c = tc
		pc.br.Reset(tc)
	}
	c.dials.Add(1)
	return pc, nil
}

func (c *RawClient) wakeLocked() {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// release gives up the slot of a connection that was closed or never opened.
func (c *RawClient) release() {
	c.mu.Lock()
	c.open--
	c.wakeLocked()
	c.mu.Unlock()
}

func (c *RawClient) discard(pc *rawConn) {
	pc.tcp.Close()
	c.release()
}

func (c *RawClient) put(pc *rawConn) {
	pc.pooled = true
	pc.idleSince = time.Now()
	c.mu.Lock()
	c.idle = append(c.idle, pc)
	c.wakeLocked()
	c.mu.Unlock()
}

// roundTrip sends req on pc and reads the answer. It returns pc to the pool
// or closes it. retry reports a failure on which resending is harmless to
// the connection's state: the write failed or the connection ended before
// any byte of the answer (not a timeout or a cancellation).
func (c *RawClient) roundTrip(ctx context.Context, pc *rawConn, deadline time.Time, req *RawRequest, resp *RawResponse) (retry bool, err error) {
	w := c.AppendRequest(pc.wbuf[:0], req)
	if cap(w) <= 64<<10 {
		pc.wbuf = w
	}

	if err := pc.c.SetDeadline(deadline); err != nil {
		c.discard(pc)
		return false, err
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		tcp := pc.tcp
		stop = context.AfterFunc(ctx, func() { tcp.Close() })
	}

	var received bool
	keep := false
	if _, err = pc.c.Write(w); err != nil {
		retry = !isTimeout(err)
	} else {
		keep, received, err = readResponse(pc, req.Method, resp, c.maxBody)
		retry = err != nil && !received && !isTimeout(err)
	}
	if !stop() { // ctx ended and closed the connection; err is nil if the answer was complete
		resp.Closed = true
		c.discard(pc)
		return false, err
	}
	if err != nil || !keep {
		resp.Closed = true
		c.discard(pc)
		return retry, err
	}
	c.put(pc)
	return false, nil
}

// AppendRequest appends req as this client writes it to dst: the request
// line, Host, User-Agent and Content-Length (when there is a body or the
// method is POST, PUT or PATCH, as net/http does), then req.Header in its
// order, then the body.
func (c *RawClient) AppendRequest(dst []byte, req *RawRequest) []byte {
	w := append(dst, req.Method...)
	w = append(w, ' ')
	if req.Target == "" {
		w = append(w, '/')
	}
	w = append(w, req.Target...)
	w = append(w, c.prefix...)
	if len(req.Body) > 0 || req.Method == "POST" || req.Method == "PUT" || req.Method == "PATCH" {
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, int64(len(req.Body)), 10)
		w = append(w, "\r\n"...)
	}
	for _, h := range req.Header {
		w = append(w, h.Name...)
		w = append(w, ": "...)
		w = append(w, h.Value...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	return append(w, req.Body...)
}

// Addr is the host:port the client dials.
func (c *RawClient) Addr() string { return c.addr }

// Plain reports that the client speaks HTTP without TLS.
func (c *RawClient) Plain() bool { return c.tls == nil }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readLine returns the next line without its line ending. The slice is valid
// until the next read.
func (pc *rawConn) readLine() ([]byte, error) {
	line, err := pc.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		pc.line = append(pc.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(pc.line) > rawMaxHeaderSize {
				return pc.line, errHeaderTooLarge
			}
			line, err = pc.br.ReadSlice('\n')
			pc.line = append(pc.line, line...)
		}
		line = pc.line
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func malformed(what string, b []byte) error {
	if len(b) > 80 {
		b = b[:80]
	}
	return fmt.Errorf("%w: %s %q", ErrMalformedResponse, what, b)
}

// readResponse reads one answer (skipping 1xx interim answers). keep reports
// that the connection may carry another request; received that at least one
// byte of the answer arrived.
func readResponse(pc *rawConn, method string, resp *RawResponse, maxBody int) (keep, received bool, err error) {
	*resp = RawResponse{Body: resp.Body[:0]}
	headerBytes := 0
	for {
		line, err := pc.readLine()
		received = received || len(line) > 0 || pc.br.Buffered() > 0
		if err != nil {
			if err == io.EOF && received {
				err = io.ErrUnexpectedEOF
			}
			return false, received, err
		}
		received = true
		// HTTP/1.x SSS[ reason]
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
			line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
			return false, true, malformed("status line", line)
		}
		status := 0
		for _, d := range line[9:12] {
			if d < '0' || d > '9' {
				return false, true, malformed("status line", line)
			}
			status = status*10 + int(d-'0')
		}
		if status < 100 {
			return false, true, malformed("status line", line)
		}
		http10 := line[7] == '0'
		keep = !http10 // HTTP/1.1 persists by default, 1.0 only with keep-alive
		contentLength, chunked := int64(-1), false
		for {
			line, err := pc.readLine()
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return false, true, err
			}
			if len(line) == 0 {
				break
			}
			if headerBytes += len(line); headerBytes > rawMaxHeaderSize {
				return false, true, errHeaderTooLarge
			}
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
				return false, true, malformed("header line", line)
			}
			name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
			switch {
			case asciiEqualFold(name, "Content-Length"):
				n, perr := strconv.ParseInt(string(value), 10, 64)
				if perr != nil || n < 0 || (contentLength >= 0 && n != contentLength) {
					return false, true, malformed("Content-Length", value)
				}
				contentLength = n
			case asciiEqualFold(name, "Transfer-Encoding"):
				if !asciiEqualFold(value, "chunked") {
					return false, true, malformed("Transfer-Encoding", value)
				}
				chunked = true
			case asciiEqualFold(name, "Connection"):
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					tok = bytes.Trim(tok, " \t")
					if asciiEqualFold(tok, "close") {
						keep = false
					} else if asciiEqualFold(tok, "keep-alive") && http10 {
						keep = true
					}
				}
			case asciiEqualFold(name, "Retry-After") && resp.RetryAfter == "": // the first, as http.Header.Get
				resp.RetryAfter = string(value)
			}
		}
		if status == 101 {
			return false, true, malformed("unexpected 101 Switching Protocols", nil)
		}
		if status < 200 { // 100 Continue, 103 Early Hints: the answer follows
			resp.RetryAfter = ""
			continue
		}
		resp.StatusCode = status
		switch {
		case method == "HEAD" || status == 204 || status == 304:
			return keep, true, nil
		case chunked:
			if contentLength >= 0 {
				keep = false // both framings: trust chunked, but do not reuse
			}
			ok, err := readChunked(pc, resp, maxBody)
			return keep && ok, true, err
		case contentLength >= 0:
			ok, err := readBody(pc.br, resp, contentLength, maxBody)
			return keep && ok, true, err
		default: // delimited by the end of the connection
			return false, true, readToEOF(pc.br, resp, maxBody)
		}
	}
}

// readBody reads n body bytes, keeping the first maxBody in resp.Body. ok is
// false when the body was too long to drain (the rest is left unread).
func readBody(br *bufio.Reader, resp *RawResponse, n int64, maxBody int) (ok bool, err error) {
	keepN := int(min(n, int64(max(maxBody-len(resp.Body), 0))))
	if keepN > 0 {
		old := len(resp.Body)
		resp.Body = slices.Grow(resp.Body, keepN)[:old+keepN]
		if _, err := io.ReadFull(br, resp.Body[old:]); err != nil {
			resp.Body = resp.Body[:old]
			return false, unexpected(err)
		}
	}
	rest := n - int64(keepN)
	if rest == 0 {
		return true, nil
	}
	resp.Truncated = true
	if rest > rawDiscardLimit {
		return false, nil
	}
	if _, err := br.Discard(int(rest)); err != nil {
		return false, unexpected(err)
	}
	return true, nil
}

// readToEOF reads a body that ends with the connection, keeping maxBody
// bytes; the connection is closed afterwards, so a longer body is not drained.
func readToEOF(br *bufio.Reader, resp *RawResponse, maxBody int) error {
	for len(resp.Body) < maxBody {
		old := len(resp.Body)
		resp.Body = slices.Grow(resp.Body, min(maxBody-old, rawReadBuf))
		buf := resp.Body[old:cap(resp.Body)]
		n, err := br.Read(buf[:min(len(buf), maxBody-old)])
		resp.Body = resp.Body[:old+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if _, err := br.Peek(1); err == nil {
		resp.Truncated = true
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readChunked reads a chunked body and its trailer.
func readChunked(pc *rawConn, resp *RawResponse, maxBody int) (ok bool, err error) {
	var total int64
	for {
		line, err := pc.readLine()
		if err != nil {
			return false, unexpected(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extensions
			line = line[:i]
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 || len(line) > 15 {
			return false, malformed("chunk size", line)
		}
		var size int64
		for _, h := range line {
			switch {
			case h >= '0' && h <= '9':
				size = size<<4 | int64(h-'0')
			case h >= 'a' && h <= 'f':
				size = size<<4 | int64(h-'a'+10)
			case h >= 'A' && h <= 'F':
				size = size<<4 | int64(h-'A'+10)
			default:
				return false, malformed("chunk size", line)
			}
		}
		if size == 0 {
			break
		}
		if total += size; total > int64(maxBody)+rawDiscardLimit {
			resp.Truncated = true
			return false, nil
		}
		if ok, err := readBody(pc.br, resp, size, maxBody); !ok || err != nil {
			return false, err
		}
		crlf, err := pc.br.Peek(2)
		if err != nil {
			return false, unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return false, malformed("chunk end", crlf)
		}
		_, _ = pc.br.Discard(2)
	}
	for { // trailer fields, ignored
		line, err := pc.readLine()
		if err != nil {
			return false, unexpected(err)
		}
		if len(line) == 0 {
			return true, nil
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
