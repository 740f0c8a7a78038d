package payout_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/payout"
)

func TestTaskQueueIsTheProgramsQueue(t *testing.T) {
	if payout.TaskQueue != workflows.ProgramsTaskQueue {
		t.Fatalf("payout.TaskQueue %q, programs worker listens on %q", payout.TaskQueue, workflows.ProgramsTaskQueue)
	}
}

type env struct {
	*testsuite.TestWorkflowEnvironment
	acts *payout.Activities
}

func newEnv(t *testing.T) *env {
	var s testsuite.WorkflowTestSuite
	e := &env{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), acts: &payout.Activities{}}
	e.RegisterWorkflowWithOptions(payout.PayoutBatchWorkflow, workflow.RegisterOptions{Name: payout.WorkflowName})
	e.RegisterActivity(e.acts)
	return e
}

// update sends the approve Update and reports how it ended: "" when it
// completed, else the rejection's or the failure's error type.
func (e *env) approve(t *testing.T, delay time.Duration, approver uuid.UUID, outcome *string) {
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(payout.UpdateApprove, uuid.NewString(), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { *outcome = "rejected:" + errType(err) },
			OnComplete: func(_ interface{}, err error) {
				if err != nil {
					*outcome = "failed:" + errType(err)
					return
				}
				*outcome = "completed"
			},
		}, payout.ApproveRequest{ApproverID: approver})
	}, delay)
}

func errType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return err.Error()
}

// The validator refuses the creator and a second approval; the approval then
// pays the lines in pages of the sequence, at most Parallel at once.
func TestApprovalValidatorAndPagedTransfers(t *testing.T) {
	e := newEnv(t)
	batch, creator, approver, other := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	e.OnActivity(e.acts.PayoutLoadBatch, mock.Anything, batch).Return(payout.BatchInfo{
		Status: models.BatchAwaitingApproval, Channel: models.ChannelAPI, LineCount: 450, CreatedBy: creator}, nil)
	e.OnActivity(e.acts.PayoutApproveBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in payout.ApproveInput) (payout.ApproveResult, error) {
			if in.ApproverID != approver {
				t.Errorf("approved by %v", in.ApproverID)
			}
			return payout.ApproveResult{Status: models.BatchTransferring, ApprovedCount: 450, ApprovedTotal: 4_500_000}, nil
		})
	var mu sync.Mutex
	var pages [][2]int
	e.OnActivity(e.acts.PayoutTransferPage, mock.Anything, mock.Anything).After(10 * time.Second).Return(
		func(_ context.Context, in payout.PageInput) (payout.PageResult, error) {
			mu.Lock()
			pages = append(pages, [2]int{in.From, in.To})
			mu.Unlock()
			return payout.PageResult{Paid: min(in.To, 450) - in.From + 1}, nil
		})
	e.OnActivity(e.acts.PayoutFinishBatch, mock.Anything, batch).Return(payout.Result{Status: models.BatchCompleted, Paid: 450}, nil)

	var bySelf, byApprover, again string
	e.approve(t, time.Second, creator, &bySelf)
	e.approve(t, 2*time.Second, approver, &byApprover)
	e.approve(t, 3*time.Second, other, &again)
	e.ExecuteWorkflow(payout.WorkflowName, payout.Input{BatchID: batch, Tuning: payout.Tuning{PageSize: 200, Parallel: 2}})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if bySelf != "rejected:"+payout.ErrTypeSegregation || byApprover != "completed" || again != "rejected:"+payout.ErrTypeAlreadyApproved {
		t.Fatalf("approvals: self %q, approver %q, again %q", bySelf, byApprover, again)
	}
	// Two pages run at once, so they may finish in either order.
	slices.SortFunc(pages, func(a, b [2]int) int { return a[0] - b[0] })
	if len(pages) != 3 || pages[0] != [2]int{1, 200} || pages[1] != [2]int{201, 400} || pages[2] != [2]int{401, 600} {
		t.Fatalf("pages %v", pages)
	}
	var res payout.Result
	if err := e.GetWorkflowResult(&res); err != nil || res.Paid != 450 {
		t.Fatalf("result %+v %v", res, err)
	}
}

// While the holder check runs, approval is refused; afterwards it works. A
// batch whose every line failed the check completes without approval.
func TestApprovalWaitsForTheHolderCheck(t *testing.T) {
	e := newEnv(t)
	batch, creator, approver := uuid.New(), uuid.New(), uuid.New()
	e.OnActivity(e.acts.PayoutLoadBatch, mock.Anything, batch).Return(payout.BatchInfo{
		Status: models.BatchChecking, Channel: models.ChannelAPI, LineCount: 3, CreatedBy: creator}, nil)
	e.OnActivity(e.acts.PayoutPrecheckPage, mock.Anything, mock.Anything).After(5*time.Second).Return(payout.PageResult{Checked: 3}, nil)
	e.OnActivity(e.acts.PayoutFinishPrecheck, mock.Anything, batch).Return(models.BatchAwaitingApproval, nil)
	e.OnActivity(e.acts.PayoutApproveBatch, mock.Anything, mock.Anything).Return(payout.ApproveResult{Status: models.BatchTransferring}, nil)
	e.OnActivity(e.acts.PayoutTransferPage, mock.Anything, mock.Anything).Return(payout.PageResult{Paid: 3}, nil)
	e.OnActivity(e.acts.PayoutFinishBatch, mock.Anything, batch).Return(payout.Result{Status: models.BatchCompleted, Paid: 3}, nil)
	var early, later string
	e.approve(t, time.Second, approver, &early)
	e.approve(t, time.Minute, approver, &later)
	e.ExecuteWorkflow(payout.WorkflowName, payout.Input{BatchID: batch})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if early != "rejected:"+payout.ErrTypePrecheckRunning || later != "completed" {
		t.Fatalf("early %q, later %q", early, later)
	}
}

// A file-channel batch waits for the imported results: signalled, it looks
// again and finishes once nothing is outstanding.
func TestFileChannelWaitsForResults(t *testing.T) {
	e := newEnv(t)
	batch := uuid.New()
	e.OnActivity(e.acts.PayoutLoadBatch, mock.Anything, batch).Return(payout.BatchInfo{
		Status: models.BatchTransferring, Channel: models.ChannelFile, LineCount: 2, CreatedBy: uuid.New(), ApprovedBy: ptr(uuid.New())}, nil)
	e.OnActivity(e.acts.PayoutMarkSent, mock.Anything, batch).Return(nil)
	imported := false
	e.OnActivity(e.acts.PayoutOutstanding, mock.Anything, batch).Return(func(_ context.Context, _ uuid.UUID) (int, error) {
		if imported {
			return 0, nil
		}
		return 2, nil
	})
	e.OnActivity(e.acts.PayoutFinishBatch, mock.Anything, batch).Return(payout.Result{Status: models.BatchCompleted, Paid: 2}, nil)
	e.RegisterDelayedCallback(func() {
		imported = true
		e.SignalWorkflow(payout.SignalResults, nil)
	}, time.Hour)
	e.ExecuteWorkflow(payout.WorkflowName, payout.Input{BatchID: batch, Tuning: payout.Tuning{ResultPoll: 24 * time.Hour}})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !e.IsWorkflowCompleted() {
		t.Fatal("not completed")
	}
}

func ptr[T any](v T) *T { return &v }
