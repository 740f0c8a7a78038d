package devserver

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

func TestServerLogger(t *testing.T) {
	var buf bytes.Buffer
	g := &gate{}
	l := newServerLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), g).With(tag.NewStringTag("service", "history"))

	l.Warn("held while starting")
	if buf.Len() != 0 {
		t.Fatalf("logged during start: %s", &buf)
	}
	g.open()
	l.Info("chatter")
	l.Warn("shard lost", tag.NewInt("shard", 1))
	l.Error("boom")
	if got := buf.String(); strings.Contains(got, "held while starting") || strings.Contains(got, "chatter") ||
		!strings.Contains(got, `level=WARN msg="shard lost" service=history shard=1`) || !strings.Contains(got, "level=ERROR msg=boom") {
		t.Fatalf("running:\n%s", got)
	}
	g.close(false)
	buf.Reset()
	l.Error("after stop")
	if buf.Len() != 0 {
		t.Fatalf("logged after stop: %s", &buf)
	}

	// A failed start replays what was held: it explains the failure.
	g = &gate{}
	l = newServerLogger(slog.New(slog.NewTextHandler(&buf, nil)), g)
	l.Error("cannot bind")
	g.close(true)
	if !strings.Contains(buf.String(), "cannot bind") {
		t.Fatalf("failed start not explained: %s", &buf)
	}
}
