package claim_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
	"github.com/relief/relief/workflows/internal/historytest"
)

// TestReplayCommittedHistories replays every recorded history against today's
// ClaimWorkflow. A failure means a change is not backward compatible with
// workflows already running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	historytest.ReplayCommitted(t, claim.WorkflowName, claim.ClaimWorkflow)
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
	historytest.ReplayRejects(t, claim.WorkflowName, skipsVerifying, "without the verifying step")
}
