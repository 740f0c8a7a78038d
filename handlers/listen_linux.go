package handlers

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listen returns a TCP listener whose connections read and write with raw
// system calls (see rawConn).
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tl, ok := ln.(*net.TCPListener); ok {
		return rawListener{tl}, nil
	}
	return ln, nil
}

type rawListener struct{ *net.TCPListener }

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return c, nil
	}
	return &rawConn{TCPConn: c, raw: rc}, nil
}

// rawMax: reads and writes up to this size are raw; a larger write (an
// export streamed with a big buffer) goes the usual way, so that one system
// call never holds a scheduler slot for long.
const rawMax = 64 << 10

// rawConn is a TCP connection whose reads and writes call read(2) and
// write(2) without Go's system-call hooks. A request answered from memory (a
// 429 above all) costs a read and a write on a non-blocking socket; each
// marks the goroutine's P as in a system call, and a loopback write that
// delivers into the peer's socket lasts long enough for the runtime's monitor
// to hand the P to another thread. Under a surge that was two thread wake-ups
// and a monitor that polls every 20 µs for every request. Raw, the P stays
// with its thread; a socket that is not ready still parks the goroutine on
// the poller (syscall.RawConn), with deadlines and Close working as before.
// Everything else (deadlines, CloseWrite, sendfile) is the *net.TCPConn's.
type rawConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *rawConn) Read(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Read(p)
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			m, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				n = int(m)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // park until readable (or the deadline)
			default:
				errno = e
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *rawConn) Write(p []byte) (int, error) {
	if len(p) == 0 || len(p) > rawMax {
		return c.TCPConn.Write(p)
	}
	var n int
	var errno syscall.Errno
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(m)
			case unix.EINTR:
			case unix.EAGAIN:
				return false // park until writable (or the deadline)
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

func (c *rawConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
