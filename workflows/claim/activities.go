package claim

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
)

// Activities are the claim workflow's side effects. Each is idempotent: timeline
// writes carry an event key and decisions the update id, so a retried activity
// changes nothing.
type Activities struct {
	Store *models.Store
	// NTS checks whether a business operates; nil means the deterministic sandbox.
	NTS models.BusinessStatusChecker
}

// StatusChange records a status on the claim's timeline.
type StatusChange struct {
	ClaimID  uuid.UUID `json:"claim_id"`
	EventKey string    `json:"event_key"`
	Status   string    `json:"status"`
	Note     string    `json:"note"`
}

// RecordStatus writes the timeline row and moves the claim's status, once.
func (a *Activities) RecordStatus(ctx context.Context, in StatusChange) error {
	return a.Store.SetClaimStatus(ctx, in.ClaimID, in.EventKey, in.Status, "system", in.Note)
}

// domain turns a models.Error (a decision the database refused: segregation of
// duties, a state conflict) into a non-retryable update error; anything else
// (the database is down) is retried.
func domain(err error) error {
	var e *models.Error
	if errors.As(err, &e) && e.Kind != models.EINTERNAL && e.Kind != models.EUNAVAILABLE {
		return updateError(e.Kind, e.Code, e.Message)
	}
	return err
}

// Verify runs the automated checks (estimate, risk flags, fast track) and
// records the outcome.
func (a *Activities) Verify(ctx context.Context, claimID uuid.UUID) (*models.ReviewContext, error) {
	rc, err := a.Store.VerifyClaim(ctx, a.NTS, claimID)
	return rc, domain(err)
}

// LoadReview loads the review context of a claim whose workflow started
// before verification existed.
func (a *Activities) LoadReview(ctx context.Context, claimID uuid.UUID) (*models.ReviewContext, error) {
	rc, err := a.Store.ReviewContextOf(ctx, claimID)
	return rc, domain(err)
}

// RecordDecision writes a reviewer's decision.
func (a *Activities) RecordDecision(ctx context.Context, d models.DecisionRecord) (string, error) {
	status, err := a.Store.RecordDecision(ctx, d)
	return status, domain(err)
}

// RecordInfoAnswer writes the merchant's answer to an info request.
func (a *Activities) RecordInfoAnswer(ctx context.Context, in models.InfoAnswer) error {
	return domain(a.Store.RecordInfoAnswer(ctx, in))
}

// Deadline is a timer's effect on a claim.
type Deadline struct {
	ClaimID uuid.UUID `json:"claim_id"`
	Key     string    `json:"key"`
	At      time.Time `json:"at"`
}

// RemindInfo notes a reminder of an open info request.
func (a *Activities) RemindInfo(ctx context.Context, d Deadline) error {
	return a.Store.RemindInfoRequest(ctx, d.ClaimID, d.Key, d.At)
}

// ExpireInfo closes an info request whose deadline passed.
func (a *Activities) ExpireInfo(ctx context.Context, d Deadline) error {
	return a.Store.ExpireInfoRequest(ctx, d.ClaimID, d.Key, d.At)
}

// RecordAppeal files the merchant's appeal.
func (a *Activities) RecordAppeal(ctx context.Context, in models.AppealRecord) error {
	return domain(a.Store.RecordAppeal(ctx, in))
}

// CloseRejected closes a rejected claim once its appeal window has passed.
func (a *Activities) CloseRejected(ctx context.Context, d Deadline) error {
	return a.Store.CloseRejectedClaim(ctx, d.ClaimID, d.At)
}
