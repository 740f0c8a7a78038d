package payout_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// envRecord turns on TestRecordHistory. Record a new history whenever
// PayoutBatchWorkflow changes shape, under a new file name, and keep the old
// files: every one must go on replaying (TestReplayCommittedHistories).
//
//	RELIEF_RECORD_HISTORY=1 go test ./workflows/payout -run TestRecordHistory
const envRecord = "RELIEF_RECORD_HISTORY"

const recordFile = "payout_v1_completed.json"

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories in testdata/histories: record one (see TestRecordHistory)")
	}
	return files
}

// TestReplayCommittedHistories replays every recorded history against today's
// PayoutBatchWorkflow. A failure means a change would break batches already
// running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(payout.PayoutBatchWorkflow, workflow.RegisterOptions{Name: payout.WorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("%s does not replay: %v", file, err)
			}
		})
	}
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
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, file := range historyFiles(t) {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(skipsHolderCheck, workflow.RegisterOptions{Name: payout.WorkflowName})
		if err := r.ReplayWorkflowHistoryFromJSONFile(quiet, file); err == nil {
			t.Fatalf("%s replayed against a workflow without the holder check", file)
		}
	}
}

// TestRecordHistory runs a small batch — one line failing the holder check,
// a refused self-approval, an approval, transfers — through the real workflow
// and activities to completion and writes its history as protojson.
func TestRecordHistory(t *testing.T) {
	if os.Getenv(envRecord) != "1" {
		t.Skip("records a history only with " + envRecord + "=1")
	}
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
	hist, err := fetchHistory(ctx, h.c, payout.WorkflowID(created.ID))
	if err != nil {
		t.Fatal(err)
	}
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	name := recordFile
	if n := os.Getenv("RELIEF_RECORD_FILE"); n != "" {
		name = filepath.Base(n)
	}
	path := filepath.Join("testdata", "histories", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d events", path, len(hist.Events))
}

func fetchHistory(ctx context.Context, c client.Client, workflowID string) (*historypb.History, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
}
