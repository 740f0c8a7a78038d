package devserver

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts the server's log.Logger to slog. The server is chatty
// at INFO (membership, shards, queues), which would drown the `relief dev`
// output, so only WARN and above pass, and only while the server is up: see gate.
type serverLogger struct{ l *slog.Logger }

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SkipLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

func newServerLogger(l *slog.Logger, g *gate) serverLogger {
	return serverLogger{slog.New(gateHandler{l.Handler(), g})}
}

func (s serverLogger) Debug(string, ...tag.Tag) {}
func (s serverLogger) Info(string, ...tag.Tag)  {}
func (s serverLogger) Warn(msg string, tags ...tag.Tag) {
	s.l.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs(tags)...)
}
func (s serverLogger) Error(msg string, tags ...tag.Tag) {
	s.l.LogAttrs(context.Background(), slog.LevelError, msg, attrs(tags)...)
}

// DPanic panics only in development builds of the server; an error here.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.Error(msg, tags...) }

// Panic and Fatal keep the server's contract: they do not return.
func (s serverLogger) Panic(msg string, tags ...tag.Tag) { s.Error(msg, tags...); panic(msg) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag) { s.Error(msg, tags...); os.Exit(1) }

func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{slog.New(s.l.Handler().WithAttrs(attrs(tags)))}
}

// Skip is about caller frames, which slog records itself.
func (s serverLogger) Skip(int) log.Logger { return s }

// SLog hands the same gated logger to server components that log with slog.
func (s serverLogger) SLog() *slog.Logger { return s.l }

func attrs(tags []tag.Tag) []slog.Attr {
	out := make([]slog.Attr, len(tags))
	for i, t := range tags {
		out[i] = slog.Any(t.Key(), t.Value())
	}
	return out
}

// gate decides what happens to a server's records. While the services come
// up they warn about each other not being there yet ("Not enough hosts",
// dial errors); while they go down, about each other being gone; and some
// system workers outlive Stop (upstream never stops the parent-close-policy
// processor) and keep complaining. None of that is actionable, so records
// are held during start — and replayed only if the start fails, as the
// evidence — passed through while running, and dropped after Stop.
type gate struct {
	mu    sync.Mutex
	state int
	held  []heldRecord
}

const (
	starting = iota
	running
	stopped
)

const maxHeld = 200

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func (g *gate) handle(ctx context.Context, h slog.Handler, r slog.Record) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case starting:
		if len(g.held) == maxHeld {
			g.held = g.held[1:]
		}
		g.held = append(g.held, heldRecord{h, r.Clone()})
		return nil
	case running:
		return h.Handle(ctx, r)
	}
	return nil
}

// open starts passing records through and forgets the start-up noise.
func (g *gate) open() { g.set(running, false) }

// close drops everything from now on; replay emits the held records first.
func (g *gate) close(replay bool) { g.set(stopped, replay) }

func (g *gate) set(state int, replay bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if replay {
		for _, hr := range g.held {
			_ = hr.h.Handle(context.Background(), hr.r)
		}
	}
	g.held, g.state = nil, state
}

// gateHandler is the slog.Handler in front of the caller's: WARN and above, through the gate.
type gateHandler struct {
	inner slog.Handler
	g     *gate
}

func (h gateHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.inner.Enabled(ctx, level)
}

func (h gateHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.g.handle(ctx, h.inner, r)
}

func (h gateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return gateHandler{h.inner.WithAttrs(as), h.g}
}

func (h gateHandler) WithGroup(name string) slog.Handler {
	return gateHandler{h.inner.WithGroup(name), h.g}
}
