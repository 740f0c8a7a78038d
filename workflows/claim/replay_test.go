package claim_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
)

// historyFiles lists the committed histories; there must be at least one.
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
// ClaimWorkflow. A failure means a change is not backward compatible with
// workflows already running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("%s does not replay: %v", file, err)
			}
		})
	}
}

// skipsVerifying is ClaimWorkflow with an incompatible change: it goes to
// in_review without the verifying step.
func skipsVerifying(ctx workflow.Context, in claim.Input) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var acts *claim.Activities
	change := claim.StatusChange{ClaimID: in.ClaimID, EventKey: models.StatusInReview, Status: models.StatusInReview}
	if err := workflow.ExecuteActivity(ctx, acts.RecordStatus, change).Get(ctx, nil); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, claim.SearchStatus.ValueSet(models.StatusInReview)); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// TestReplayDetectsIncompatibleChange proves the replay test can fail: a
// workflow that drops a step is rejected by the committed histories.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) // the mismatch is expected
	for _, file := range historyFiles(t) {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(skipsVerifying, workflow.RegisterOptions{Name: claim.WorkflowName})
		if err := r.ReplayWorkflowHistoryFromJSONFile(quiet, file); err == nil {
			t.Fatalf("%s replayed against a workflow without the verifying step", file)
		}
	}
}
