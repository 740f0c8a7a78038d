// Package claim is the ClaimWorkflow: one durable process per claim, from
// receipt through verification to review (and, later, payment). PostgreSQL stays
// the system of record; the workflow drives state changes through activities.
package claim

import (
	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
)

// TaskQueue is where claim workflows and their activities run.
const TaskQueue = "relief-claims"

// WorkflowName is the registered name of ClaimWorkflow.
const WorkflowName = "ClaimWorkflow"

// QueryState returns the workflow's State.
const QueryState = "state"

// WorkflowID derives the workflow ID from the claim's random UUID: no personal
// data, and deterministic so the outbox dispatcher can start it any number of times.
func WorkflowID(claimID uuid.UUID) string { return "claim-" + claimID.String() }

// Input starts a ClaimWorkflow.
type Input struct {
	ClaimID uuid.UUID `json:"claim_id"`
}

// State is what the query handler exposes.
type State struct {
	ClaimID uuid.UUID `json:"claim_id"`
	Status  string    `json:"status"`
	Steps   []string  `json:"steps"`
}

// Search attributes carry program code and status only, never personal data.
var (
	SearchProgram = temporal.NewSearchAttributeKeyKeyword("ReliefProgram")
	SearchStatus  = temporal.NewSearchAttributeKeyKeyword("ReliefClaimStatus")
)
