//go:build !linux

package loadgen

import "context"

// RunLoop is Linux only; elsewhere use Run with a RawClient.
func RunLoop(context.Context, LoopConfig, LoopRequest, LoopAnswer) (*Report, LoopStats, error) {
	return nil, LoopStats{}, ErrLoopUnsupported
}
