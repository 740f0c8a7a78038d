// Package allocation is the AllocationWorkflow: one durable process per
// pre-purchase tranche. It stores previews as drafts (an Update), takes the
// approval as an Update whose validator enforces segregation of duties, writes
// the purchase orders in one transaction (an activity: set-based SQL, never
// lines carried in history), then tells each claim its allocation in pages.
// PostgreSQL stays the system of record; the workflow only sequences it.
package allocation

import (
	"github.com/google/uuid"
)

// TaskQueue is where program-level workflows run; it equals
// workflows.ProgramsTaskQueue (a test checks), which cannot be imported here
// because package workflows registers this one.
const TaskQueue = "relief-programs"

// WorkflowName is the registered name of AllocationWorkflow.
const WorkflowName = "AllocationWorkflow"

// Update and query names.
const (
	UpdatePreview = "preview"
	UpdateApprove = "approve"
	QueryState    = "state"
)

// Paging: claims told per activity, approved claims swept per activity. A
// page is one transaction of a few hundred rows; a tranche of thousands of
// orders is a few dozen events, far inside Temporal's limits.
const (
	NotifyPageSize = 200
	SweepPageSize  = 500
)

// WorkflowID derives the workflow ID from the tranche's random UUID: no
// personal data, and deterministic so any number of starts meet one workflow.
func WorkflowID(trancheID uuid.UUID) string { return "tranche-" + trancheID.String() }

// Input starts an AllocationWorkflow. Status and PreviewVersion are the
// tranche's state in PostgreSQL when the workflow starts (a continue-as-new
// carries them on).
type Input struct {
	TrancheID      uuid.UUID `json:"tranche_id"`
	Program        string    `json:"program"`
	CreatedBy      uuid.UUID `json:"created_by"`
	Status         string    `json:"status,omitempty"`
	PreviewVersion int       `json:"preview_version,omitempty"`
	Swept          bool      `json:"swept,omitempty"` // the compensation sweep already ran
}

// PreviewRequest is the argument of the preview update.
type PreviewRequest struct {
	By uuid.UUID `json:"by"`
}

// ApproveRequest is the argument of the approve update. PreviewVersion, when
// not 0, is the draft version the approver looked at.
type ApproveRequest struct {
	ApproverID     uuid.UUID `json:"approver_id"`
	PreviewVersion int       `json:"preview_version"`
}

// State is what the query returns.
type State struct {
	TrancheID      uuid.UUID `json:"tranche_id"`
	Status         string    `json:"status"`
	PreviewVersion int       `json:"preview_version"`
	PurchaseOrders int       `json:"purchase_orders"`
	Notified       int       `json:"notified"`
}

// Activity inputs.
type (
	PreviewInput struct {
		TrancheID uuid.UUID `json:"tranche_id"`
		By        uuid.UUID `json:"by"`
	}
	ApproveInput struct {
		TrancheID      uuid.UUID `json:"tranche_id"`
		ApproverID     uuid.UUID `json:"approver_id"`
		PreviewVersion int       `json:"preview_version"`
	}
	NotifyInput struct {
		TrancheID uuid.UUID `json:"tranche_id"`
		Limit     int       `json:"limit"`
	}
	SweepInput struct {
		Program string    `json:"program"`
		After   uuid.UUID `json:"after"`
		Limit   int       `json:"limit"`
	}
)
