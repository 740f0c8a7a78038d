package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/claim"
)

// drillDispatcherCrash: the outbox dispatcher dies between starting a
// batch's workflows and marking its outbox rows. relief serve (which runs the
// dispatcher) is stopped, claims are filed through the intake code
// (models.FileClaim: claim and outbox row in one transaction), and a
// dispatcher built from workflows/dispatch with its BeforeMark hook set to
// SIGKILL its own process takes them. Afterwards the workflows exist and the
// rows are unmarked. relief serve is started again: its dispatcher must
// deliver every row again, find each workflow already started (deterministic
// id), and mark each row exactly once, leaving exactly one run per claim.
func drillDispatcherCrash(ctx context.Context, e *env, o *options, r *result) {
	k := o.crashClaims
	e.serve.stop(30 * time.Second)
	r.detail("relief serve stopped (SIGTERM) so that no other dispatcher runs")

	reqs := make([]*request, k)
	ids := make([]uuid.UUID, k)
	for i := range k {
		seed := 4_000_000 + i
		in := claimInput(seed)
		u := e.merchUser[i%len(e.merchUser)]
		key := newKey()
		raw, _ := json.Marshal(in)
		st, body, err := e.store.FileClaim(ctx, u, key, models.RequestHash("POST", "/api/v1/claims", raw), &in)
		if err != nil || st != 202 {
			r.fail("file claim %d: %d %v", i, st, err)
			return
		}
		var rc receipt
		if err := json.Unmarshal(body, &rc); err != nil {
			r.fail("file claim %d: %v", i, err)
			return
		}
		ids[i] = rc.ID
		reqs[i] = &request{seed: seed, brn: rules.ValidBRNFromSeed(seed).String(), key: key, acked: true, id: rc.ID}
	}
	pending := e.countPending(ctx, ids)
	r.detail("filed %d claims; %d outbox rows pending", k, pending)

	marker := filepath.Join(e.dir, "dispatcher-crashed")
	_ = os.Remove(marker)
	crash := &proc{name: "crash-dispatcher", path: e.self, args: []string{"-internal", internalCrashDispatcher, marker},
		env: e.reliefEnv(), logPath: filepath.Join(e.dir, "crash-dispatcher.log")}
	if err := crash.start(); err != nil {
		r.fail("start the crashing dispatcher: %v", err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	err := crash.waitExit(wctx)
	cancel()
	if err != nil {
		crash.kill9()
		r.fail("the crashing dispatcher did not crash within 90s (see %s)", crash.logPath)
		return
	}
	_, markerErr := os.Stat(marker)
	var exitErr *exec.ExitError
	killed := errors.As(crash.exitError(), &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signaled() &&
		exitErr.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
	if markerErr != nil || !killed {
		r.fail("the dispatcher did not die in the window (marker: %v, exit: %v; see %s)", markerErr, crash.exitError(), crash.logPath)
		return
	}
	pendingAfterCrash := e.countPending(ctx, ids)
	startedRuns := map[uuid.UUID]string{}
	for _, id := range ids {
		d, err := e.tc.DescribeWorkflowExecution(ctx, claim.WorkflowID(id), "")
		if err == nil {
			startedRuns[id] = d.WorkflowExecutionInfo.Execution.RunId
		}
	}
	r.detail("dispatcher SIGKILLed itself after starting workflows: %d/%d workflows exist, %d/%d outbox rows still unmarked",
		len(startedRuns), k, pendingAfterCrash, k)
	if len(startedRuns) == 0 || pendingAfterCrash != k {
		r.fail("crash not in the window: %d workflows started, %d rows unmarked (want >0 and %d)", len(startedRuns), pendingAfterCrash, k)
	}

	t0 := time.Now()
	if err := e.startServe(ctx); err != nil {
		r.fail("restart serve: %v", err)
		return
	}
	c, err := e.checkClaims(ctx, reqs, o.settle)
	if err != nil {
		r.fail("check claims: %v", err)
		return
	}
	r.detail("%.1fs after relief serve restarted: %s", time.Since(t0).Seconds(), c)
	if !c.ok() {
		r.fail("claims: %s", c)
	}

	// Each row marked once; each claim exactly one run, the one started before the crash.
	var markedOnce, attemptsTotal int
	if err := e.store.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE dispatched_at IS NOT NULL AND attempts = 1), coalesce(sum(attempts), 0)
		FROM outbox WHERE topic = $1 AND aggregate_id = ANY($2)`, models.OutboxClaimFiled, ids).Scan(&markedOnce, &attemptsTotal); err != nil {
		r.fail("outbox query: %v", err)
		return
	}
	oneRun, sameRun, listErrs := 0, 0, 0
	var firstListErr error
	for _, id := range ids {
		runs, err := e.workflowRuns(ctx, claim.WorkflowID(id))
		if err != nil {
			listErrs++
			if firstListErr == nil {
				firstListErr = err
			}
			continue
		}
		if runs == 1 {
			oneRun++
		}
		if before, ok := startedRuns[id]; ok {
			if d, err := e.tc.DescribeWorkflowExecution(ctx, claim.WorkflowID(id), ""); err == nil && d.WorkflowExecutionInfo.Execution.RunId == before {
				sameRun++
			}
		}
	}
	r.detail("outbox: %d/%d rows marked with exactly one recorded delivery (attempts total %d); workflows: %d/%d with exactly one run, %d/%d kept the run started before the crash",
		markedOnce, k, attemptsTotal, oneRun, k, sameRun, len(startedRuns))
	if listErrs > 0 {
		r.fail("list workflow runs: %d errors, first: %v", listErrs, firstListErr)
	}
	if markedOnce != k || oneRun != k || sameRun != len(startedRuns) {
		r.fail("want every row marked once (%d/%d) and one run per claim (%d/%d, %d/%d unchanged)", markedOnce, k, oneRun, k, sameRun, len(startedRuns))
	}
	r.counts = fmt.Sprintf("claims=%d started_before_crash=%d unmarked_after_crash=%d marked_once=%d/%d one_run=%d/%d",
		k, len(startedRuns), pendingAfterCrash, markedOnce, k, oneRun, k)
}

// countPending counts the undelivered outbox rows of the claims.
func (e *env) countPending(ctx context.Context, ids []uuid.UUID) int {
	var n int
	_ = e.store.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = $1 AND aggregate_id = ANY($2) AND dispatched_at IS NULL`,
		models.OutboxClaimFiled, ids).Scan(&n)
	return n
}
