// Package payout is PayoutBatchWorkflow: one durable process per payout batch,
// from the holder check at the bank through a second finance user's approval
// (a Temporal Update with a validator) to transfers with bounded concurrency,
// settlement in the ledger and the merchants' timelines.
//
// Exactly once. Each line has one transfer key (models.TransferKeyFor: its
// random id, no personal data); bank.TransferOnce looks the key up before any
// re-send, so retries, crashes, a stopped worker or a lost response never send
// a line twice; the bank executes a key at most once; and the database keeps at
// most one successful transfer per line (payout_settlements' primary key) and
// one ledger payment per line (the ledger's idempotency key). A line is failed
// only on the bank's definite answer; while the outcome is unknown it is
// retried, never given up.
//
// The workflow carries ids and counts only: account numbers, holders and names
// are read and decrypted inside activities. Lines are worked in pages (ranges
// of the line sequence), so a batch of any size stays a few dozen events.
package payout

import (
	"time"

	"github.com/google/uuid"
)

// TaskQueue is the programs task queue (workflows.ProgramsTaskQueue), where
// program-level processes and their activities run.
const TaskQueue = "relief-programs"

// WorkflowName is the registered name of PayoutBatchWorkflow.
const WorkflowName = "PayoutBatchWorkflow"

// Handler names.
const (
	QueryState    = "state"
	UpdateApprove = "approve"
	SignalResults = "results-imported" // a bank result file was imported: look again
)

// WorkflowID derives the workflow ID from the batch's random UUID.
func WorkflowID(batchID uuid.UUID) string { return "payout-batch-" + batchID.String() }

// Input starts a PayoutBatchWorkflow. Everything else is read from PostgreSQL.
type Input struct {
	BatchID uuid.UUID `json:"batch_id"`
	Tuning  Tuning    `json:"tuning"`
}

// Tuning bounds the work; zero values take the defaults.
type Tuning struct {
	PageSize    int `json:"page_size,omitempty"`   // lines per activity
	Parallel    int `json:"parallel,omitempty"`    // page activities at once
	Concurrency int `json:"concurrency,omitempty"` // bank calls at once within a page
	// HeartbeatTimeout: how soon a page whose worker died is retried elsewhere.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// ResultPoll: how often a file-channel batch looks for imported results
	// without being signalled.
	ResultPoll time.Duration `json:"result_poll,omitempty"`
}

// Defaults of Tuning.
const (
	DefaultPageSize         = 200
	DefaultParallel         = 4
	DefaultConcurrency      = 8
	DefaultHeartbeatTimeout = 30 * time.Second
	DefaultResultPoll       = 30 * time.Minute
)

func (t Tuning) withDefaults() Tuning {
	if t.PageSize <= 0 {
		t.PageSize = DefaultPageSize
	}
	if t.Parallel <= 0 {
		t.Parallel = DefaultParallel
	}
	if t.Concurrency <= 0 {
		t.Concurrency = DefaultConcurrency
	}
	if t.HeartbeatTimeout <= 0 {
		t.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if t.ResultPoll <= 0 {
		t.ResultPoll = DefaultResultPoll
	}
	return t
}

// ApproveRequest is the approve Update's argument: ids only.
type ApproveRequest struct {
	ApproverID uuid.UUID `json:"approver_id"`
	RequestID  string    `json:"request_id,omitempty"` // the HTTP request, for the audit log
}

// ApproveResult is the approve Update's result.
type ApproveResult struct {
	Status        string `json:"status"`
	ApprovedCount int    `json:"approved_count"`
	ApprovedTotal int64  `json:"approved_total"`
}

// State is what the state query returns.
type State struct {
	BatchID    uuid.UUID  `json:"batch_id"`
	Status     string     `json:"status"`
	Channel    string     `json:"channel"`
	LineCount  int        `json:"line_count"`
	CreatedBy  uuid.UUID  `json:"created_by"`
	ApprovedBy *uuid.UUID `json:"approved_by,omitempty"`
	Checked    int        `json:"checked"` // lines through the holder check
	Paid       int        `json:"paid"`
	Failed     int        `json:"failed"`
}

// Result is the workflow's result.
type Result struct {
	Status      string `json:"status"`
	Paid        int    `json:"paid"`
	Failed      int    `json:"failed"`
	PaidTotal   int64  `json:"paid_total"`
	FailedTotal int64  `json:"failed_total"`
}

// BatchInfo is what LoadBatch reads.
type BatchInfo struct {
	Status     string     `json:"status"`
	Channel    string     `json:"channel"`
	LineCount  int        `json:"line_count"`
	CreatedBy  uuid.UUID  `json:"created_by"`
	ApprovedBy *uuid.UUID `json:"approved_by,omitempty"`
}

// PageInput names a page of lines by sequence range.
type PageInput struct {
	BatchID     uuid.UUID `json:"batch_id"`
	From        int       `json:"from"`
	To          int       `json:"to"`
	Concurrency int       `json:"concurrency"`
}

// PageResult counts what a page activity did.
type PageResult struct {
	Checked int `json:"checked,omitempty"`
	Paid    int `json:"paid,omitempty"`
	Failed  int `json:"failed,omitempty"`
}

// ApproveInput is ApproveBatch's argument.
type ApproveInput struct {
	BatchID    uuid.UUID `json:"batch_id"`
	ApproverID uuid.UUID `json:"approver_id"`
	RequestID  string    `json:"request_id,omitempty"`
}

// Application error types the workflow and its activities use; the API codes
// of the approval refusals are the same strings.
const (
	ErrTypeSegregation     = "segregation_of_duties"
	ErrTypeAlreadyApproved = "already_approved"
	ErrTypePrecheckRunning = "precheck_running"
	ErrTypeBatchClosed     = "batch_closed"
	ErrTypeNotFound        = "not_found"
	ErrTypeInvalid         = "invalid_request"
	ErrTypeOutcomeUnknown  = "transfer_outcome_unknown" // retryable: look the keys up again later
	ErrTypeNoBank          = "bank_not_configured"      // retryable: until a worker with a bank runs
)
