package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/devserver"
	"github.com/relief/relief/workflows/dispatch"
)

// The tool runs two helpers as child processes of its own binary, so they can
// be stopped and killed like the real processes:
//
//   - internalTemporal: the embedded Temporal server of `relief dev`
//     (workflows/devserver) on a SQLite file. A server restarted inside one
//     process cannot take its old frontend port back (devserver keeps it away
//     from the stale system workers of the stopped server), so a restart on
//     the same address, which serve and worker are configured with, needs a
//     fresh process. devserver's port file makes the new process reuse it.
//   - internalCrashDispatcher: the production outbox dispatcher
//     (workflows/dispatch) with its BeforeMark hook set to SIGKILL the
//     process: it starts the workflows of a batch and dies before marking
//     the outbox rows, which stay undelivered in PostgreSQL.
const (
	internalTemporal        = "temporal"
	internalCrashDispatcher = "crash-dispatcher"
)

// runInternal runs a helper mode; it returns the process exit code.
func runInternal(mode string, args []string) int {
	var err error
	switch mode {
	case internalTemporal:
		if len(args) != 3 {
			err = errors.New("usage: -internal temporal DBPATH NAMESPACE READYFILE")
			break
		}
		err = serveTemporal(args[0], args[1], args[2])
	case internalCrashDispatcher:
		if len(args) != 1 {
			err = errors.New("usage: -internal crash-dispatcher MARKERFILE")
			break
		}
		err = crashDispatcher(args[0])
	default:
		err = fmt.Errorf("unknown internal mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults internal:", err)
		return 1
	}
	return 0
}

// serveTemporal runs the embedded Temporal server until SIGTERM/SIGINT,
// writing its frontend address to readyFile once clients can use it.
func serveTemporal(dbPath, namespace, readyFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ts, err := devserver.Start(startCtx, devserver.Options{
		DBPath:           dbPath,
		Namespace:        namespace,
		SearchAttributes: workflows.SearchAttributes,
		Logger:           log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "temporal: serving on %s\n", ts.HostPort())
	tmp := readyFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(ts.HostPort()), 0o644); err != nil {
		_ = ts.Stop()
		return err
	}
	if err := os.Rename(tmp, readyFile); err != nil {
		_ = ts.Stop()
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "temporal: stopping")
	return ts.Stop()
}

// crashDispatcher runs the outbox dispatcher with DATABASE_URL,
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE from the environment. After it has
// started the workflows of its first non-empty batch, and before it marks the
// rows, it writes markerFile and kills itself with SIGKILL: a crash in the
// window between StartWorkflow and the outbox UPDATE.
func crashDispatcher(markerFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v, err := vault.Parse(os.Getenv("RELIEF_DATA_KEY"))
	if err != nil {
		return err
	}
	store, err := models.Open(ctx, os.Getenv("DATABASE_URL"), 4, v)
	if err != nil {
		return err
	}
	defer store.Close()
	tc, err := client.DialContext(ctx, client.Options{
		HostPort:  os.Getenv("TEMPORAL_ADDRESS"),
		Namespace: os.Getenv("TEMPORAL_NAMESPACE"),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	defer tc.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d := &dispatch.Dispatcher{
		Store:    store,
		Temporal: tc,
		Log:      log,
		Batch:    256,
		Poll:     200 * time.Millisecond,
		BeforeMark: func() {
			_ = os.WriteFile(markerFile, []byte(time.Now().Format(time.RFC3339Nano)), 0o644)
			fmt.Fprintln(os.Stderr, "crash-dispatcher: workflows started, outbox not marked: SIGKILL")
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns
		},
	}
	return d.Run(ctx)
}
