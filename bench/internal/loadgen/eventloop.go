package loadgen

import (
	"errors"
	"time"
)

// The event loop's types; RunLoop itself is in eventloop_linux.go (epoll)
// and eventloop_other.go (unsupported).

// LoopConfig configures RunLoop.
type LoopConfig struct {
	Config                // N, Rate, Duration; Concurrency is the number of connections (and so the in-flight cap)
	Client  *RawClient    // where to connect (its loopback guard) and how requests are written; plain HTTP only
	Timeout time.Duration // bounds each request from its write to its answer; 0 means none
	// Prime is sent once on every connection before the clock starts (its
	// answer must be 2xx), so that the server treats them as connections
	// that have served a request. Nil sends nothing.
	Prime *RawRequest
}

// LoopStats counts connection events during a RunLoop.
type LoopStats struct {
	Opened  int // connections opened before the clock
	Dials   int // connections opened during the run (replacing ones the server closed)
	Resends int // requests sent again on a fresh connection: the server closed theirs before any answer byte
}

// LoopRequest appends the bytes of request i to dst (see RawClient.AppendRequest).
type LoopRequest func(i int, dst []byte) []byte

// LoopAnswer receives the answer to request i, or the transport error that
// ended it, with its latency from the intended time (as in the Report); it
// runs on the loop's goroutine, and resp is reused after it returns.
// Cancelling RunLoop's context from it ends the run before the next request
// is sent.
type LoopAnswer func(i int, latency time.Duration, resp *RawResponse, err error)

// ErrLoopUnsupported: RunLoop needs Linux (epoll) and plain HTTP.
var ErrLoopUnsupported = errors.New("the event loop needs Linux and plain HTTP")
