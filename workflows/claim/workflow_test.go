package claim_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
)

// recorder mocks the activities: it remembers every call (RecordStatus with
// its status, or Verify) and its attempt, and fails the first failures[name]
// attempts of each (name is the status for RecordStatus, "Verify" for Verify).
// Verify finds nothing for a fast track: the claim goes to in_review.
type recorder struct {
	mu       sync.Mutex
	calls    []call
	failures map[string]int
}

const verify = "Verify"

type call struct {
	change  claim.StatusChange
	attempt int32
}

func (r *recorder) RecordStatus(ctx context.Context, in claim.StatusChange) error {
	attempt := activity.GetInfo(ctx).Attempt
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{in, attempt})
	if int(attempt) <= r.failures[in.Status] {
		return errors.New("database unavailable")
	}
	return nil
}

func (r *recorder) Verify(ctx context.Context, claimID uuid.UUID) (*models.ReviewContext, error) {
	attempt := activity.GetInfo(ctx).Attempt
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{claim.StatusChange{ClaimID: claimID, Status: verify}, attempt})
	if int(attempt) <= r.failures[verify] {
		return nil, errors.New("database unavailable")
	}
	return &models.ReviewContext{Status: models.StatusInReview, Note: "verify.manual"}, nil
}

// statuses lists the calls in order: the recorded statuses, and "Verify".
func (r *recorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.change.Status)
	}
	return out
}

// newEnv returns a test environment running ClaimWorkflow under its registered
// name, with RecordStatus and Verify mocked by rec (each call taking delay on
// the workflow clock), and collects the upserted ReliefClaimStatus values.
func newEnv(t *testing.T, rec *recorder, delay time.Duration) (*testsuite.TestWorkflowEnvironment, *[]string) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
	env.RegisterActivity(&claim.Activities{})
	env.OnActivity("RecordStatus", mock.Anything, mock.Anything).Return(rec.RecordStatus).After(delay)
	env.OnActivity(verify, mock.Anything, mock.Anything).Return(rec.Verify).After(delay)
	// As the dispatcher starts it.
	if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		claim.SearchProgram.ValueSet(models.DemoProgram), claim.SearchStatus.ValueSet(models.StatusReceived))); err != nil {
		t.Fatal(err)
	}
	upserts := &[]string{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		v, ok := sa.GetKeyword(claim.SearchStatus)
		if !ok {
			t.Errorf("upsert without %s: %v", claim.SearchStatus.GetName(), sa)
		}
		if _, ok := sa.GetKeyword(claim.SearchProgram); ok {
			t.Errorf("the workflow rewrote %s", claim.SearchProgram.GetName())
		}
		*upserts = append(*upserts, v)
	}).Return()
	return env, upserts
}

func queryState(t *testing.T, env *testsuite.TestWorkflowEnvironment) claim.State {
	t.Helper()
	v, err := env.QueryWorkflow(claim.QueryState)
	if err != nil {
		t.Fatalf("query %s: %v", claim.QueryState, err)
	}
	var st claim.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestClaimWorkflowGoesReceivedVerifyingInReview follows one claim on the
// workflow clock: each activity takes ten minutes (record verifying, verify,
// record in_review), and the state query, the timeline writes and the status
// search attribute are checked at every step.
func TestClaimWorkflowGoesReceivedVerifyingInReview(t *testing.T) {
	rec := &recorder{}
	env, upserts := newEnv(t, rec, 10*time.Minute)
	id := uuid.New()

	type snapshot struct {
		at    time.Duration
		state claim.State
	}
	var seen []snapshot
	for _, at := range []time.Duration{time.Minute, 15 * time.Minute, 25 * time.Minute, 35 * time.Minute, 24 * time.Hour} {
		env.RegisterDelayedCallback(func() { seen = append(seen, snapshot{at, queryState(t, env)}) }, at)
	}
	// The workflow waits for a reviewer indefinitely; end the test by cancelling.
	env.RegisterDelayedCallback(env.CancelWorkflow, 25*time.Hour)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: id})

	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not finish after cancellation")
	}
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled (it must wait in review, not end)", err)
	}
	want := []snapshot{
		{time.Minute, claim.State{ClaimID: id, Status: models.StatusReceived}},
		{15 * time.Minute, claim.State{ClaimID: id, Status: models.StatusVerifying, Steps: []string{models.StatusVerifying}}},
		{25 * time.Minute, claim.State{ClaimID: id, Status: models.StatusVerifying, Steps: []string{models.StatusVerifying}}},
		{35 * time.Minute, claim.State{ClaimID: id, Status: models.StatusInReview, Steps: []string{models.StatusVerifying, models.StatusInReview}}},
		{24 * time.Hour, claim.State{ClaimID: id, Status: models.StatusInReview, Steps: []string{models.StatusVerifying, models.StatusInReview}}},
	}
	if len(seen) != len(want) {
		t.Fatalf("queried %d times, want %d: %+v", len(seen), len(want), seen)
	}
	for i := range want {
		if seen[i].at != want[i].at || seen[i].state.ClaimID != want[i].state.ClaimID || seen[i].state.Status != want[i].state.Status ||
			!slices.Equal(seen[i].state.Steps, want[i].state.Steps) {
			t.Errorf("state after %v = %+v, want %+v", seen[i].at, seen[i].state, want[i].state)
		}
	}
	if got := rec.statuses(); !slices.Equal(got, []string{models.StatusVerifying, verify, models.StatusInReview}) {
		t.Errorf("activity calls = %v, want [verifying Verify in_review]", got)
	}
	for _, c := range rec.calls {
		if c.change.ClaimID != id {
			t.Errorf("%s called for claim %s, want %s", c.change.Status, c.change.ClaimID, id)
		}
		if c.change.Status != verify && c.change.EventKey != c.change.Status {
			t.Errorf("RecordStatus(%+v): want claim %s and the status as event key (retries must dedupe)", c.change, id)
		}
	}
	if !slices.Equal(*upserts, []string{models.StatusVerifying, models.StatusInReview}) {
		t.Errorf("%s upserts = %v, want [verifying in_review]", claim.SearchStatus.GetName(), *upserts)
	}
}

// TestClaimWorkflowRetriesActivities: a database outage fails the activities
// over and over; the workflow retries each with backoff and neither skips a
// step nor runs the next one early. (The test suite caps "unlimited" retries
// at 10 attempts, so nine failures is the most it can show.)
func TestClaimWorkflowRetriesActivities(t *testing.T) {
	const failures = 9
	rec := &recorder{failures: map[string]int{models.StatusVerifying: failures, verify: 2, models.StatusInReview: 1}}
	env, _ := newEnv(t, rec, 0)
	var state claim.State
	env.RegisterDelayedCallback(func() { state = queryState(t, env) }, 24*time.Hour)
	env.RegisterDelayedCallback(env.CancelWorkflow, 25*time.Hour)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: uuid.New()})

	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	var want []string
	for range failures + 1 {
		want = append(want, models.StatusVerifying)
	}
	want = append(want, verify, verify, verify, models.StatusInReview, models.StatusInReview)
	if got := rec.statuses(); !slices.Equal(got, want) {
		t.Fatalf("activity calls = %v, want %d× verifying, 3× Verify, 2× in_review", got, failures+1)
	}
	for i, c := range rec.calls[:failures+1] {
		if c.attempt != int32(i+1) {
			t.Errorf("call %d has attempt %d: retries must be the same activity, not new ones", i, c.attempt)
		}
	}
	if state.Status != models.StatusInReview || !slices.Equal(state.Steps, []string{models.StatusVerifying, models.StatusInReview}) {
		t.Errorf("state after the outage = %+v, want in_review with steps [verifying in_review]", state)
	}
}
