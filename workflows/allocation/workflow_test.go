package allocation_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/allocation"
)

func newEnv() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	return suite.NewTestWorkflowEnvironment()
}

func TestTaskQueueIsTheProgramsQueue(t *testing.T) {
	if allocation.TaskQueue != workflows.ProgramsTaskQueue {
		t.Fatalf("allocation.TaskQueue %q, workflows.ProgramsTaskQueue %q", allocation.TaskQueue, workflows.ProgramsTaskQueue)
	}
}

// updateOutcome records what happened to one update.
type updateOutcome struct {
	rejected, failed error
	accepted         bool
	result           any
}

func (o *updateOutcome) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() { o.accepted = true },
		OnReject:   func(err error) { o.rejected = err },
		OnComplete: func(v any, err error) { o.result, o.failed = v, err },
	}
}

func errType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func decode[T any](t *testing.T, v any) T {
	t.Helper()
	var out T
	switch x := v.(type) {
	case T:
		return x
	case converter.EncodedValue:
		if err := x.Get(&out); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unexpected update result %T", v)
	}
	return out
}

// TestAllocationUpdatesAndNotification drives the workflow through its
// updates with the SDK test environment: the validator refuses approving
// before a preview, the creator approving, and approving twice, without
// running any activity; the approval writes the orders once; the claims are
// told in pages and the workflow ends.
func TestAllocationUpdatesAndNotification(t *testing.T) {
	env := newEnv()
	var acts *allocation.Activities
	env.RegisterActivity(acts)
	creator, approver := uuid.New(), uuid.New()
	tranche := uuid.New()
	in := allocation.Input{TrancheID: tranche, Program: models.DemoProgram, CreatedBy: creator}

	env.OnActivity(acts.AllocationSweep, mock.Anything, mock.Anything).Return(models.SweepPage{Done: true}, nil).Once()
	env.OnActivity(acts.AllocationPreview, mock.Anything, allocation.PreviewInput{TrancheID: tranche, By: creator}).
		Return(models.PreviewSummary{TrancheID: tranche, Version: 1, TotalAllocated: 900, Unallocated: 100}, nil).Once()
	env.OnActivity(acts.AllocationApprove, mock.Anything, allocation.ApproveInput{TrancheID: tranche, ApproverID: approver, PreviewVersion: 1}).
		Return(models.ApproveResult{PurchaseOrders: 3, Total: 900}, nil).Once()
	env.OnActivity(acts.AllocationNotify, mock.Anything, allocation.NotifyInput{TrancheID: tranche, Limit: allocation.NotifyPageSize}).
		Return(models.NotifyPage{Notified: 2}, nil).Once()
	env.OnActivity(acts.AllocationNotify, mock.Anything, allocation.NotifyInput{TrancheID: tranche, Limit: allocation.NotifyPageSize}).
		Return(models.NotifyPage{Notified: 1, Done: true}, nil).Once()

	var early, preview, own, approve, twice updateOutcome
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(allocation.UpdateApprove, "early", early.callbacks(), allocation.ApproveRequest{ApproverID: approver})
		env.UpdateWorkflow(allocation.UpdatePreview, "preview", preview.callbacks(), allocation.PreviewRequest{By: creator})
	}, 0)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(allocation.UpdateApprove, "own", own.callbacks(), allocation.ApproveRequest{ApproverID: creator, PreviewVersion: 1})
		env.UpdateWorkflow(allocation.UpdateApprove, "approve", approve.callbacks(), allocation.ApproveRequest{ApproverID: approver, PreviewVersion: 1})
		// a second approver at the same moment: it passes the validator (the
		// first is still running) and is refused once it holds the lock
		env.UpdateWorkflow(allocation.UpdateApprove, "twice", twice.callbacks(), allocation.ApproveRequest{ApproverID: uuid.New()})
	}, time.Minute)
	env.ExecuteWorkflow(allocation.AllocationWorkflow, in)

	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if errType(early.rejected) != "preview_required" {
		t.Fatalf("approve before preview: %v", early.rejected)
	}
	if preview.failed != nil || decode[models.PreviewSummary](t, preview.result).Version != 1 {
		t.Fatalf("preview: %v %v", preview.result, preview.failed)
	}
	if errType(own.rejected) != "segregation_of_duties" || own.accepted {
		t.Fatalf("creator approving: accepted %v, %v", own.accepted, own.rejected)
	}
	if res := decode[models.ApproveResult](t, approve.result); approve.failed != nil || res.PurchaseOrders != 3 {
		t.Fatalf("approve: %+v %v", res, approve.failed)
	}
	if errType(twice.failed) != "tranche_already_approved" {
		t.Fatalf("approving twice: %v %v", twice.rejected, twice.failed)
	}
	env.AssertExpectations(t)
}

// TestApprovalRefusedByTheDatabaseIsTheUpdatesError: a refusal from the
// activity (here the draft went stale) fails the update with the domain code
// and leaves the workflow waiting for a new preview and approval.
func TestApprovalRefusedByTheDatabaseIsTheUpdatesError(t *testing.T) {
	env := newEnv()
	var acts *allocation.Activities
	env.RegisterActivity(acts)
	tranche, approver := uuid.New(), uuid.New()
	env.OnActivity(acts.AllocationSweep, mock.Anything, mock.Anything).Return(models.SweepPage{Done: true}, nil)
	env.OnActivity(acts.AllocationApprove, mock.Anything, mock.Anything).
		Return(models.ApproveResult{}, allocation.ActivityError(models.Coded(models.ECONFLICT, "preview_stale", "preview again"))).Once()
	var approve updateOutcome
	var state allocation.State
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(allocation.UpdateApprove, "a", approve.callbacks(), allocation.ApproveRequest{ApproverID: approver})
	}, 0)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(allocation.QueryState)
		if err != nil {
			t.Error(err)
		} else if err := v.Get(&state); err != nil {
			t.Error(err)
		}
		env.CancelWorkflow()
	}, time.Minute)
	env.ExecuteWorkflow(allocation.AllocationWorkflow, allocation.Input{TrancheID: tranche, Program: models.DemoProgram, CreatedBy: uuid.New(),
		Status: models.TranchePreviewed, PreviewVersion: 4})
	if !approve.accepted || errType(approve.failed) != "preview_stale" {
		t.Fatalf("approve: accepted %v, %v", approve.accepted, approve.failed)
	}
	e, ok := allocation.DomainError(approve.failed).(*models.Error)
	if !ok || e.Kind != models.ECONFLICT || e.Code != "preview_stale" {
		t.Fatalf("domain error %#v", allocation.DomainError(approve.failed))
	}
	if state.Status != models.TranchePreviewed || state.PreviewVersion != 4 {
		t.Fatalf("state after a refused approval: %+v", state)
	}
}
