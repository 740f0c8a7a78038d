package feewaiver_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/workflows/feewaiver"
)

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories in testdata/histories: record one (see record_test.go)")
	}
	return files
}

// TestReplayCommittedHistories replays every recorded history against today's
// FeeWaiverWorkflow. A failure means a change is not compatible with the
// workflows already waiting on their timers: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(feewaiver.FeeWaiverWorkflow, workflow.RegisterOptions{Name: feewaiver.WorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("%s does not replay: %v", file, err)
			}
		})
	}
}

// noLag is FeeWaiverWorkflow with an incompatible change: it ignores the
// settlement lag, so its timer differs from the recorded one.
func noLag(ctx workflow.Context, in feewaiver.Input) error {
	in.SettlementLag = 0
	in.TimerDone = true
	return feewaiver.FeeWaiverWorkflow(ctx, in)
}

// TestReplayDetectsIncompatibleChange proves the replay test can fail.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, file := range historyFiles(t) {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(noLag, workflow.RegisterOptions{Name: feewaiver.WorkflowName})
		if err := r.ReplayWorkflowHistoryFromJSONFile(quiet, file); err == nil {
			t.Fatalf("%s replayed against a workflow that skips the automatic run", file)
		}
	}
}
