package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/relief/relief/cmd/relief/banksim"
)

// startSandboxBank serves the sandbox bank (`relief banksim`) in this process
// on a free loopback port, for `relief dev`. stop ends it and closes its books.
func startSandboxBank(ctx context.Context, dataPath string, log *slog.Logger) (url string, stop func(), err error) {
	srv, err := banksim.NewServer(banksim.Config{DataPath: dataPath, Logger: log})
	if err != nil {
		return "", nil, fmt.Errorf("start the sandbox bank: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return "", nil, fmt.Errorf("start the sandbox bank: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			log.Warn("sandbox bank stopped", "err", err.Error())
		}
	}()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		<-done
		if err := srv.Close(); err != nil {
			log.Warn("close the sandbox bank", "err", err.Error())
		}
	}, nil
}
