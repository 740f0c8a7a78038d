// Package claim is the ClaimWorkflow: one durable process per claim, from
// receipt through verification to review (and, later, payment). PostgreSQL stays
// the system of record; the workflow drives state changes through activities.
package claim

import (
	"errors"
	"strings"

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
	// Review is filled in by the query handler (not carried between steps).
	Review *ReviewState `json:"review,omitempty"`
}

// Search attributes carry program code and status only, never personal data.
var (
	SearchProgram = temporal.NewSearchAttributeKeyKeyword("ReliefProgram")
	SearchStatus  = temporal.NewSearchAttributeKeyKeyword("ReliefClaimStatus")
)

// Reviewer decisions, info answers and appeals are Updates with validators.
const (
	UpdateDecision = "decision" // DecisionRequest → UpdateResult (reviewer, approver)
	UpdateInfo     = "info"     // InfoRequest → UpdateResult (the merchant answers an info request)
	UpdateAppeal   = "appeal"   // AppealRequest → UpdateResult (the merchant appeals a rejection)
)

// versionVerification marks the change that added automated verification and
// review decisions; histories recorded before it replay the first version.
const versionVerification = "verification-and-review"

// DecisionRequest is a reviewer's or approver's decision. Amount is nil for
// "the computed compensation".
type DecisionRequest struct {
	Action     string    `json:"action"` // approve | reject | request_info
	Amount     *int64    `json:"amount,omitempty"`
	ReasonCode string    `json:"reason_code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	ActorID    uuid.UUID `json:"actor_id"`
	ActorRoles []string  `json:"actor_roles"`
	IP         string    `json:"ip,omitempty"`
}

// InfoRequest is the merchant's answer to an info request.
type InfoRequest struct {
	ActorID uuid.UUID `json:"actor_id"`
	Note    string    `json:"note"`
	IP      string    `json:"ip,omitempty"`
}

// AppealRequest is the merchant's appeal of a rejection.
type AppealRequest struct {
	ActorID uuid.UUID `json:"actor_id"`
	Reason  string    `json:"reason"`
	IP      string    `json:"ip,omitempty"`
}

// UpdateResult is what every update answers.
type UpdateResult struct {
	Status string `json:"status"`
	Amount int64  `json:"amount,omitempty"`
}

// Update errors are application errors whose type is "<kind>/<code>": kind is
// one of models' E* kinds (it decides the HTTP status), code the API error code.
func updateError(kind, code, message string) error {
	return temporal.NewApplicationErrorWithOptions(message, kind+"/"+code, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// ErrorCode splits an update error's type into kind and code; ok is false for
// errors that are not update errors.
func ErrorCode(err error) (kind, code, message string, ok bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return "", "", "", false
	}
	kind, code, ok = strings.Cut(appErr.Type(), "/")
	return kind, code, appErr.Message(), ok
}
