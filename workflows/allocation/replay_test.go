package allocation_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/workflows/allocation"
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
// AllocationWorkflow. A failure means a change is not compatible with
// tranches already running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(allocation.AllocationWorkflow, workflow.RegisterOptions{Name: allocation.WorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("%s does not replay: %v", file, err)
			}
		})
	}
}

// skipsSweep is AllocationWorkflow with an incompatible change: it no longer
// sweeps compensation before waiting for the approval.
func skipsSweep(ctx workflow.Context, in allocation.Input) error {
	in.Swept = true
	return allocation.AllocationWorkflow(ctx, in)
}

// TestReplayDetectsIncompatibleChange proves the replay test can fail.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, file := range historyFiles(t) {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(skipsSweep, workflow.RegisterOptions{Name: allocation.WorkflowName})
		if err := r.ReplayWorkflowHistoryFromJSONFile(quiet, file); err == nil {
			t.Fatalf("%s replayed against a workflow without the compensation sweep", file)
		}
	}

}
