package claim

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
)

// ClaimWorkflow carries one claim: received → verifying → in_review, where it
// waits for reviewers (decisions arrive as Updates in a later version).
func ClaimWorkflow(ctx workflow.Context, in Input) error {
	w := &claimWorkflow{state: State{ClaimID: in.ClaimID, Status: models.StatusReceived}}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

type claimWorkflow struct {
	state State
	acts  *Activities // nil receiver: only method values are used, for names
}

// setup registers handlers before anything can block, so queries work at once.
func (w *claimWorkflow) setup(ctx workflow.Context) error {
	return workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return w.state, nil })
}

func (w *claimWorkflow) run(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// no MaximumAttempts: a database outage delays a claim, it never drops it
		},
	})
	if err := w.moveTo(ctx, models.StatusVerifying, ""); err != nil {
		return err
	}
	if err := w.moveTo(ctx, models.StatusInReview, ""); err != nil {
		return err
	}
	// Review decisions, payment and closing come in later versions; until then the
	// workflow waits for a reviewer.
	return workflow.Await(ctx, func() bool { return w.state.Status == models.StatusClosed })
}

// moveTo records status through an activity, then updates query state and the
// status search attribute.
func (w *claimWorkflow) moveTo(ctx workflow.Context, status, note string) error {
	change := StatusChange{ClaimID: w.state.ClaimID, EventKey: status, Status: status, Note: note}
	if err := workflow.ExecuteActivity(ctx, w.acts.RecordStatus, change).Get(ctx, nil); err != nil {
		return err
	}
	w.state.Status = status
	w.state.Steps = append(w.state.Steps, status)
	return workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(status))
}
