// Package feewaiver is the FeeWaiverWorkflow: one durable process per
// program. It sleeps on a durable timer until the promotion period ends plus
// a settlement lag (the platform's ledger for the last days arrives late),
// then refunds each merchant's commission in the period as a fee-waiver
// entitlement, in pages. A program admin may run it again at any time after
// the period (Update "run"); a run never duplicates an entitlement, so a
// later run only adds merchants who filed since or lines the budget could not
// cover before.
package feewaiver

import (
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
)

// TaskQueue is the programs task queue (workflows.ProgramsTaskQueue).
const TaskQueue = allocation.TaskQueue

// WorkflowName is the registered name of FeeWaiverWorkflow.
const WorkflowName = "FeeWaiverWorkflow"

// Update and query names.
const (
	UpdateRun  = "run"
	QueryState = "state"
)

// DefaultSettlementLag is how long after the period's end the automatic run
// waits for the platform's settled sales ledger.
const DefaultSettlementLag = 72 * time.Hour

// PageSize is how many claims one activity (one transaction) handles.
const PageSize = 500

// WorkflowID is derived from the program code: no personal data, and one
// workflow per program whoever starts it.
func WorkflowID(program string) string { return "feewaiver-" + program }

// Input starts a FeeWaiverWorkflow; TimerDone and Runs carry state across
// continue-as-new.
type Input struct {
	Program       string        `json:"program"`
	SettlementLag time.Duration `json:"settlement_lag"`
	TimerDone     bool          `json:"timer_done,omitempty"`
	Runs          int           `json:"runs,omitempty"`
}

// RunRequest is the argument of the run update.
type RunRequest struct {
	By uuid.UUID `json:"by"`
}

// State is what the query returns.
type State struct {
	Program   string               `json:"program"`
	HasPeriod bool                 `json:"has_period"`
	EndsAt    time.Time            `json:"ends_at"`
	DueAt     time.Time            `json:"due_at"` // when the automatic run happens
	TimerDone bool                 `json:"timer_done"`
	Running   bool                 `json:"running"`
	Runs      int                  `json:"runs"`
	Last      *models.FeeWaiverRun `json:"last,omitempty"`
}

// Activity inputs.
type (
	StartInput struct {
		Program string `json:"program"`
		RunKey  string `json:"run_key"`
		Trigger string `json:"trigger"`
	}
	PageInput struct {
		Program string    `json:"program"`
		RunKey  string    `json:"run_key"`
		After   uuid.UUID `json:"after"`
		Limit   int       `json:"limit"`
	}
)
