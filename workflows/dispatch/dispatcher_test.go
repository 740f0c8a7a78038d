package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/claim"
	"github.com/relief/relief/workflows/dispatch"
)

// One Temporal server for the whole binary. Tests run one at a time and stop
// their workers when they end: every test's workers poll the same task queue,
// and a worker must only ever see its own test's database.
var ts *temporaltest.TestServer

func TestMain(m *testing.M) {
	ts = temporaltest.NewServer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := workflows.EnsureSearchAttributes(ctx, ts.GetDefaultClient(), ts.GetDefaultNamespace())
	cancel()
	if err != nil {
		panic(fmt.Sprintf("register search attributes: %v", err))
	}
	pgtest.Main(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is one test's world: a fresh database with the demo program, a merchant,
// a Temporal client that counts workflow starts, and workers on that database.
type env struct {
	t      *testing.T
	store  *models.Store
	client client.Client
	starts *startCounter
	user   *models.User
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	v, err := vault.Parse(vault.NewKeySpec("t1"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, pgtest.NewDB(t), 16, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := store.CreateUser(ctx, models.NewUser{Email: "m@example.kr", Name: "김상인", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if err != nil {
		t.Fatal(err)
	}
	starts := &startCounter{ok: map[string]int{}, already: map[string]int{}}
	c := ts.NewClientWithOptions(client.Options{Interceptors: []interceptor.ClientInterceptor{starts}})
	e := &env{t: t, store: store, client: c, starts: starts, user: u}
	for _, w := range workflows.NewWorkers(c, workflows.Deps{Store: store, Log: quiet}) {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	return e
}

// file files n claims (distinct valid BRNs) through the real intake and
// returns their IDs.
func (e *env) file(n int) []uuid.UUID {
	e.t.Helper()
	var ids []uuid.UUID
	for i := range n {
		in := &models.ClaimInput{Program: models.DemoProgram, BRN: rules.ValidBRNFromSeed(1000 + i).Formatted(), BusinessName: "대전상회",
			Representative: "김대전", Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_500_000,
			Bank: models.BankInput{BankCode: "004", AccountNumber: "123-4567-8901-23", Holder: "김대전"}}
		body, _ := json.Marshal(in)
		status, resp, err := e.store.FileClaim(context.Background(), e.user, fmt.Sprint("key-", i), models.RequestHash("POST", "/api/v1/claims", body), in)
		if err != nil || status != http.StatusAccepted {
			e.t.Fatalf("file claim %d: %d %v", i, status, err)
		}
		var f models.Filed
		if err := json.Unmarshal(resp, &f); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, f.ID)
	}
	// The workflows wait for reviewers forever; end them with the test.
	e.t.Cleanup(func() {
		for _, id := range ids {
			_ = ts.GetDefaultClient().TerminateWorkflow(context.Background(), claim.WorkflowID(id), "", "test over")
		}
	})
	return ids
}

func (e *env) dispatcher() *dispatch.Dispatcher {
	return &dispatch.Dispatcher{Store: e.store, Temporal: e.client, Log: quiet, Poll: 50 * time.Millisecond, Batch: 8}
}

// run runs d until stop is called; a panic inside Run (a crash drill) is
// reported through the returned channel instead of killing the test binary.
func run(d *dispatch.Dispatcher) (stop func(), crashed <-chan any) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	panics := make(chan any, 1)
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				cancel() // the crashed process's listener dies with it
				panics <- p
			}
		}()
		_ = d.Run(ctx)
	}()
	return func() { cancel(); <-done }, panics
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitFor polls cond for up to 30 s.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertDeliveredOnce checks the end state every test wants: each outbox row
// marked dispatched without an error, each workflow started exactly once under
// its deterministic ID with the program search attribute, and each claim in
// review with exactly one verifying and one in_review event.
func (e *env) assertDeliveredOnce(ids []uuid.UUID) {
	e.t.Helper()
	ctx := context.Background()
	e.waitFor("all claims in review", func() bool {
		return e.count(`SELECT count(*) FROM claims WHERE status = $1`, models.StatusInReview) == len(ids)
	})
	if n := e.count(`SELECT count(*) FROM outbox WHERE dispatched_at IS NOT NULL AND last_error = '' AND topic = $1`, models.OutboxClaimFiled); n != len(ids) {
		e.t.Errorf("outbox rows dispatched without error = %d, want %d", n, len(ids))
	}
	for _, id := range ids {
		wid := claim.WorkflowID(id)
		if n := e.starts.started(wid); n != 1 {
			e.t.Errorf("%s started %d times, want exactly once", wid, n)
		}
		d, err := e.client.DescribeWorkflowExecution(ctx, wid, "")
		if err != nil {
			e.t.Errorf("describe %s: %v", wid, err)
			continue
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetType().GetName() != claim.WorkflowName || info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			e.t.Errorf("%s: type %s status %s", wid, info.GetType().GetName(), info.GetStatus())
		}
		var program string
		if p := info.GetSearchAttributes().GetIndexedFields()[claim.SearchProgram.GetName()]; p == nil ||
			converter.GetDefaultDataConverter().FromPayload(p, &program) != nil || program != models.DemoProgram {
			e.t.Errorf("%s: %s = %q, want %s", wid, claim.SearchProgram.GetName(), program, models.DemoProgram)
		}
		for _, status := range []string{models.StatusVerifying, models.StatusInReview} {
			if n := e.count(`SELECT count(*) FROM claim_events WHERE claim_id = $1 AND status = $2`, id, status); n != 1 {
				e.t.Errorf("claim %s has %d %s events, want 1", id, n, status)
			}
		}
	}
}

func TestDispatcherStartsClaimWorkflowsAndMarksOutbox(t *testing.T) {
	e := newEnv(t)
	ids := e.file(20) // more than one batch of 8
	if n := e.count(`SELECT count(*) FROM outbox WHERE dispatched_at IS NULL`); n != len(ids) {
		t.Fatalf("pending outbox rows before dispatch = %d, want %d", n, len(ids))
	}
	stop, _ := run(e.dispatcher())
	defer stop()
	e.assertDeliveredOnce(ids)
	if n := e.count(`SELECT count(*) FROM outbox WHERE attempts <> 1`); n != 0 {
		t.Errorf("%d outbox rows took more than one attempt", n)
	}
	if n := e.starts.alreadyStarted(); n != 0 {
		t.Errorf("%d starts hit an existing workflow on a clean run", n)
	}
}

// With a rate, a backlog drains no faster than that many starts a second
// (after a burst of at most one second's worth), and still exactly once.
func TestDispatchRateBoundsWorkflowStarts(t *testing.T) {
	e := newEnv(t)
	ids := e.file(20)
	d := e.dispatcher()
	d.Rate = 10
	stop, _ := run(d)
	defer stop()
	e.assertDeliveredOnce(ids)
	e.starts.mu.Lock()
	defer e.starts.mu.Unlock()
	if len(e.starts.times) != len(ids) {
		t.Fatalf("%d starts, want %d", len(e.starts.times), len(ids))
	}
	// 10 at once, then 10 more at 10/s: the last starts a second after the first.
	if span := e.starts.times[len(ids)-1].Sub(e.starts.times[0]); span < 900*time.Millisecond {
		t.Fatalf("20 starts at Rate 10 took %v, want at least ~1 s", span)
	}
}

func TestDispatcherWakesOnNotifyForLaterClaims(t *testing.T) {
	e := newEnv(t)
	d := e.dispatcher()
	d.Poll = time.Hour // only NOTIFY can wake it
	stop, _ := run(d)
	defer stop()
	time.Sleep(200 * time.Millisecond) // the first, empty poll and LISTEN
	ids := e.file(3)
	e.assertDeliveredOnce(ids)
}

func TestTwoDispatchersStartEachWorkflowOnce(t *testing.T) {
	e := newEnv(t)
	ids := e.file(30)
	var stops []func()
	for range 2 {
		d := e.dispatcher()
		d.Batch = 4
		stop, _ := run(d)
		stops = append(stops, stop)
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	e.assertDeliveredOnce(ids)
}

// TestCrashBetweenStartAndMarkStartsOnce: the dispatcher starts the workflows
// and dies before marking the outbox rows (a panic, or a cancellation that
// aborts the transaction). The rows stay pending; the next dispatcher delivers
// them again, Temporal answers WorkflowExecutionAlreadyStarted, and that counts
// as delivered: no second run, no error, no retry loop.
func TestCrashBetweenStartAndMarkStartsOnce(t *testing.T) {
	for _, crash := range []string{"panic", "cancel"} {
		t.Run(crash, func(t *testing.T) {
			e := newEnv(t)
			ids := e.file(5)

			d := e.dispatcher()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			crashedAt := make(chan struct{})
			d.BeforeMark = func() {
				once.Do(func() { close(crashedAt) })
				if crash == "panic" {
					panic("dispatcher crashed before marking")
				}
				cancel()
			}
			var crashed <-chan any
			done := make(chan struct{})
			if crash == "panic" {
				var stop func()
				stop, crashed = run(d)
				defer stop()
				close(done)
			} else {
				go func() { defer close(done); _ = d.Run(ctx) }()
			}
			select {
			case <-crashedAt:
			case <-time.After(30 * time.Second):
				t.Fatal("the dispatcher never reached BeforeMark")
			}
			if crash == "panic" {
				select {
				case p := <-crashed:
					t.Logf("dispatcher crashed: %v", p)
				case <-time.After(10 * time.Second):
					t.Fatal("the panic did not end the dispatcher")
				}
			}
			<-done

			// The crash left the started workflows unrecorded.
			if n := e.count(`SELECT count(*) FROM outbox WHERE dispatched_at IS NULL`); n != len(ids) {
				t.Fatalf("pending outbox rows after the crash = %d, want all %d", n, len(ids))
			}
			startedBeforeCrash := 0
			for _, id := range ids {
				if _, err := e.client.DescribeWorkflowExecution(context.Background(), claim.WorkflowID(id), ""); err == nil {
					startedBeforeCrash++
				}
			}
			if startedBeforeCrash == 0 {
				t.Fatal("no workflow was started before the crash: the drill tests nothing")
			}

			// Restart: a fresh dispatcher redelivers everything.
			stop, _ := run(e.dispatcher())
			defer stop()
			e.assertDeliveredOnce(ids)
			if n := e.starts.alreadyStarted(); n != startedBeforeCrash {
				t.Errorf("redelivery met %d existing workflows, want the %d started before the crash", n, startedBeforeCrash)
			}
		})
	}
}

// startCounter is a client interceptor that counts, per workflow ID, starts
// that created a run and starts answered WorkflowExecutionAlreadyStarted.
type startCounter struct {
	interceptor.ClientInterceptorBase
	mu      sync.Mutex
	ok      map[string]int
	already map[string]int
	times   []time.Time // of successful starts
}

func (c *startCounter) InterceptClient(next interceptor.ClientOutboundInterceptor) interceptor.ClientOutboundInterceptor {
	return &countingOutbound{ClientOutboundInterceptorBase: interceptor.ClientOutboundInterceptorBase{Next: next}, c: c}
}

func (c *startCounter) started(workflowID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok[workflowID]
}

func (c *startCounter) alreadyStarted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.already {
		n += v
	}
	return n
}

type countingOutbound struct {
	interceptor.ClientOutboundInterceptorBase
	c *startCounter
}

func (o *countingOutbound) ExecuteWorkflow(ctx context.Context, in *interceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	run, err := o.Next.ExecuteWorkflow(ctx, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	switch {
	case err == nil:
		o.c.ok[in.Options.ID]++
		o.c.times = append(o.c.times, time.Now())
	case errors.As(err, &already):
		o.c.already[in.Options.ID]++
	}
	return run, err
}
