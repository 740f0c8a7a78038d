package feewaiver

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
)

// FeeWaiverWorkflow waits on a durable timer until the program's promotion
// period has ended and the settlement lag has passed, runs the fee waiver,
// then stays to serve manual runs (Update "run"), continuing as new before
// its history grows large. A program without a period has nothing to do and
// ends.
func FeeWaiverWorkflow(ctx workflow.Context, in Input) error {
	w := &feeWaiverWorkflow{in: in, state: State{Program: in.Program, TimerDone: in.TimerDone, Runs: in.Runs}}
	if err := w.handlers(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

type feeWaiverWorkflow struct {
	in        Input
	state     State
	setup     *models.FeeWaiverSetup // nil until loaded
	requested int                    // run requests accepted
	served    int                    // requests a finished run covered
	lastErr   error
	acts      *Activities // nil receiver: only method values are used, for names
}

func (w *feeWaiverWorkflow) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return w.state, nil }); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRun, w.runUpdate, workflow.UpdateHandlerOptions{Validator: w.validateRun})
}

// runnable refuses a run before the period is over (or without a period).
func (w *feeWaiverWorkflow) runnable(ctx workflow.Context) error {
	var e *models.Error
	if err := w.setup.CheckFeeWaiverRunnable(workflow.Now(ctx)); errors.As(err, &e) {
		return allocation.Failure(e)
	}
	return nil
}

func (w *feeWaiverWorkflow) validateRun(ctx workflow.Context, req RunRequest) error {
	if req.By == uuid.Nil {
		return allocation.Failure(models.FieldError("validation_failed", "by", "required", "who runs it is required"))
	}
	if w.setup != nil {
		return w.runnable(ctx)
	}
	return nil // not loaded yet: the handler checks once it is
}

// runUpdate queues a run and answers with its result once a run that started
// after the request has finished.
func (w *feeWaiverWorkflow) runUpdate(ctx workflow.Context, req RunRequest) (*models.FeeWaiverRun, error) {
	if err := workflow.Await(ctx, func() bool { return w.setup != nil }); err != nil {
		return nil, err
	}
	if err := w.runnable(ctx); err != nil {
		return nil, err
	}
	w.requested++
	mine := w.requested
	if err := workflow.Await(ctx, func() bool { return w.served >= mine }); err != nil {
		return nil, err
	}
	if w.lastErr != nil {
		return nil, w.lastErr
	}
	return w.state.Last, nil
}

func (w *feeWaiverWorkflow) pending() bool { return w.requested > w.served }

func (w *feeWaiverWorkflow) canContinue(ctx workflow.Context) bool {
	return !w.pending() && workflow.GetInfo(ctx).GetContinueAsNewSuggested() && workflow.AllHandlersFinished(ctx)
}

func (w *feeWaiverWorkflow) run(ctx workflow.Context) error {
	actx := workflow.WithActivityOptions(ctx, allocation.BackgroundActivityOptions)
	var setup models.FeeWaiverSetup
	if err := workflow.ExecuteActivity(actx, w.acts.FeeWaiverSetup, w.in.Program).Get(ctx, &setup); err != nil {
		return err
	}
	w.setup = &setup
	w.state.HasPeriod = setup.HasPeriod
	if !setup.HasPeriod {
		return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	}
	w.state.EndsAt = setup.Ends()
	due := w.state.EndsAt.Add(w.in.SettlementLag)
	w.state.DueAt = due
	for {
		if !w.state.TimerDone {
			if wait := due.Sub(workflow.Now(ctx)); wait > 0 {
				// The durable timer: survives restarts of everything.
				if _, err := workflow.AwaitWithTimeout(ctx, wait, w.pending); err != nil {
					return err
				}
			}
			if !workflow.Now(ctx).Before(due) {
				if err := w.runOnce(ctx, "timer"); err != nil {
					return err
				}
				w.state.TimerDone = true
				continue
			}
		} else if err := workflow.Await(ctx, func() bool { return w.pending() || w.canContinue(ctx) }); err != nil {
			return err
		}
		if w.pending() {
			if err := w.runOnce(ctx, "manual"); err != nil {
				return err
			}
			continue
		}
		if w.canContinue(ctx) {
			return workflow.NewContinueAsNewError(ctx, WorkflowName, Input{Program: w.in.Program, SettlementLag: w.in.SettlementLag,
				TimerDone: w.state.TimerDone, Runs: w.state.Runs})
		}
	}
}

// runOnce runs the fee waiver over every claim of the program, in pages, and
// serves the requests queued before it started. Only cancellation ends the
// workflow; a refusal is kept as the answer to those requests.
func (w *feeWaiverWorkflow) runOnce(ctx workflow.Context, trigger string) error {
	upto := w.requested
	w.state.Running = true
	w.state.Runs++
	key := fmt.Sprintf("%s:%s:%d", w.in.Program, workflow.GetInfo(ctx).WorkflowExecution.RunID, w.state.Runs)
	actx := workflow.WithActivityOptions(ctx, allocation.BackgroundActivityOptions)
	last, err := func() (*models.FeeWaiverRun, error) {
		if err := workflow.ExecuteActivity(actx, w.acts.FeeWaiverStart, StartInput{Program: w.in.Program, RunKey: key, Trigger: trigger}).Get(ctx, nil); err != nil {
			return nil, err
		}
		if _, err := allocation.SweepCompensation(actx, w.in.Program, w.acts.FeeWaiverSweep); err != nil {
			return nil, err
		}
		in := PageInput{Program: w.in.Program, RunKey: key, Limit: PageSize}
		for {
			var page models.FeeWaiverPage
			if err := workflow.ExecuteActivity(actx, w.acts.FeeWaiverPage, in).Get(ctx, &page); err != nil {
				return nil, err
			}
			if page.Done {
				break
			}
			in.After = page.Next
		}
		var run models.FeeWaiverRun
		err := workflow.ExecuteActivity(actx, w.acts.FeeWaiverFinish, key).Get(ctx, &run)
		return &run, err
	}()
	w.state.Running = false
	w.served = upto
	if err != nil {
		if temporal.IsCanceledError(err) || ctx.Err() != nil {
			return err
		}
		workflow.GetLogger(ctx).Error("fee waiver run failed", "program", w.in.Program, "run", key, "err", err)
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			err = ae
		}
		w.lastErr = err
		return nil
	}
	w.lastErr, w.state.Last = nil, last
	return nil
}
