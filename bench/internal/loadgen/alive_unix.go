//go:build unix

package loadgen

import (
	"net"
	"syscall"
)

// quietAndOpen reports whether an idle connection is still open and has
// nothing to read, without blocking: one recv with MSG_PEEK|MSG_DONTWAIT.
// (A read deadline in the past cannot tell: Go then fails the read before
// asking the kernel.)
func quietAndOpen(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open and quiet. n == 0 without error: the peer closed.
		// n > 0: an answer nobody asked for (a 408, a TLS alert).
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return err == nil && alive
}
