package claim

import (
	"context"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
)

// Activities are the claim workflow's side effects. Each is idempotent: timeline
// writes carry an event key, so a retried activity changes nothing.
type Activities struct {
	Store *models.Store
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
