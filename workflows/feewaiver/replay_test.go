package feewaiver_test

import (
	"testing"

	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/workflows/feewaiver"
	"github.com/relief/relief/workflows/internal/historytest"
)

// TestReplayCommittedHistories replays every recorded history against today's
// FeeWaiverWorkflow. A failure means a change is not compatible with the
// workflows already waiting on their timers: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	historytest.ReplayCommitted(t, feewaiver.WorkflowName, feewaiver.FeeWaiverWorkflow)
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
	historytest.ReplayRejects(t, feewaiver.WorkflowName, noLag, "that skips the automatic run")
}
