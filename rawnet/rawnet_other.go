//go:build !linux

package rawnet

import (
	"context"
	"net"
)

// Listen is net.Listen("tcp", addr) where raw system calls are not used.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Dial is a plain TCP dial where raw system calls are not used.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
