//go:build !linux

package rawnet

import "net"

// Listen is net.Listen("tcp", addr) where raw system calls are not used.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Dialing returns dial unchanged where raw system calls are not used.
func Dialing(dial DialFunc) DialFunc { return dial }
