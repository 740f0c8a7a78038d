//go:build !linux

package loadgen

import (
	"context"
	"errors"
	"time"
)

// LoopConfig configures RunLoop (see eventloop_linux.go).
type LoopConfig struct {
	Config
	Client  *RawClient
	Timeout time.Duration
	Prime   *RawRequest
}

// LoopStats counts connection events during a RunLoop.
type LoopStats struct{ Opened, Dials, Resends int }

// LoopRequest appends the bytes of request i to dst.
type LoopRequest func(i int, dst []byte) []byte

// LoopAnswer receives the answer to request i, or its transport error.
type LoopAnswer func(i int, resp *RawResponse, err error)

// ErrLoopUnsupported: RunLoop needs Linux (epoll) and plain HTTP.
var ErrLoopUnsupported = errors.New("the event loop needs Linux and plain HTTP")

// RunLoop is Linux only; elsewhere use Run with a RawClient.
func RunLoop(context.Context, LoopConfig, LoopRequest, LoopAnswer) (*Report, LoopStats, error) {
	return nil, LoopStats{}, ErrLoopUnsupported
}
