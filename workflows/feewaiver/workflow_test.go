package feewaiver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/feewaiver"
)

var kst = time.FixedZone("KST", 9*3600)

func newEnv() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	return suite.NewTestWorkflowEnvironment()
}

func setup(from, to rules.Date) models.FeeWaiverSetup {
	return models.FeeWaiverSetup{Program: models.DemoProgram, HasPeriod: true, From: from, To: to, RateBP: 600, CategoryRateBP: map[string]int64{}}
}

func errType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestTimerRunsAfterPeriodAndLag: started during the promotion, the workflow
// sleeps on a durable timer (skipped by the test environment) and runs the
// waiver exactly when the period has ended and the settlement lag has passed,
// not before; a run asked for during the promotion is refused; one asked for
// afterwards runs again and answers with its result.
func TestTimerRunsAfterPeriodAndLag(t *testing.T) {
	env := newEnv()
	var acts *feewaiver.Activities
	env.RegisterActivity(acts)
	start := time.Date(2025, 11, 1, 9, 0, 0, 0, kst)
	env.SetStartTime(start)
	lag := 72 * time.Hour
	due := time.Date(2025, 11, 24, 0, 0, 0, 0, kst) // 20 Nov is the last day: over at 21 Nov 00:00, plus 3 days
	s := setup(rules.Date{Year: 2025, Month: 10, Day: 21}, rules.Date{Year: 2025, Month: 11, Day: 20})

	var pagesAt []time.Time
	var triggers []string
	env.OnActivity(acts.FeeWaiverSetup, mock.Anything, models.DemoProgram).Return(s, nil)
	env.OnActivity(acts.FeeWaiverStart, mock.Anything, mock.Anything).Return(func(_ context.Context, in feewaiver.StartInput) error {
		triggers = append(triggers, in.Trigger)
		return nil
	})
	env.OnActivity(acts.FeeWaiverSweep, mock.Anything, mock.Anything).Return(models.SweepPage{Done: true}, nil)
	first := true
	env.OnActivity(acts.FeeWaiverPage, mock.Anything, mock.Anything).Return(func(_ context.Context, in feewaiver.PageInput) (models.FeeWaiverPage, error) {
		pagesAt = append(pagesAt, env.Now())
		if first && in.After == uuid.Nil { // two pages on the first run
			first = false
			return models.FeeWaiverPage{Next: uuid.New(), Claims: feewaiver.PageSize}, nil
		}
		return models.FeeWaiverPage{Done: true}, nil
	})
	env.OnActivity(acts.FeeWaiverFinish, mock.Anything, mock.Anything).Return(func(_ context.Context, key string) (*models.FeeWaiverRun, error) {
		return &models.FeeWaiverRun{RunKey: key, Status: "done", Entitled: 2, Amount: 75_340}, nil
	})

	var early, late struct {
		rejected, failed error
		result           any
	}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(feewaiver.UpdateRun, "early", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { early.rejected = err },
			OnComplete: func(v any, err error) { early.result, early.failed = v, err },
		}, feewaiver.RunRequest{By: uuid.New()})
	}, time.Hour)
	var state feewaiver.State
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(feewaiver.QueryState)
		if err == nil {
			err = v.Get(&state)
		}
		if err != nil {
			t.Error(err)
		}
		env.UpdateWorkflow(feewaiver.UpdateRun, "late", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { late.rejected = err },
			OnComplete: func(v any, err error) { late.result, late.failed = v, err },
		}, feewaiver.RunRequest{By: uuid.New()})
	}, due.Sub(start)+time.Hour)
	env.RegisterDelayedCallback(env.CancelWorkflow, due.Sub(start)+2*time.Hour)

	env.ExecuteWorkflow(feewaiver.FeeWaiverWorkflow, feewaiver.Input{Program: models.DemoProgram, SettlementLag: lag})

	if errType(early.rejected) != "promotion_not_over" {
		t.Fatalf("a run during the promotion: rejected %v, failed %v", early.rejected, early.failed)
	}
	if len(pagesAt) != 3 || pagesAt[0].Before(due) || pagesAt[0].After(due.Add(time.Minute)) {
		t.Fatalf("pages at %v, want the first at %v", pagesAt, due)
	}
	if len(triggers) != 2 || triggers[0] != "timer" || triggers[1] != "manual" {
		t.Fatalf("runs %v", triggers)
	}
	if !state.TimerDone || state.Runs != 1 || !state.DueAt.Equal(due) || state.Last == nil || state.Last.Amount != 75_340 {
		t.Fatalf("state after the timer run: %+v", state)
	}
	if late.rejected != nil || late.failed != nil || late.result == nil {
		t.Fatalf("a run after the period: %v %v %v", late.rejected, late.failed, late.result)
	}
	env.AssertExpectations(t)
}

// TestNoPeriodNothingToDo: a program without a fee-waiver period ends the
// workflow at once, refusing a queued run with no_fee_waiver_period.
func TestNoPeriodNothingToDo(t *testing.T) {
	env := newEnv()
	var acts *feewaiver.Activities
	env.RegisterActivity(acts)
	env.OnActivity(acts.FeeWaiverSetup, mock.Anything, "P").Return(models.FeeWaiverSetup{Program: "P"}, nil)
	var failed, rejected error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(feewaiver.UpdateRun, "r", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected = err },
			OnComplete: func(_ any, err error) { failed = err },
		}, feewaiver.RunRequest{By: uuid.New()})
	}, 0)
	env.ExecuteWorkflow(feewaiver.FeeWaiverWorkflow, feewaiver.Input{Program: "P"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: %v", env.GetWorkflowError())
	}
	if errType(failed) != "no_fee_waiver_period" && errType(rejected) != "no_fee_waiver_period" {
		t.Fatalf("run without a period: %v %v", rejected, failed)
	}
}
