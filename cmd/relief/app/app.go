// Package app composes Relief's processes from configuration: the web server,
// the outbox dispatcher and the Temporal worker. `relief serve`, `relief worker`
// and `relief dev` all run through Run, and so do the end-to-end tests.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/dispatch"
	"github.com/relief/relief/workflows/payout/bank"
)

// Options choose which processes Run starts.
type Options struct {
	Web, Dispatcher, Worker bool
	// Ready is called with the web server's bound address once it listens.
	Ready func(addr string)
}

// NewLogger returns the JSON logger every process uses.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}

// DialTemporal connects to Temporal, retrying for a while: in production the
// cluster may come up after us.
func DialTemporal(ctx context.Context, cfg *config.Config, log *slog.Logger) (client.Client, error) {
	var lastErr error
	for attempt := 0; attempt < 30; attempt++ {
		c, err := client.DialContext(ctx, client.Options{
			HostPort:  cfg.TemporalAddress,
			Namespace: cfg.TemporalNamespace,
			Logger:    tlog.NewStructuredLogger(log.With("component", "temporal-sdk")),
		})
		if err == nil {
			return c, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, lastErr)
}

// Run starts the chosen processes and blocks until ctx ends, then stops them
// in order: stop taking requests, drain, stop the worker.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) error {
	store, err := models.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.Vault)
	if err != nil {
		return err
	}
	defer store.Close()
	store.IntakeWriters = cfg.IntakeWriters
	tc, err := DialTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := workflows.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		// A locked-down production cluster may refuse; the operator registers them.
		log.Warn("could not register search attributes", "err", err.Error())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)

	if opts.Worker {
		deps := workflows.Deps{Store: store, Log: log}
		if cfg.BankURL != "" {
			deps.Bank = bank.NewHTTPClient(cfg.BankURL, nil)
		}
		for _, w := range workflows.NewWorkers(tc, deps) {
			if err := w.Start(); err != nil {
				return fmt.Errorf("start worker: %w", err)
			}
			defer w.Stop()
		}
	}
	if opts.Dispatcher {
		d := &dispatch.Dispatcher{Store: store, Temporal: tc, Log: log.With("component", "dispatcher"), Rate: cfg.DispatchRate}
		wg.Add(1)
		go func() { defer wg.Done(); errc <- d.Run(ctx) }()
	}
	if opts.Web {
		wg.Add(1)
		go func() { defer wg.Done(); store.WatchSessions(ctx, log.With("component", "session-cache")) }()
		renderer, err := web.New()
		if err != nil {
			return err
		}
		srv := handlers.New(handlers.Deps{Store: store, Temporal: tc, Web: renderer, Log: log, Config: cfg, Registry: prometheus.NewRegistry()})
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := srv.ListenAndServe(ctx, cfg.Addr, opts.Ready)
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		if err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
