package payout

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
)

// maxResultWaits bounds the file channel's waiting loop per run; the workflow
// continues as new after that many looks, so its history stays small however
// long the bank takes.
const maxResultWaits = 200

// PayoutBatchWorkflow carries one payout batch: holder check → awaiting
// approval → transfers (or the bank file and its results) → completed. Its
// state is PostgreSQL's: a new run (continue-as-new, or a restart after the
// ID's retention) picks up where the database says the batch is.
func PayoutBatchWorkflow(ctx workflow.Context, in Input) (Result, error) {
	w := &batchWorkflow{in: in, tuning: in.Tuning.withDefaults(), state: State{BatchID: in.BatchID}}
	if err := w.setup(ctx); err != nil {
		return Result{}, err
	}
	return w.run(ctx)
}

type batchWorkflow struct {
	in        Input
	tuning    Tuning
	state     State
	loaded    bool
	approving bool
	acts      *Activities // nil receiver: only method values are used, for names
}

// setup registers the query and the approval Update before anything blocks.
func (w *batchWorkflow) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return w.state, nil }); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, w.approve, workflow.UpdateHandlerOptions{Validator: w.validateApprove})
}

func refuse(errType, msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}

// validateApprove rejects an approval before it enters the history: by the
// batch's creator (segregation of duties), a second approval, or one that
// comes while the holder check runs. The database refuses the same again.
func (w *batchWorkflow) validateApprove(ctx workflow.Context, req ApproveRequest) error {
	switch {
	case req.ApproverID == uuid.Nil:
		return refuse(ErrTypeInvalid, "approver_id is required")
	case !w.loaded || w.state.Status == models.BatchChecking:
		return refuse(ErrTypePrecheckRunning, "the holder check is still running")
	case req.ApproverID == w.state.CreatedBy:
		return refuse(ErrTypeSegregation, "the creator of a payout batch cannot approve it")
	case w.approving || w.state.ApprovedBy != nil:
		return refuse(ErrTypeAlreadyApproved, "the batch is already approved")
	case w.state.Status != models.BatchAwaitingApproval:
		return refuse(ErrTypeBatchClosed, "the batch has nothing to approve")
	}
	return nil
}

func (w *batchWorkflow) approve(ctx workflow.Context, req ApproveRequest) (ApproveResult, error) {
	w.approving = true
	defer func() { w.approving = false }()
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			MaximumAttempts: 5, // the approver is waiting: fail the Update rather than hang; it may be sent again
		},
	})
	var res ApproveResult
	err := workflow.ExecuteActivity(ctx, w.acts.PayoutApproveBatch, ApproveInput{BatchID: w.in.BatchID, ApproverID: req.ApproverID, RequestID: req.RequestID}).Get(ctx, &res)
	if err != nil {
		return res, err
	}
	approver := req.ApproverID
	w.state.ApprovedBy = &approver
	w.state.Status = res.Status
	return res, nil
}

func (w *batchWorkflow) run(ctx workflow.Context) (Result, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			// no MaximumAttempts: a database or bank outage delays a batch, never drops it
			NonRetryableErrorTypes: []string{ErrTypeNotFound},
		},
	})
	var info BatchInfo
	if err := workflow.ExecuteActivity(ctx, w.acts.PayoutLoadBatch, w.in.BatchID).Get(ctx, &info); err != nil {
		return Result{}, err
	}
	w.state.Status, w.state.Channel, w.state.LineCount = info.Status, info.Channel, info.LineCount
	w.state.CreatedBy, w.state.ApprovedBy = info.CreatedBy, info.ApprovedBy
	w.loaded = true

	if w.state.Status == models.BatchChecking {
		if err := w.pages(ctx, w.acts.PayoutPrecheckPage); err != nil {
			return Result{}, err
		}
		var status string
		if err := workflow.ExecuteActivity(ctx, w.acts.PayoutFinishPrecheck, w.in.BatchID).Get(ctx, &status); err != nil {
			return Result{}, err
		}
		w.state.Status = status
	}
	if w.state.Status == models.BatchAwaitingApproval {
		// Approval arrives as the approve Update; until then the batch waits,
		// holding its entitlements. (Nothing else may pay them meanwhile.)
		if err := workflow.Await(ctx, func() bool { return w.state.Status != models.BatchAwaitingApproval && !w.approving }); err != nil {
			return Result{}, err
		}
	}
	if w.state.Status == models.BatchTransferring {
		if w.state.Channel == models.ChannelFile {
			done, err := w.awaitResults(ctx)
			if err != nil || !done {
				return Result{}, err // continued as new
			}
		} else if err := w.pages(ctx, w.acts.PayoutTransferPage); err != nil {
			return Result{}, err
		}
	}
	var res Result
	finishCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    w.tuning.HeartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	if err := workflow.ExecuteActivity(finishCtx, w.acts.PayoutFinishBatch, w.in.BatchID).Get(ctx, &res); err != nil {
		return Result{}, err
	}
	w.state.Status, w.state.Paid, w.state.Failed = res.Status, res.Paid, res.Failed
	// A late approval attempt may still be running its validator or handler.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return Result{}, err
	}
	return res, nil
}

// pages runs act over the batch's lines in pages of the sequence, at most
// Parallel pages at once. Page activities heartbeat; one whose worker stops is
// retried on another after HeartbeatTimeout and skips the lines already done.
func (w *batchWorkflow) pages(ctx workflow.Context, act any) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    w.tuning.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{ErrTypeNotFound},
		},
	})
	size := w.tuning.PageSize
	total := (w.state.LineCount + size - 1) / size
	next, running := 0, 0
	var firstErr error
	sel := workflow.NewSelector(ctx)
	for {
		for running < w.tuning.Parallel && next < total && firstErr == nil {
			in := PageInput{BatchID: w.in.BatchID, From: next*size + 1, To: (next + 1) * size, Concurrency: w.tuning.Concurrency}
			sel.AddFuture(workflow.ExecuteActivity(ctx, act, in), func(f workflow.Future) {
				running--
				var r PageResult
				if err := f.Get(ctx, &r); err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				w.state.Checked += r.Checked
				w.state.Paid += r.Paid
				w.state.Failed += r.Failed
			})
			running++
			next++
		}
		if running == 0 {
			return firstErr
		}
		sel.Select(ctx)
	}
}

// awaitResults hands a file-channel batch to the bank and waits until its
// result file has been imported (signalled by the import, or found by a
// periodic look). It reports false when it continued as new instead.
func (w *batchWorkflow) awaitResults(ctx workflow.Context) (bool, error) {
	if err := workflow.ExecuteActivity(ctx, w.acts.PayoutMarkSent, w.in.BatchID).Get(ctx, nil); err != nil {
		return false, err
	}
	results := workflow.GetSignalChannel(ctx, SignalResults)
	for i := 0; i < maxResultWaits; i++ {
		var outstanding int
		if err := workflow.ExecuteActivity(ctx, w.acts.PayoutOutstanding, w.in.BatchID).Get(ctx, &outstanding); err != nil {
			return false, err
		}
		if outstanding == 0 {
			return true, nil
		}
		timerCtx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(results, func(c workflow.ReceiveChannel, more bool) { c.Receive(ctx, nil) })
		sel.AddFuture(workflow.NewTimer(timerCtx, w.tuning.ResultPoll), func(workflow.Future) {})
		sel.Select(ctx)
		cancel()
		for results.ReceiveAsync(nil) {
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return false, err
	}
	return false, workflow.NewContinueAsNewError(ctx, PayoutBatchWorkflow, w.in)
}
