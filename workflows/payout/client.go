package payout

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
)

// Register puts the workflow and its activities on w (the programs worker).
func Register(w worker.Registry, a *Activities) {
	w.RegisterWorkflowWithOptions(PayoutBatchWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(a)
}

func startOptions(batchID uuid.UUID) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        WorkflowID(batchID),
		TaskQueue: TaskQueue,
		// A finished batch is never run again by ID; should its ID have expired
		// from Temporal, a new run reads the database and finds nothing to do.
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// Start starts the batch's workflow; starting it again is a no-op.
func Start(ctx context.Context, c client.Client, batchID uuid.UUID, tuning Tuning) error {
	_, err := c.ExecuteWorkflow(ctx, startOptions(batchID), WorkflowName, Input{BatchID: batchID, Tuning: tuning})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil // it ran and finished: nothing to start
	}
	return err
}

// ErrWorkflowGone: the batch's workflow has finished (or cannot take the
// update); the caller decides from the database.
var ErrWorkflowGone = errors.New("payout: the batch's workflow is not running")

// Approve sends the approve Update (starting the workflow first if it is
// missing) and waits for its outcome. Refusals come back as the models'
// coded errors (segregation_of_duties, already_approved, precheck_running,
// batch_closed); an unreachable Temporal as EUNAVAILABLE.
//
// The holder check commits awaiting_approval to the database a moment before
// the workflow's own state moves on, so a finance officer who approves the
// instant the page says so could be refused precheck_running; such refusals
// are retried for a few seconds before they are answered.
func Approve(ctx context.Context, c client.Client, batchID uuid.UUID, req ApproveRequest) (ApproveResult, error) {
	deadline := time.Now().Add(precheckGrace)
	for {
		res, err := approveOnce(ctx, c, batchID, req)
		if !errors.Is(err, models.ErrPayoutPrecheckRunning) || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// precheckGrace is how long Approve retries a precheck_running refusal.
const precheckGrace = 3 * time.Second

func approveOnce(ctx context.Context, c client.Client, batchID uuid.UUID, req ApproveRequest) (ApproveResult, error) {
	op := c.NewWithStartWorkflowOperation(startOptions(batchID), WorkflowName, Input{BatchID: batchID})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   UpdateApprove,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var res ApproveResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	return res, approveError(err)
}

func approveError(err error) error {
	if err == nil {
		return nil
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case ErrTypeSegregation:
			return models.ErrPayoutSegregation
		case ErrTypeAlreadyApproved:
			return models.ErrPayoutAlreadyApproved
		case ErrTypePrecheckRunning:
			return models.ErrPayoutPrecheckRunning
		case ErrTypeBatchClosed, "line_not_approved":
			return models.ErrPayoutBatchClosed
		case ErrTypeNotFound:
			return models.ErrNotFound
		case ErrTypeInvalid:
			return models.Coded(models.EINVALID, "validation_failed", app.Error())
		}
	}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	var notFound *serviceerror.NotFound
	if errors.As(err, &started) || errors.As(err, &notFound) {
		return ErrWorkflowGone
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	if errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded) {
		return models.Coded(models.EUNAVAILABLE, "unavailable", "the workflow service is unavailable, retry shortly")
	}
	return err
}

// NotifyResults tells a batch's workflow that results were imported; a
// finished or missing workflow needs no telling (and a file-channel batch
// also looks by itself).
func NotifyResults(ctx context.Context, c client.Client, batchID uuid.UUID) error {
	err := c.SignalWorkflow(ctx, WorkflowID(batchID), "", SignalResults, nil)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}
