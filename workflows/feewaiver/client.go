package feewaiver

import (
	"context"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
)

// StartOptions start or meet the program's fee-waiver workflow. A finished
// one (a program without a period) may be started again: runs are idempotent.
func StartOptions(program string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(program),
		TaskQueue:                TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// Start starts the program's fee-waiver workflow (once: a running one is
// left alone). Call it when a program is seeded or created; settlementLag is
// usually DefaultSettlementLag.
func Start(ctx context.Context, c client.Client, program string, settlementLag time.Duration) error {
	_, err := c.ExecuteWorkflow(ctx, StartOptions(program), WorkflowName, Input{Program: program, SettlementLag: settlementLag})
	return allocation.DomainError(err)
}

// RequestRun asks the program's workflow (starting it if needed) for a run now
// and returns once the workflow accepted it; the run goes on in the
// background. Before the period is over it is refused (409 promotion_not_over).
func RequestRun(ctx context.Context, c client.Client, program string, by uuid.UUID, settlementLag time.Duration) error {
	op := c.NewWithStartWorkflowOperation(StartOptions(program), WorkflowName, Input{Program: program, SettlementLag: settlementLag})
	_, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   UpdateRun,
			Args:         []any{RunRequest{By: by}},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	return allocation.DomainError(err)
}

// Run asks for a run and waits for its result (tests, command-line tools).
func Run(ctx context.Context, c client.Client, program string, by uuid.UUID, settlementLag time.Duration) (*models.FeeWaiverRun, error) {
	op := c.NewWithStartWorkflowOperation(StartOptions(program), WorkflowName, Input{Program: program, SettlementLag: settlementLag})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   UpdateRun,
			Args:         []any{RunRequest{By: by}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return nil, allocation.DomainError(err)
	}
	var run *models.FeeWaiverRun
	return run, allocation.DomainError(h.Get(ctx, &run))
}
