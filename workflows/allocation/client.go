package allocation

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/relief/relief/models"
)

// Starting: tranches are created by a program admin, a few per program, so
// the handler starts the workflow right after the tranche commits, with the
// deterministic ID; if Temporal was down at that moment, every later preview
// or approval is an update-with-start that starts it then. The tranche row is
// the durable fact; no outbox topic is needed.

// StartOptions start (or meet) the tranche's workflow. The ID is never reused
// for a second run while the first is remembered.
func StartOptions(trancheID uuid.UUID) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(trancheID),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// InputFor is the workflow input for a tranche as PostgreSQL has it.
func InputFor(t *models.Tranche) Input {
	return Input{TrancheID: t.ID, Program: t.Program, CreatedBy: t.CreatedBy, Status: t.Status, PreviewVersion: t.PreviewVersion}
}

// Start starts the tranche's workflow; starting it again is a no-op.
func Start(ctx context.Context, c client.Client, t *models.Tranche) error {
	_, err := c.ExecuteWorkflow(ctx, StartOptions(t.ID), WorkflowName, InputFor(t))
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil // finished before and remembered: nothing to start
	}
	return DomainError(err)
}

// Preview asks the tranche's workflow for a preview (starting it if needed)
// and returns the stored draft's summary.
func Preview(ctx context.Context, c client.Client, t *models.Tranche, by uuid.UUID) (models.PreviewSummary, error) {
	var sum models.PreviewSummary
	err := update(ctx, c, t, UpdatePreview, PreviewRequest{By: by}, &sum)
	return sum, err
}

// Approve asks the tranche's workflow to approve the draft and returns once
// the purchase orders exist.
func Approve(ctx context.Context, c client.Client, t *models.Tranche, req ApproveRequest) (models.ApproveResult, error) {
	var res models.ApproveResult
	err := update(ctx, c, t, UpdateApprove, req, &res)
	return res, err
}

func update(ctx context.Context, c client.Client, t *models.Tranche, name string, arg, out any) error {
	op := c.NewWithStartWorkflowOperation(StartOptions(t.ID), WorkflowName, InputFor(t))
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   name,
			Args:         []any{arg},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return models.Coded(models.ECONFLICT, "tranche_closed", "the tranche's process has ended")
		}
		return DomainError(err)
	}
	return DomainError(h.Get(ctx, out))
}
