// Command payout pays N payouts end to end through the sandbox bank and
// reports the throughput and the sandbox's duplicate debits (which must be 0).
//
// It seeds N claims, each owed one entitlement on a balanced ledger, straight
// into PostgreSQL with COPY; then, exactly as in production, a finance user
// creates a batch (one SQL transaction), PayoutBatchWorkflow checks every
// holder at the bank, a second finance user approves it (a Temporal Update)
// and the workflow pays every line with bank.TransferOnce, settles it in the
// ledger and closes its claim. Everything runs in this process on loopback:
// a private PostgreSQL cluster (or -db), the embedded Temporal server `relief
// dev` uses (SQLite, or -temporal lite for the in-memory test server), the
// sandbox bank (its own SQLite books) and the worker.
//
//	go run ./bench/payout [-n 10000] [-page 200] [-parallel 8] [-concurrency 8] [-lose 0.05]
//
// It exits 1 when a payout was debited twice, a line is not final, or the
// books do not balance.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/devserver"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/bank"
	"github.com/relief/relief/workflows/payout/payouttest"
)

func main() {
	n := flag.Int("n", 10_000, "payouts (claims, one line each)")
	dbURL := flag.String("db", "", "PostgreSQL URL of an empty database (default: a private cluster in a temporary directory)")
	temporalMode := flag.String("temporal", "dev", `"dev": the embedded server relief dev runs (SQLite file); "lite": the in-memory test server`)
	page := flag.Int("page", 200, "lines per page activity")
	parallel := flag.Int("parallel", 8, "page activities at once")
	concurrency := flag.Int("concurrency", 8, "bank calls at once per page")
	lose := flag.Float64("lose", 0, "sandbox fault: probability a transfer's response is lost after commit")
	latency := flag.Int("latency", 0, "sandbox fault: milliseconds added to every bank call")
	conns := flag.Int("conns", 80, "PostgreSQL pool size")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after")
	nosync := flag.Bool("nosync", false, "private cluster without fsync (diagnostics only: shows what commit latency costs)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, config{n: *n, db: *dbURL, temporal: *temporalMode, tuning: payout.Tuning{PageSize: *page, Parallel: *parallel,
		Concurrency: *concurrency}, lose: *lose, latency: *latency, conns: int32(*conns), nosync: *nosync}); err != nil {
		fmt.Fprintln(os.Stderr, "bench/payout:", err)
		os.Exit(1)
	}
}

type config struct {
	n            int
	db, temporal string
	tuning       payout.Tuning
	lose         float64
	latency      int
	conns        int32
	nosync       bool
}

func run(ctx context.Context, cfg config) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, err := os.MkdirTemp("", "relief-bench-payout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("bench/payout: %d payouts, %d CPUs, page %d × parallel %d × concurrency %d, lost responses %.0f%%, latency %d ms\n",
		cfg.n, runtime.NumCPU(), cfg.tuning.PageSize, cfg.tuning.Parallel, cfg.tuning.Concurrency, cfg.lose*100, cfg.latency)

	// PostgreSQL.
	if cfg.db == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), NoSync: cfg.nosync})
		if err != nil {
			return err
		}
		defer cluster.Stop(context.Background())
		if err := cluster.CreateDatabase(ctx, "relief", ""); err != nil {
			return err
		}
		cfg.db = cluster.URL("relief")
		fmt.Printf("  database: %s\n", cfg.db)
	}
	if err := models.Migrate(ctx, cfg.db); err != nil {
		return err
	}
	v, err := vault.Parse(vault.NewKeySpec("bench"))
	if err != nil {
		return err
	}
	store, err := models.Open(ctx, cfg.db, cfg.conns, v)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Seed(ctx); err != nil {
		return err
	}

	// The sandbox bank.
	sim, err := banksim.NewServer(banksim.Config{DataPath: filepath.Join(dir, "bank.db"), Logger: quiet,
		Faults: banksim.Faults{Seed: 1, LoseAfterCommitRate: cfg.lose, LatencyMS: cfg.latency}})
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() { defer close(simDone); _ = sim.Serve(simCtx, ln) }()
	defer func() { stopSim(); <-simDone }()
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	bankClient := bank.NewHTTPClient("http://"+ln.Addr().String(), &http.Client{Timeout: 10 * time.Second, Transport: transport})

	// Temporal and the worker.
	var tc client.Client
	switch cfg.temporal {
	case "dev":
		ts, err := devserver.Start(ctx, devserver.Options{DBPath: filepath.Join(dir, "temporal.db"), SearchAttributes: workflows.SearchAttributes, Logger: quiet})
		if err != nil {
			return err
		}
		defer ts.Stop()
		if tc, err = client.Dial(client.Options{HostPort: ts.HostPort(), Logger: quietSDK{}}); err != nil {
			return err
		}
	case "lite":
		ts := temporaltest.NewServer(temporaltest.WithBaseClientOptions(client.Options{Logger: quietSDK{}}))
		defer ts.Stop()
		tc = ts.GetDefaultClient()
		if err := workflows.EnsureSearchAttributes(ctx, tc, ts.GetDefaultNamespace()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-temporal: %q is neither dev nor lite", cfg.temporal)
	}
	defer tc.Close()
	for _, w := range workflows.NewWorkers(tc, workflows.Deps{Store: store, Bank: bankClient, Log: quiet}) {
		if err := w.Start(); err != nil {
			return err
		}
		defer w.Stop()
	}

	// Seed.
	t0 := time.Now()
	seeded, err := payouttest.Seed(ctx, store, payouttest.Options{Claims: cfg.n, Prefix: "bench",
		Holder: func(_ int, b, a string) string { return banksim.DefaultHolder(b, a) }})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	creator, approver, err := payouttest.FinanceUsers(ctx, store, "bench", "KPOST", "bench-password-1")
	if err != nil {
		return err
	}
	seedTook := time.Since(t0)
	fmt.Printf("  seed (COPY)          %6d claims + entitlements      %8.2fs  total owed %s won\n", cfg.n, seedTook.Seconds(), won(seeded.Total))

	// Create, check, approve, pay.
	t1 := time.Now()
	created, err := payouttest.CreateBatch(ctx, store, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		return err
	}
	createTook := time.Since(t1)
	fmt.Printf("  create batch (SQL)   %6d lines                      %8.2fs\n", created.Lines, createTook.Seconds())
	if err := payout.Start(ctx, tc, created.ID, cfg.tuning); err != nil {
		return err
	}
	if err := waitStatus(ctx, store, created, models.BatchAwaitingApproval); err != nil {
		return err
	}
	checkTook := time.Since(t1) - createTook
	fmt.Printf("  holder check (bank)  %6d inquiries                  %8.2fs  %8.0f /s\n", created.Lines, checkTook.Seconds(), float64(created.Lines)/checkTook.Seconds())

	t2 := time.Now()
	if _, err := payout.Approve(ctx, tc, created.ID, payout.ApproveRequest{ApproverID: approver.ID}); err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	var res payout.Result
	if err := tc.GetWorkflow(ctx, payout.WorkflowID(created.ID), "").Get(ctx, &res); err != nil {
		return err
	}
	payTook := time.Since(t2)
	total := time.Since(t1)
	fmt.Printf("  approve → all paid   %6d payouts                    %8.2fs  %8.0f payouts/s\n", res.Paid, payTook.Seconds(), float64(res.Paid)/payTook.Seconds())
	fmt.Printf("  end to end (create → completed)                     %8.2fs  %8.0f payouts/s\n", total.Seconds(), float64(res.Paid)/total.Seconds())

	// Verify.
	stats, err := sim.Stats(ctx)
	if err != nil {
		return err
	}
	sum, err := store.LedgerSummary(ctx, models.DemoProgram)
	if err != nil {
		return err
	}
	b, err := store.PayoutBatchByID(ctx, created.ID)
	if err != nil {
		return err
	}
	recon, err := store.PayoutReconciliation(ctx, b)
	if err != nil {
		return err
	}
	fmt.Printf("  sandbox: %d transfers, %d debits (%s won), duplicate debits %d, lost responses injected %d\n",
		stats.Transfers, stats.Debits, won(stats.DebitedAmount), stats.DuplicateDebits, stats.InjectedLostReplies)
	fmt.Printf("  ledger: sum of all lines %d, paid %s won; reconciliation balanced: %v\n", sum.Total, won(sum.Balances["clearing"]), recon.Balanced)
	var errs []error
	if stats.DuplicateDebits != 0 {
		errs = append(errs, fmt.Errorf("%d duplicate debits", stats.DuplicateDebits))
	}
	if res.Paid != cfg.n || stats.Debits != int64(cfg.n) || stats.DebitedAmount != seeded.Total {
		errs = append(errs, fmt.Errorf("paid %d, debited %d (%d won), want %d (%d won)", res.Paid, stats.Debits, stats.DebitedAmount, cfg.n, seeded.Total))
	}
	if sum.Total != 0 || !recon.Balanced || sum.Balances["clearing"] != seeded.Total {
		errs = append(errs, errors.New("the books do not balance"))
	}
	return errors.Join(errs...)
}

func waitStatus(ctx context.Context, s *models.Store, c *models.PayoutBatchCreated, status string) error {
	for {
		b, err := s.PayoutBatchByID(ctx, c.ID)
		if err != nil {
			return err
		}
		if b.Status == status {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", status, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func won(n int64) string { return rules.FormatNumber(n) }

// quietSDK drops the Temporal SDK's logging (activity retries under injected
// faults are expected and would drown the figures).
type quietSDK struct{}

func (quietSDK) Debug(string, ...interface{}) {}
func (quietSDK) Info(string, ...interface{})  {}
func (quietSDK) Warn(string, ...interface{})  {}
func (quietSDK) Error(string, ...interface{}) {}
