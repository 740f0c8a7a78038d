// Package rawnet gives TCP connections whose reads and writes are raw system
// calls, on Linux; elsewhere it gives plain ones.
//
// Go marks a goroutine's P as in a system call for every read and write on a
// socket. A write on loopback delivers into the peer's socket in the same
// call and lasts long enough (tens of µs) for the runtime's monitor to hand
// the P to another thread: with thousands of small requests a second, that
// was two thread wake-ups a request and a monitor polling every 20 µs. On a
// non-blocking socket read and write never block, so rawnet makes them raw:
// the P stays with its thread, and a socket that is not ready still parks the
// goroutine on Go's poller (syscall.RawConn), with deadlines and Close
// working as on any net.Conn. The web listener, the PostgreSQL pool and the
// load tool use it.
package rawnet

import (
	"context"
	"net"
)

// DialFunc is the shape of net.Dialer.DialContext and of pgx's DialFunc.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)
