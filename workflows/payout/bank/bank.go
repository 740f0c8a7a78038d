// Package bank is the adapter between payout activities and whatever moves the
// money: the sandbox bank (`relief banksim`) in dev and tests, a real bank or
// payment provider in production.
//
// Every transfer carries a caller-chosen idempotency key. The bank executes a key
// at most once and answers every later Transfer or Lookup with the first result,
// so a caller that does not know whether a transfer happened (an *AmbiguousError)
// looks the key up and re-sends with the same key only when the bank has no
// record of it. TransferOnce does exactly that.
//
// Account numbers and holder names are personal data: nothing in this package
// logs them or puts them into error messages.
package bank

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Bank moves money. Implementations must be safe for concurrent use.
type Bank interface {
	// InquireHolder returns the name of the account's holder (예금주 조회).
	// It has no side effects, so any error may simply be retried.
	InquireHolder(ctx context.Context, bankCode, account string) (holder string, err error)
	// Transfer executes req at most once per req.Key. It returns nil only for a
	// succeeded (or, at banks that settle later, pending) transfer; a rejected
	// one comes back as its failed result together with a *PermanentError.
	Transfer(ctx context.Context, req TransferRequest) (TransferResult, error)
	// Lookup reports what the bank did with key; Status is StatusNotFound when
	// it never received (or never committed) a transfer with that key.
	Lookup(ctx context.Context, key string) (TransferResult, error)
}

// TransferRequest is one credit transfer to a payee's account, in won.
type TransferRequest struct {
	Key      string `json:"key"` // idempotency key: 1–128 of [A-Za-z0-9._:-], starting alphanumeric
	BankCode string `json:"bank_code"`
	Account  string `json:"account"`
	Holder   string `json:"holder,omitempty"` // checked against the bank's record when set
	Amount   int64  `json:"amount"`
	Memo     string `json:"memo,omitempty"` // shown on the payee's statement
}

// Status is the state of a transfer at the bank.
type Status string

const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusPending   Status = "pending" // accepted, not settled yet: look it up later
	StatusNotFound  Status = "not_found"
)

// TransferResult is the bank's answer for one key; replays return it unchanged.
type TransferResult struct {
	Key            string    `json:"key"`
	Status         Status    `json:"status"`
	FailureCode    string    `json:"failure_code,omitempty"` // one of the Code* constants when failed
	FailureMessage string    `json:"failure_message,omitempty"`
	BankRef        string    `json:"bank_ref,omitempty"` // the bank's own transaction reference
	At             time.Time `json:"at"`                 // when the bank processed it
}

// Failure codes: the bank did not move money and will give the same answer again.
const (
	CodeInvalidAccount  = "invalid_account"      // malformed, closed or unknown account
	CodeHolderMismatch  = "holder_mismatch"      // the holder sent is not the account's holder
	CodeDailyLimit      = "daily_limit_exceeded" // the payee account's daily limit would be exceeded
	CodeUnsupportedBank = "unsupported_bank"     // the bank code is not served
	CodeKeyConflict     = "idempotency_conflict" // the key already names a different transfer: a caller bug
	CodeInvalidRequest  = "invalid_request"      // the request itself is malformed
)

// PermanentError says the bank definitely did not execute the request and that
// re-sending it cannot change that. Match a code with errors.Is(err, ErrHolderMismatch).
type PermanentError struct {
	Code    string
	Message string
}

func (e *PermanentError) Error() string {
	if e.Message == "" {
		return "bank: " + e.Code
	}
	return "bank: " + e.Code + ": " + e.Message
}

// Is makes the Err* sentinels match any PermanentError with the same code.
func (e *PermanentError) Is(target error) bool {
	t, ok := target.(*PermanentError)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidAccount  = &PermanentError{Code: CodeInvalidAccount}
	ErrHolderMismatch  = &PermanentError{Code: CodeHolderMismatch}
	ErrDailyLimit      = &PermanentError{Code: CodeDailyLimit}
	ErrUnsupportedBank = &PermanentError{Code: CodeUnsupportedBank}
	ErrKeyConflict     = &PermanentError{Code: CodeKeyConflict}
	ErrInvalidRequest  = &PermanentError{Code: CodeInvalidRequest}
)

// ErrAmbiguous matches every *AmbiguousError.
var ErrAmbiguous = errors.New("bank: outcome unknown")

// AmbiguousError says the request may or may not have been executed: a timeout,
// a 5xx, a reset connection, a lost or unreadable response, or a transfer still
// pending. Look the key up before re-sending it (re-sending with the same key is
// safe too; a new key is not).
type AmbiguousError struct {
	Op  string // "transfer", "lookup" or "holder-inquiry"
	Key string // the transfer key, when there is one
	Err error
}

func (e *AmbiguousError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("bank: %s %s: outcome unknown: %v", e.Op, e.Key, e.Err)
	}
	return fmt.Sprintf("bank: %s: outcome unknown: %v", e.Op, e.Err)
}

func (e *AmbiguousError) Unwrap() error        { return e.Err }
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// IsPermanent reports whether err says the bank definitely did not move money.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// IsAmbiguous reports whether the outcome behind err is unknown.
func IsAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguous) }

// errPending is why TransferOnce treats a pending transfer as not finished.
var errPending = errors.New("transfer pending")

// TransferOnce brings req to a final result without ever sending it twice in a
// way that could debit twice: it looks the key up first and sends only when the
// bank has no record of it. It is meant to be called again on every retry, from
// any worker, after any crash. It returns nil only for a succeeded transfer, a
// *PermanentError for a failed one, and an *AmbiguousError (retry later) while
// the outcome is unknown or still pending.
func TransferOnce(ctx context.Context, b Bank, req TransferRequest) (TransferResult, error) {
	res, err := b.Lookup(ctx, req.Key)
	if err != nil {
		return res, err
	}
	if res.Status == StatusNotFound {
		if res, err = b.Transfer(ctx, req); err != nil {
			return res, err
		}
	}
	switch res.Status {
	case StatusSucceeded:
		return res, nil
	case StatusFailed:
		return res, ResultError(res)
	default:
		return res, &AmbiguousError{Op: "transfer", Key: req.Key, Err: fmt.Errorf("%w (status %q)", errPending, res.Status)}
	}
}

// ResultError is the *PermanentError for a failed result, nil otherwise.
func ResultError(r TransferResult) error {
	if r.Status != StatusFailed {
		return nil
	}
	return &PermanentError{Code: r.FailureCode, Message: r.FailureMessage}
}
