package rawnet

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Listen returns a TCP listener whose connections read and write with raw
// system calls.
func Listen(addr string) (net.Listener, error) {
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
	return wrap(c), nil
}

// Dialing returns dial with its TCP connections raw; other connections
// come back as dial made them. Wrapping the dialer a client already has
// (pgx's, which carries its connect_timeout) keeps everything it set.
func Dialing(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			return wrap(tc), nil
		}
		return c, nil
	}
}

func wrap(c *net.TCPConn) net.Conn {
	rc, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &rawConn{TCPConn: c, raw: rc}
}

// Read is read(2) without the scheduler's system-call hooks. An empty p
// reads nothing.
func Read(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

// Write is write(2) without the scheduler's system-call hooks. An empty p
// writes nothing.
func Write(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2) (trap) as a raw system call.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawMax: reads and writes up to this size are raw; a larger write (an
// export streamed with a big buffer) goes the usual way, so that one system
// call never holds a scheduler slot for long.
const rawMax = 64 << 10

// rawConn is a TCP connection whose Read and Write are raw (see the package
// comment). Everything else (deadlines, CloseWrite, sendfile) is the
// *net.TCPConn's.
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
			m, err := Read(int(fd), p)
			switch err {
			case nil:
				n = m
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // park until readable (or the deadline)
			default:
				errno = err.(syscall.Errno)
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, named("read", err)
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
			m, err := Write(int(fd), p[n:])
			switch err {
			case nil:
				n += m
			case unix.EINTR:
			case unix.EAGAIN:
				return false // park until writable (or the deadline)
			default:
				errno = err.(syscall.Errno)
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, named("write", err)
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// named gives a deadline or close error from syscall.RawConn ("raw-read")
// the operation a net.Conn reports ("read"), for logs that read as before.
func named(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}

func (c *rawConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
