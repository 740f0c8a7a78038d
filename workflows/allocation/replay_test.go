package allocation_test

import (
	"testing"

	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/workflows/allocation"
	"github.com/relief/relief/workflows/internal/historytest"
)

// TestReplayCommittedHistories replays every recorded history against today's
// AllocationWorkflow. A failure means a change is not compatible with
// tranches already running: guard it with workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	historytest.ReplayCommitted(t, allocation.WorkflowName, allocation.AllocationWorkflow)
}

// skipsSweep is AllocationWorkflow with an incompatible change: it no longer
// sweeps compensation before waiting for the approval.
func skipsSweep(ctx workflow.Context, in allocation.Input) error {
	in.Swept = true
	return allocation.AllocationWorkflow(ctx, in)
}

// TestReplayDetectsIncompatibleChange proves the replay test can fail.
func TestReplayDetectsIncompatibleChange(t *testing.T) {
	historytest.ReplayRejects(t, allocation.WorkflowName, skipsSweep, "without the compensation sweep")
}
