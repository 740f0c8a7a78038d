package payout_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/bank"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// TestMain starts the private PostgreSQL cluster the integration tests share.
func TestMain(m *testing.M) { pgtest.Main(m) }

const password = "correct horse battery"

// harness is the real thing on loopback: PostgreSQL (pgtest), the sandbox
// bank (banksim over HTTP, its own SQLite books), a Temporal server
// (temporaltest) and workers started and stopped by the test.
type harness struct {
	t                 *testing.T
	store             *models.Store
	sim               *banksim.Server
	bankURL           string
	bank              bank.Bank
	ts                *temporaltest.TestServer
	c                 client.Client
	creator, approver *models.User
	log               *slog.Logger
}

func newHarness(t *testing.T, faults banksim.Faults) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: PostgreSQL, Temporal and the sandbox bank")
	}
	ctx := context.Background()
	h := &harness{t: t, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	v, err := vault.Parse(vault.NewKeySpec("t1"))
	if err != nil {
		t.Fatal(err)
	}
	h.store, err = models.Open(ctx, pgtest.NewDB(t), 32, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.store.Close)
	if err := h.store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if h.creator, h.approver, err = payouttest.FinanceUsers(ctx, h.store, "h", "KPOST", password); err != nil {
		t.Fatal(err)
	}

	h.sim, err = banksim.NewServer(banksim.Config{DataPath: filepath.Join(t.TempDir(), "bank.db"), Faults: faults, Logger: h.log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = h.sim.Serve(simCtx, ln) }()
	t.Cleanup(func() { stopSim(); <-done; h.sim.Close() })
	h.bankURL = "http://" + ln.Addr().String()
	h.bank = bank.NewHTTPClient(h.bankURL, &http.Client{Timeout: 2 * time.Second})

	h.ts = temporaltest.NewServer(temporaltest.WithT(t))
	h.c = h.ts.GetDefaultClient()
	return h
}

// worker starts a worker with the payout workflow and activities, as
// workflows.NewWorkers registers them on the programs queue.
func (h *harness) worker() worker.Worker {
	h.t.Helper()
	w := worker.New(h.c, workflows.ProgramsTaskQueue, worker.Options{})
	payout.Register(w, &payout.Activities{Store: h.store, Bank: h.bank, Log: h.log})
	if err := w.Start(); err != nil {
		h.t.Fatal(err)
	}
	return w
}

func (h *harness) seed(o payouttest.Options) *payouttest.Seeded {
	h.t.Helper()
	s, err := payouttest.Seed(context.Background(), h.store, o)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) batch(id uuid.UUID) *models.PayoutBatch {
	h.t.Helper()
	b, err := h.store.PayoutBatchByID(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// waitFor polls until cond holds or the timeout ends the test.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) waitStatus(id uuid.UUID, status string, timeout time.Duration) *models.PayoutBatch {
	h.t.Helper()
	var b *models.PayoutBatch
	h.waitFor("batch "+status, timeout, func() bool { b = h.batch(id); return b.Status == status })
	return b
}

// workflowResult waits for the batch's workflow to finish.
func (h *harness) workflowResult(id uuid.UUID, timeout time.Duration) payout.Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res payout.Result
	if err := h.c.GetWorkflow(ctx, payout.WorkflowID(id), "").Get(ctx, &res); err != nil {
		h.t.Fatalf("workflow: %v", err)
	}
	return res
}

func (h *harness) count(sql string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.store.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
