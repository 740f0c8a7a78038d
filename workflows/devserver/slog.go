package devserver

import (
	"context"
	"log/slog"
	"os"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts the server's log.Logger to slog. The server is chatty
// at INFO (membership, shard and queue lifecycle), which would drown the
// `relief dev` output, so only WARN and above pass.
type serverLogger struct{ l *slog.Logger }

var (
	_ log.Logger      = serverLogger{}
	_ log.WithLogger  = serverLogger{}
	_ log.SkipLogger  = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

func newServerLogger(l *slog.Logger) serverLogger {
	return serverLogger{slog.New(warnHandler{l.Handler()})}
}

func (s serverLogger) Debug(string, ...tag.Tag) {}
func (s serverLogger) Info(string, ...tag.Tag)  {}
func (s serverLogger) Warn(msg string, tags ...tag.Tag) {
	s.l.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs(tags)...)
}
func (s serverLogger) Error(msg string, tags ...tag.Tag) {
	s.l.LogAttrs(context.Background(), slog.LevelError, msg, attrs(tags)...)
}

// DPanic panics only in development builds of the server; logged as an error here.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.Error(msg, tags...) }

// Panic and Fatal keep the server's contract: they never return.
func (s serverLogger) Panic(msg string, tags ...tag.Tag) { s.Error(msg, tags...); panic(msg) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag) { s.Error(msg, tags...); os.Exit(1) }

func (s serverLogger) With(tags ...tag.Tag) log.Logger {
	return serverLogger{slog.New(s.l.Handler().WithAttrs(attrs(tags)))}
}

// Skip is about caller frames, which slog records itself.
func (s serverLogger) Skip(int) log.Logger { return s }

// SLog hands the same WARN+ logger to server components that log with slog.
func (s serverLogger) SLog() *slog.Logger { return s.l }

func attrs(tags []tag.Tag) []slog.Attr {
	out := make([]slog.Attr, len(tags))
	for i, t := range tags {
		out[i] = slog.Any(t.Key(), t.Value())
	}
	return out
}

// warnHandler drops records below WARN before they reach the wrapped handler.
type warnHandler struct{ slog.Handler }

func (h warnHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return warnHandler{h.Handler.WithAttrs(as)}
}

func (h warnHandler) WithGroup(name string) slog.Handler { return warnHandler{h.Handler.WithGroup(name)} }
