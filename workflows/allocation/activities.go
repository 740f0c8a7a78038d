package allocation

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
)

// Activities are the allocation workflow's side effects, each one PostgreSQL
// transaction and idempotent: a preview replaces the draft, an approval
// retried by the same approver answers the same orders, a notification page
// skips orders already told, a sweep skips claims already entitled. Method
// names carry the package's prefix: activity names are global to the worker.
type Activities struct {
	Store *models.Store
}

// Register adds AllocationWorkflow and its activities to a worker (the
// programs task queue).
func Register(w worker.Registry, store *models.Store) {
	w.RegisterWorkflowWithOptions(AllocationWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(&Activities{Store: store})
}

// AllocationPreview computes the tranche's allocation and stores it as the draft.
func (a *Activities) AllocationPreview(ctx context.Context, in PreviewInput) (models.PreviewSummary, error) {
	sum, err := a.Store.PreviewTranche(ctx, in.TrancheID, in.By)
	if err == nil {
		activity.GetLogger(ctx).Info("tranche previewed", "tranche", in.TrancheID.String(), "version", sum.Version,
			"candidates", sum.Candidates, "total_allocated", sum.TotalAllocated)
	}
	return sum, ActivityError(err)
}

// AllocationApprove approves the draft and writes the purchase orders in one transaction.
func (a *Activities) AllocationApprove(ctx context.Context, in ApproveInput) (models.ApproveResult, error) {
	res, err := a.Store.ApproveTranche(ctx, in.TrancheID, in.ApproverID, in.PreviewVersion)
	if err == nil {
		activity.GetLogger(ctx).Info("tranche approved", "tranche", in.TrancheID.String(), "purchase_orders", res.PurchaseOrders, "total", res.Total)
	}
	return res, ActivityError(err)
}

// AllocationNotify tells one page of claims their allocation.
func (a *Activities) AllocationNotify(ctx context.Context, in NotifyInput) (models.NotifyPage, error) {
	page, err := a.Store.NotifyAllocations(ctx, in.TrancheID, in.Limit)
	return page, ActivityError(err)
}

// AllocationSweep entitles one page of approved claims whose compensation
// entitlement is missing.
func (a *Activities) AllocationSweep(ctx context.Context, in SweepInput) (models.SweepPage, error) {
	page, err := a.Store.SweepCompensation(ctx, in.Program, in.After, in.Limit)
	if err == nil && (page.Entitled > 0 || page.Short > 0) {
		activity.GetLogger(ctx).Info("compensation sweep", "program", in.Program, "entitled", page.Entitled, "short", page.Short)
	}
	return page, ActivityError(err)
}
