package payout_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/internal/historytest"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// recordFile is where TestRecordHistory writes unless RELIEF_RECORD_FILE
// names another file in testdata/histories. Record a new history whenever
// PayoutBatchWorkflow changes shape, under a new file name, and keep the old
// files: every one must go on replaying (TestReplayCommittedHistories).
//
//	RELIEF_RECORD_HISTORY=1 go test ./workflows/payout -run TestRecordHistory
const recordFile = "payout_v1_completed.json"

// TestReplayCommittedHistories replays every recorded history against today's
// PayoutBatchWorkflow. A failure means a change would break batches already
// running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	historytest.ReplayCommitted(t, payout.WorkflowName, payout.PayoutBatchWorkflow)
}

// skipsHolderCheck is PayoutBatchWorkflow with an incompatible change: it
// goes straight from loading the batch to waiting for approval.
func skipsHolderCheck(ctx workflow.Context, in payout.Input) (payout.Result, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var acts *payout.Activities
	var info payout.BatchInfo
	if err := workflow.ExecuteActivity(ctx, acts.PayoutLoadBatch, in.BatchID).Get(ctx, &info); err != nil {
		return payout.Result{}, err
	}
	var status string
	if err := workflow.ExecuteActivity(ctx, acts.PayoutFinishPrecheck, in.BatchID).Get(ctx, &status); err != nil {
		return payout.Result{}, err
	}
	return payout.Result{}, workflow.Await(ctx, func() bool { return false })
}

// TestReplayDetectsIncompatibleChange proves the replay test can fail.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	historytest.ReplayRejects(t, payout.WorkflowName, skipsHolderCheck, "without the holder check")
}

// TestRecordHistory runs a small batch — one line failing the holder check,
// a refused self-approval, an approval, transfers — through the real workflow
// and activities to completion and writes its history as protojson.
func TestRecordHistory(t *testing.T) {
	historytest.SkipUnlessRecording(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := newHarness(t, banksim.Faults{})
	h.seed(payouttest.Options{Claims: 3, Prefix: "r", Holder: func(i int, b, a string) string {
		if i == 0 {
			return "홍길동"
		}
		return banksim.DefaultHolder(b, a)
	}})
	w := h.worker()
	defer w.Stop()
	created, err := payouttest.CreateBatch(ctx, h.store, h.creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		t.Fatal(err)
	}
	if err := payout.Start(ctx, h.c, created.ID, payout.Tuning{PageSize: 2}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(created.ID, models.BatchAwaitingApproval, time.Minute)
	if _, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: h.creator.ID}); err == nil {
		t.Fatal("self-approval accepted")
	}
	if _, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: h.approver.ID}); err != nil {
		t.Fatal(err)
	}
	h.workflowResult(created.ID, time.Minute)
	historytest.Record(ctx, t, h.c, payout.WorkflowID(created.ID), recordFile)
}
