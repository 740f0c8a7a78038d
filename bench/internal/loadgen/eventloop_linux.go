//go:build linux

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/relief/relief/rawnet"
)

// Event loop: the open loop of Run and the transport of RawClient in one
// thread, as wrk runs them. Run and RawClient cost a goroutine hand-off per
// request (the scheduler's channel send, a wake-up when the answer arrives,
// an extra read that finds nothing) and, with two or more Ps, Go scheduler
// threads that wake each other; on a 2-core machine shared with the server
// that took 0.5–0.95 of a core at 16,000 requests/s, and how much of it the
// load tool got depended on how the kernel grouped the processes (one
// session or two). Here one goroutine owns every connection: non-blocking
// sockets in its own epoll set, each request written with one write, each
// answer read until it is whole, no goroutine per request.
//
// The loop's own system calls (epoll_wait, and read and write by rawnet) are
// raw: they do not tell the Go scheduler they are in a system call. A
// goroutine that keeps entering and leaving system calls keeps the runtime's
// monitor thread (sysmon) waking every 20 µs to see whether its P should be
// handed to another thread; on 2 cores that monitor took a quarter of the
// tool's CPU.
// The loop is the tool's only busy goroutine and never wants to give its P
// away; preemption (a signal, which ends epoll_wait with EINTR) still
// reaches it, so the garbage collector can stop it.

// rawEpollWait is epoll_wait(2) without the scheduler's syscall hooks.
func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	// epoll_pwait with no signal mask is epoll_wait, and exists on every
	// Linux architecture (arm64 has no epoll_wait).
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

type loopConn struct {
	fd      int
	req     int // request in flight, -1 when idle
	out     []byte
	written int
	in      []byte
	sentAt  time.Duration // since the start
	resent  bool
	wantOut bool // registered for EPOLLOUT: a write is pending
}

type eventLoop struct {
	cfg    LoopConfig
	epfd   int
	byFD   []*loopConn
	idle   []*loopConn
	busy   int
	stats  LoopStats
	resp   RawResponse
	answer LoopAnswer
	rep    *Report
	state  []uint8
	start  time.Time
}

// RunLoop offers cfg.N requests at cfg.Rate per second on cfg.Concurrency
// connections opened (and primed) before the clock starts, and stops at
// cfg.Duration or when ctx ends. A request is written at its intended time
// (to the millisecond: the loop sleeps in epoll_wait, whose timeout is in
// milliseconds; the delay counts in its latency) or, when every connection
// is busy, as soon as one is free. Latency runs from the intended time to
// the whole answer, as in Run. The error is for the set-up: a connection
// that could not be opened or primed.
func RunLoop(ctx context.Context, cfg LoopConfig, request LoopRequest, answer LoopAnswer) (*Report, LoopStats, error) {
	if cfg.Client == nil || !cfg.Client.Plain() {
		return nil, LoopStats{}, ErrLoopUnsupported
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, LoopStats{}, err
	}
	e := &eventLoop{cfg: cfg, epfd: epfd, answer: answer}
	defer e.closeAll()
	for range max(cfg.Concurrency, 1) {
		c, err := e.open(ctx, cfg.Prime)
		if err != nil {
			return nil, e.stats, fmt.Errorf("opening connection %d of %d: %w", e.stats.Opened+1, max(cfg.Concurrency, 1), err)
		}
		e.stats.Opened++
		e.idle = append(e.idle, c)
	}
	return e.run(ctx, request), e.stats, nil
}

// open dials (through the client's loopback guard), primes, and hands the
// socket to the loop's epoll set.
func (e *eventLoop) open(ctx context.Context, prime *RawRequest) (*loopConn, error) {
	cl := e.cfg.Client
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := cl.dialer.DialContext(dctx, "tcp", cl.addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close() // the loop keeps its own descriptor of the socket
	if prime != nil {
		if err := primeConn(nc, cl.AppendRequest(nil, prime), prime.Method); err != nil {
			return nil, err
		}
	}
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	if cerr := raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	// Go made the socket non-blocking; the duplicate shares that.
	if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &loopConn{fd: fd, req: -1, in: make([]byte, 0, rawReadBuf)}
	for len(e.byFD) <= fd {
		e.byFD = append(e.byFD, nil)
	}
	e.byFD[fd] = c
	return c, nil
}

// primeConn sends req on nc and reads its answer, which must be 2xx.
func primeConn(nc net.Conn, req []byte, method string) error {
	if err := nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := nc.Write(req); err != nil {
		return err
	}
	var (
		buf  = make([]byte, 0, rawReadBuf)
		resp RawResponse
	)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		m, err := parseResponse(buf, rerr == io.EOF, method == "HEAD", &resp, 1<<10)
		switch {
		case err != nil:
			return err
		case m > 0 && (resp.StatusCode < 200 || resp.StatusCode > 299):
			return fmt.Errorf("priming answered %d", resp.StatusCode)
		case m > 0 && (m != len(buf) || resp.Closed):
			return errors.New("priming left the connection unusable")
		case m > 0:
			return nc.SetDeadline(time.Time{})
		case rerr != nil:
			return rerr
		}
	}
}

func (e *eventLoop) closeConn(c *loopConn) {
	_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	e.byFD[c.fd] = nil
	c.fd = -1
}

func (e *eventLoop) closeAll() {
	for _, c := range e.byFD {
		if c != nil {
			e.closeConn(c)
		}
	}
	unix.Close(e.epfd)
}

// offset is request i's intended time since the start.
func (e *eventLoop) offset(i int) time.Duration {
	return time.Duration(float64(i) / e.cfg.Rate * float64(time.Second))
}

func (e *eventLoop) run(ctx context.Context, request LoopRequest) *Report {
	n := e.cfg.N
	if e.cfg.Rate <= 0 {
		e.cfg.Rate = 1
	}
	e.rep = &Report{Latency: make([]time.Duration, n)}
	for i := range e.rep.Latency {
		e.rep.Latency[i] = -1
	}
	e.state = make([]uint8, n)
	events := make([]unix.EpollEvent, 512)
	e.start = time.Now()
	e.rep.Start = e.start
	var (
		next     int
		lastScan time.Duration
		lastDone time.Duration
		ended    time.Duration
	)
	for {
		now := time.Since(e.start)
		if ctx.Err() != nil {
			e.rep.Interrupted, ended = true, now
			break
		}
		if e.cfg.Duration > 0 && now >= e.cfg.Duration {
			e.rep.CapReached, ended = true, now
			break
		}
		for next < n && len(e.idle) > 0 {
			due := e.offset(next)
			if due > now {
				break
			}
			c := e.idle[len(e.idle)-1]
			e.idle = e.idle[:len(e.idle)-1]
			lag := now - due
			e.rep.MaxStartLag = max(e.rep.MaxStartLag, lag)
			if lag > time.Millisecond {
				e.rep.LateStarts++
			}
			e.state[next] = stStarted
			c.req, c.out, c.written, c.in, c.resent, c.sentAt = next, request(next, c.out[:0]), 0, c.in[:0], false, now
			e.busy++
			e.rep.MaxInFlight = max(e.rep.MaxInFlight, e.busy)
			next++
			e.write(c)
		}
		if next >= n && e.busy == 0 {
			break
		}
		if e.cfg.Timeout > 0 && now-lastScan >= 10*time.Millisecond {
			lastScan = now
			for _, c := range e.byFD {
				if c != nil && c.req >= 0 && now-c.sentAt > e.cfg.Timeout {
					e.fail(c, context.DeadlineExceeded)
				}
			}
		}
		wait := 100 * time.Millisecond
		if next < n && len(e.idle) > 0 {
			wait = min(wait, e.offset(next)-now)
		}
		if e.cfg.Timeout > 0 && e.busy > 0 {
			wait = min(wait, 10*time.Millisecond)
		}
		ms := int((wait + time.Millisecond - 1) / time.Millisecond) // never early: ceil
		nev, err := rawEpollWait(e.epfd, events, max(ms, 0))
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic(fmt.Sprintf("epoll_wait: %v", err)) // only a bad descriptor or buffer can cause it
		}
		for _, ev := range events[:max(nev, 0)] {
			c := e.byFD[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 && c.req >= 0 && c.written < len(c.out) {
				e.write(c)
			}
			if c.fd >= 0 && ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				if done := e.read(c); done > 0 {
					lastDone = done
				}
			}
		}
	}
	rep := e.rep
	rep.Elapsed = max(lastDone, ended)
	for i, s := range e.state {
		switch s {
		case stStarted:
			rep.Started++
			rep.Cancelled++
		case stCompleted:
			rep.Started++
			rep.Completed++
		}
		if e.offset(i) <= rep.Elapsed {
			rep.Scheduled++
		}
	}
	rep.NotSent = n - rep.Started
	return rep
}

// write sends what is left of c's request; a full socket buffer waits for
// EPOLLOUT.
func (e *eventLoop) write(c *loopConn) {
	for c.written < len(c.out) {
		k, err := rawnet.Write(c.fd, c.out[c.written:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if !c.wantOut {
				c.wantOut = true
				_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT, Fd: int32(c.fd)})
			}
			return
		case err != nil:
			e.fail(c, err)
			return
		}
		c.written += k
	}
	if c.wantOut {
		c.wantOut = false
		_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
	}
}

// read takes everything the socket holds and, when it completes the answer,
// records it; it returns the completion time (0 when nothing completed).
func (e *eventLoop) read(c *loopConn) time.Duration {
	eof := false
	for {
		if len(c.in) == cap(c.in) {
			c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
		}
		room := cap(c.in) - len(c.in)
		k, err := rawnet.Read(c.fd, c.in[len(c.in):cap(c.in)])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			e.fail(c, err)
			return 0
		}
		if k == 0 {
			eof = true
			break
		}
		c.in = c.in[:len(c.in)+k]
		if k < room {
			// The socket had less than the buffer holds: it is empty now,
			// and a read to hear EAGAIN would be a system call per answer
			// for nothing. The epoll set is level-triggered, so bytes (or
			// an EOF) that arrive later bring the loop back here.
			break
		}
	}
	if c.req < 0 { // an idle connection the server closed (or that spoke out of turn)
		if eof || len(c.in) > 0 {
			e.replaceIdle(c)
		}
		return 0
	}
	m, err := parseResponse(c.in, eof, false, &e.resp, 64<<10)
	if err != nil {
		e.fail(c, err)
		return 0
	}
	if m == 0 {
		return 0
	}
	done := time.Since(e.start)
	i := c.req
	e.rep.Latency[i] = done - e.offset(i)
	e.state[i] = stCompleted
	e.busy--
	c.req = -1
	reuse := !eof && !e.resp.Closed && m == len(c.in)
	e.answer(i, e.rep.Latency[i], &e.resp, nil)
	if reuse {
		c.in = c.in[:0]
		e.idle = append(e.idle, c)
	} else {
		e.replaceIdle(c)
	}
	return done
}

// fail ends c's request with err, or, when the server closed a connection
// before any byte of the answer (it may have closed it just as the request
// went out), sends it once more on a fresh connection, as net/http does.
func (e *eventLoop) fail(c *loopConn, err error) {
	if c.req < 0 {
		e.replaceIdle(c)
		return
	}
	i := c.req
	closed := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	e.closeConn(c)
	if closed && len(c.in) == 0 && !c.resent {
		nc, derr := e.open(context.Background(), nil)
		if derr == nil {
			e.stats.Dials++
			e.stats.Resends++
			nc.req, nc.out, nc.resent, nc.sentAt = i, c.out, true, c.sentAt
			c.out = nil
			e.write(nc)
			return
		}
		err = derr
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && len(c.in) == 0 {
		err = io.EOF
	}
	e.rep.Latency[i] = time.Since(e.start) - e.offset(i)
	e.state[i] = stCompleted
	e.busy--
	c.req = -1
	e.answer(i, e.rep.Latency[i], nil, err)
	e.addIdle()
}

// replaceIdle closes c and opens a connection in its place.
func (e *eventLoop) replaceIdle(c *loopConn) {
	if c.fd >= 0 {
		e.closeConn(c)
	}
	for k, ic := range e.idle {
		if ic == c {
			e.idle = append(e.idle[:k], e.idle[k+1:]...)
			break
		}
	}
	e.addIdle()
}

// addIdle opens a connection for the pool; when the server refuses, the
// pool is one short (the in-flight cap shrinks), which the report shows in
// its dials and errors.
func (e *eventLoop) addIdle() {
	nc, err := e.open(context.Background(), nil)
	if err != nil {
		return
	}
	e.stats.Dials++
	e.idle = append(e.idle, nc)
}
