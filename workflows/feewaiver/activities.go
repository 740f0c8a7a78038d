package feewaiver

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
)

// Activities are the fee-waiver workflow's side effects; each is one
// transaction and idempotent (run keys, entitlement source keys).
type Activities struct {
	Store *models.Store
}

// Register adds FeeWaiverWorkflow and its activities to a worker (the
// programs task queue).
func Register(w worker.Registry, store *models.Store) {
	w.RegisterWorkflowWithOptions(FeeWaiverWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(&Activities{Store: store})
}

// FeeWaiverSetup loads the program's period and rates.
func (a *Activities) FeeWaiverSetup(ctx context.Context, program string) (models.FeeWaiverSetup, error) {
	s, err := a.Store.FeeWaiverSetup(ctx, program)
	return s, allocation.ActivityError(err)
}

// FeeWaiverStart records a run's start.
func (a *Activities) FeeWaiverStart(ctx context.Context, in StartInput) error {
	return allocation.ActivityError(a.Store.StartFeeWaiverRun(ctx, in.Program, in.RunKey, in.Trigger))
}

// FeeWaiverPage computes one page of merchants' fee waivers.
func (a *Activities) FeeWaiverPage(ctx context.Context, in PageInput) (models.FeeWaiverPage, error) {
	page, err := a.Store.RunFeeWaiverPage(ctx, in.Program, in.RunKey, in.After, in.Limit)
	if err == nil {
		activity.GetLogger(ctx).Info("fee waiver page", "program", in.Program, "claims", page.Claims, "entitled", page.Entitled, "unfunded", page.Unfunded)
	}
	return page, allocation.ActivityError(err)
}

// FeeWaiverFinish marks the run done with the program's totals.
func (a *Activities) FeeWaiverFinish(ctx context.Context, runKey string) (*models.FeeWaiverRun, error) {
	r, err := a.Store.FinishFeeWaiverRun(ctx, runKey)
	return r, allocation.ActivityError(err)
}

// FeeWaiverSweep entitles one page of approved claims whose compensation
// entitlement is missing.
func (a *Activities) FeeWaiverSweep(ctx context.Context, in allocation.SweepInput) (models.SweepPage, error) {
	page, err := a.Store.SweepCompensation(ctx, in.Program, in.After, in.Limit)
	return page, allocation.ActivityError(err)
}
