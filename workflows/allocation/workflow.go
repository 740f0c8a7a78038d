package allocation

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
)

// AllocationWorkflow carries one tranche: previews (Update "preview") until an
// approver other than the creator approves (Update "approve", validated
// here and enforced again by the database), then tells every claim its
// allocation in pages and ends. Receiving goods is a plain transaction on the
// purchase order (models.ReceivePurchaseOrder), not part of this workflow.
func AllocationWorkflow(ctx workflow.Context, in Input) error {
	w := &allocationWorkflow{in: in, state: State{TrancheID: in.TrancheID, Status: in.Status, PreviewVersion: in.PreviewVersion}}
	if w.state.Status == "" {
		w.state.Status = models.TrancheDraft
	}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

type allocationWorkflow struct {
	in    Input
	state State
	mu    workflow.Mutex // one update at a time: a preview never races an approval
	acts  *Activities    // nil receiver: only method values are used, for names
}

// UpdateActivityOptions bound activities an HTTP request waits on: a few
// attempts, then the update fails and the caller may retry.
var UpdateActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
}

// BackgroundActivityOptions never give up: a database outage delays the
// work, it never drops it. Domain refusals are non-retryable failures.
var BackgroundActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 5 * time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
}

func (w *allocationWorkflow) approved() bool {
	return w.state.Status == models.TrancheApproved || w.state.Status == models.TrancheNotified
}

// setup registers the query and the updates before anything can block.
func (w *allocationWorkflow) setup(ctx workflow.Context) error {
	w.mu = workflow.NewMutex(ctx)
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return w.state, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePreview, w.preview,
		workflow.UpdateHandlerOptions{Validator: w.validatePreview}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, w.approve,
		workflow.UpdateHandlerOptions{Validator: w.validateApprove})
}

func (w *allocationWorkflow) validatePreview(_ workflow.Context, req PreviewRequest) error {
	if req.By == uuid.Nil {
		return Failure(models.FieldError("validation_failed", "by", "required", "who previews is required"))
	}
	if w.approved() {
		return Failure(models.Coded(models.ECONFLICT, "tranche_already_approved", "the tranche is already approved"))
	}
	return nil
}

// validateApprove refuses before anything is written: approving one's own
// tranche, approving twice, approving without a draft.
func (w *allocationWorkflow) validateApprove(_ workflow.Context, req ApproveRequest) error {
	switch {
	case req.ApproverID == uuid.Nil:
		return Failure(models.FieldError("validation_failed", "approver_id", "required", "the approver is required"))
	case req.ApproverID == w.in.CreatedBy:
		return Failure(models.Coded(models.EFORBIDDEN, "segregation_of_duties", "nobody approves a tranche they created"))
	case w.approved():
		return Failure(models.Coded(models.ECONFLICT, "tranche_already_approved", "the tranche is already approved"))
	case w.state.Status == models.TrancheDraft:
		return Failure(models.Coded(models.ECONFLICT, "preview_required", "preview the tranche before approving it"))
	}
	return nil
}

func (w *allocationWorkflow) preview(ctx workflow.Context, req PreviewRequest) (models.PreviewSummary, error) {
	var sum models.PreviewSummary
	if err := w.mu.Lock(ctx); err != nil {
		return sum, err
	}
	defer w.mu.Unlock()
	if err := w.validatePreview(ctx, req); err != nil { // the state may have changed while waiting for the lock
		return sum, err
	}
	actx := workflow.WithActivityOptions(ctx, UpdateActivityOptions)
	if err := workflow.ExecuteActivity(actx, w.acts.AllocationPreview, PreviewInput{TrancheID: w.in.TrancheID, By: req.By}).Get(ctx, &sum); err != nil {
		return sum, unwrap(err)
	}
	w.state.Status, w.state.PreviewVersion = models.TranchePreviewed, sum.Version
	return sum, nil
}

func (w *allocationWorkflow) approve(ctx workflow.Context, req ApproveRequest) (models.ApproveResult, error) {
	var res models.ApproveResult
	if err := w.mu.Lock(ctx); err != nil {
		return res, err
	}
	defer w.mu.Unlock()
	if err := w.validateApprove(ctx, req); err != nil {
		return res, err
	}
	actx := workflow.WithActivityOptions(ctx, UpdateActivityOptions)
	in := ApproveInput{TrancheID: w.in.TrancheID, ApproverID: req.ApproverID, PreviewVersion: req.PreviewVersion}
	if err := workflow.ExecuteActivity(actx, w.acts.AllocationApprove, in).Get(ctx, &res); err != nil {
		return res, unwrap(err)
	}
	w.state.Status, w.state.PurchaseOrders = models.TrancheApproved, res.PurchaseOrders
	return res, nil
}

func (w *allocationWorkflow) run(ctx workflow.Context) error {
	bg := workflow.WithActivityOptions(ctx, BackgroundActivityOptions)
	if !w.in.Swept {
		// Every approved compensation is entitled on approval; the sweep makes
		// sure none was missed before the program's money is split further.
		if _, err := SweepCompensation(bg, w.in.Program, w.acts.AllocationSweep); err != nil {
			return err
		}
	}
	for !w.approved() {
		// Waiting for the approval; a long-lived draft previewed again and
		// again continues as new before its history grows large.
		if err := workflow.Await(ctx, func() bool {
			return w.approved() || workflow.GetInfo(ctx).GetContinueAsNewSuggested() && workflow.AllHandlersFinished(ctx)
		}); err != nil {
			return err
		}
		if !w.approved() {
			next := w.in
			next.Status, next.PreviewVersion, next.Swept = w.state.Status, w.state.PreviewVersion, true
			return workflow.NewContinueAsNewError(ctx, WorkflowName, next)
		}
	}
	for {
		var page models.NotifyPage
		if err := workflow.ExecuteActivity(bg, w.acts.AllocationNotify, NotifyInput{TrancheID: w.in.TrancheID, Limit: NotifyPageSize}).Get(ctx, &page); err != nil {
			return err
		}
		w.state.Notified += page.Notified
		if page.Done {
			break
		}
	}
	w.state.Status = models.TrancheNotified
	// Let a concurrent update (a late duplicate approval) answer before the end.
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// SweepCompensation runs a compensation sweep activity page by page until the
// program is swept, returning how many entitlements it created. act is the
// calling workflow's registered sweep activity (it takes a SweepInput).
func SweepCompensation(ctx workflow.Context, program string, act any) (int, error) {
	entitled := 0
	in := SweepInput{Program: program, Limit: SweepPageSize}
	for {
		var page models.SweepPage
		if err := workflow.ExecuteActivity(ctx, act, in).Get(ctx, &page); err != nil {
			return entitled, err
		}
		entitled += page.Entitled
		if page.Done {
			return entitled, nil
		}
		in.After = page.Next
	}
}
