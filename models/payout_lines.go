package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PayoutWorkLine is a line as the payout activities need it: with the
// decrypted account and holder. It lives in activity memory only; nothing
// may log it or put it into a workflow's history.
type PayoutWorkLine struct {
	ID          uuid.UUID
	BatchID     uuid.UUID
	Seq         int
	ClaimID     uuid.UUID
	Program     string
	BankCode    string
	Account     string
	Holder      string
	Amount      int64
	TransferKey string
	Status      string
	Checked     bool
}

// PayoutWorkLines returns the lines with seq in [from, to] that still need
// work: for the holder check, pending lines not yet checked; for transfers,
// approved lines not yet paid or failed.
func (s *Store) PayoutWorkLines(ctx context.Context, batchID uuid.UUID, from, to int, forTransfer bool) ([]PayoutWorkLine, error) {
	cond := `l.status = 'pending' AND l.checked_at IS NULL`
	if forTransfer {
		cond = `l.approved AND l.status IN ('pending','sending')`
	}
	rows, err := s.Pool.Query(ctx, `SELECT l.id, l.batch_id, l.seq, l.claim_id, l.program_code, l.bank_code, l.amount, l.transfer_key,
			l.status, l.checked_at IS NOT NULL, c.account_ciphertext, c.account_key_id, c.account_holder
		FROM payout_lines l JOIN claims c ON c.id = l.claim_id
		WHERE l.batch_id = $1 AND l.seq BETWEEN $2 AND $3 AND `+cond+` ORDER BY l.seq`, batchID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PayoutWorkLine
	for rows.Next() {
		var l PayoutWorkLine
		var ciphertext []byte
		var keyID string
		if err := rows.Scan(&l.ID, &l.BatchID, &l.Seq, &l.ClaimID, &l.Program, &l.BankCode, &l.Amount, &l.TransferKey,
			&l.Status, &l.Checked, &ciphertext, &keyID, &l.Holder); err != nil {
			return nil, err
		}
		account, err := s.Vault.Open(ciphertext, keyID, []byte(l.ClaimID.String()))
		if err != nil {
			return nil, fmt.Errorf("payout line %s: account: %w", l.ID, err) // ids only: never the account
		}
		l.Account = string(account)
		out = append(out, l)
	}
	return out, rows.Err()
}

// MarkPayoutLinesChecked records a passed holder check.
func (s *Store) MarkPayoutLinesChecked(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE payout_lines SET checked_at = coalesce(checked_at, $2) WHERE id = ANY($1)`, ids, s.Now())
	return err
}

// MarkPayoutLinesSending records that approved lines are handed to the bank.
// It is written before the first request, so a line is never at the bank
// while the database still calls it pending.
func (s *Store) MarkPayoutLinesSending(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE payout_lines SET status = 'sending', sent_at = coalesce(sent_at, $2)
		WHERE id = ANY($1) AND approved AND status = 'pending'`, ids, s.Now())
	return err
}

// MarkBatchSent hands every approved pending line of a file-channel batch to
// the bank (by the file finance uploads).
func (s *Store) MarkBatchSent(ctx context.Context, batchID uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `UPDATE payout_lines SET status = 'sending', sent_at = coalesce(sent_at, $2)
		WHERE batch_id = $1 AND approved AND status = 'pending'`, batchID, s.Now())
	return err
}

// PayoutOutcome is what settling or failing a line did.
type PayoutOutcome struct {
	LineID    uuid.UUID `json:"line_id"`
	BatchID   uuid.UUID `json:"batch_id"`
	ClaimID   uuid.UUID `json:"claim_id"`
	Amount    int64     `json:"amount"`
	BankCode  string    `json:"bank_code"`
	Status    string    `json:"status"`  // the line's status afterwards
	Changed   bool      `json:"changed"` // false: it already had this outcome
	PaidTotal int64     `json:"paid_total"`
	OwedTotal int64     `json:"owed_total"`
	Code      string    `json:"code,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// ErrPayoutLineConflict: the bank's answer contradicts the outcome already recorded.
// It never happens while the bank keeps its word; it stops the line for a human.
var ErrPayoutLineConflict = Coded(ECONFLICT, "result_conflict", "the bank's result contradicts the outcome already recorded for this line")

type lockedLine struct {
	batchID, claimID       uuid.UUID
	program, key, status   string
	bankCode, code, reason string
	amount                 int64
	approved               bool
}

func lockLine(ctx context.Context, tx pgx.Tx, lineID uuid.UUID) (*lockedLine, error) {
	l := &lockedLine{}
	err := tx.QueryRow(ctx, `SELECT batch_id, claim_id, program_code, transfer_key, status, bank_code, failure_code, failure_reason, amount, approved
		FROM payout_lines WHERE id = $1 FOR UPDATE`, lineID).
		Scan(&l.batchID, &l.claimID, &l.program, &l.key, &l.status, &l.bankCode, &l.code, &l.reason, &l.amount, &l.approved)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return l, err
}

// SettlePayoutLine records the line's successful transfer (the bank said so),
// once: the settlement row (one per line: the database's last guard), the
// ledger payment payable → clearing keyed by the line id, the entitlements
// paid and the claim's paid total, in one transaction.
func (s *Store) SettlePayoutLine(ctx context.Context, lineID uuid.UUID, bankRef, via string) (*PayoutOutcome, error) {
	outs, err := s.SettlePayoutLines(ctx, []Settlement{{LineID: lineID, BankRef: bankRef}}, via)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// Settlement is one line the bank reports as transferred.
type Settlement struct {
	LineID  uuid.UUID
	BankRef string
}

// SettlePayoutLines settles several lines in one transaction, as
// SettlePayoutLine does one. Every payment goes through the program's
// clearing account, a row all payments share; one transaction per group
// takes its lock once for the group instead of once per line. Any error
// settles none of them.
func (s *Store) SettlePayoutLines(ctx context.Context, lines []Settlement, via string) ([]*PayoutOutcome, error) {
	outs := make([]*PayoutOutcome, len(lines))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var payments []payoutPayment
		for i, l := range lines {
			o, p, err := s.settleLineTx(ctx, tx, l.LineID, l.BankRef, via)
			if err != nil {
				return err
			}
			outs[i] = o
			if p != nil {
				payments = append(payments, *p)
			}
		}
		return s.postPayoutPayments(ctx, tx, payments)
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// payoutPayment is a settled line's ledger payment, posted after every other
// write of the transaction (see SettlePayoutLines).
type payoutPayment struct {
	program         string
	claimID, lineID uuid.UUID
	batchID         uuid.UUID
	amount          int64
}

func (s *Store) postPayoutPayments(ctx context.Context, tx pgx.Tx, payments []payoutPayment) error {
	for _, p := range payments {
		if _, err := s.PostPayment(ctx, tx, p.program, p.claimID, p.amount, p.lineID.String(), p.batchID.String()); err != nil {
			return err
		}
	}
	return nil
}

// settleLineTx writes a line's settlement except its ledger payment, which
// it returns (nil when the line was paid before).
func (s *Store) settleLineTx(ctx context.Context, tx pgx.Tx, lineID uuid.UUID, bankRef, via string) (*PayoutOutcome, *payoutPayment, error) {
	l, err := lockLine(ctx, tx, lineID)
	if err != nil {
		return nil, nil, err
	}
	out := &PayoutOutcome{LineID: lineID, BatchID: l.batchID, ClaimID: l.claimID, Amount: l.amount, BankCode: l.bankCode, Status: LinePaid}
	switch {
	case l.status == LinePaid:
		return out, nil, claimTotals(ctx, tx, out)
	case l.status == LineFailed:
		return nil, nil, ErrPayoutLineConflict
	case !l.approved:
		return nil, nil, Coded(ECONFLICT, "line_not_approved", "this line is not part of an approved batch")
	}
	now := s.Now()
	if _, err := tx.Exec(ctx, `UPDATE payout_lines SET status = 'paid', bank_ref = $2, sent_at = coalesce(sent_at, $3),
		settled_at = $3, settled_via = $4 WHERE id = $1`, lineID, bankRef, now, via); err != nil {
		return nil, nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO payout_settlements (line_id, transfer_key, claim_id, amount, bank_ref, via, settled_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, lineID, l.key, l.claimID, l.amount, bankRef, via, now); err != nil {
		return nil, nil, err
	}
	// The line's entitlements become paid; they must make up its amount.
	rows, err := tx.Query(ctx, `UPDATE entitlements SET status = 'paid' WHERE id IN
		(SELECT entitlement_id FROM payout_line_entitlements WHERE line_id = $1 AND NOT released) AND status = 'batched' AND batch_id = $2
		RETURNING amount`, lineID, l.batchID)
	if err != nil {
		return nil, nil, err
	}
	var linked int64
	for rows.Next() {
		var a int64
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return nil, nil, err
		}
		linked += a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if linked != l.amount {
		return nil, nil, fmt.Errorf("payout line %s: its entitlements (%d won) do not make up the line (%d won)", lineID, linked, l.amount)
	}
	if err := claimTotals(ctx, tx, out); err != nil {
		return nil, nil, err
	}
	out.PaidTotal += l.amount // the payment, posted at the end of the transaction, adds it
	out.Changed = true
	return out, &payoutPayment{program: l.program, claimID: l.claimID, lineID: lineID, batchID: l.batchID, amount: l.amount}, nil
}

func claimTotals(ctx context.Context, q Querier, out *PayoutOutcome) error {
	return q.QueryRow(ctx, `SELECT paid_total, owed_total FROM claims WHERE id = $1`, out.ClaimID).Scan(&out.PaidTotal, &out.OwedTotal)
}

// FailPayoutLine records that the line will not be paid (the bank refused the
// transfer or the holder check failed) and returns its entitlements to owed,
// out of the batch, so a later batch pays them. When the account itself is
// wrong (IsAccountFailure), the claim is flagged in the same transaction and
// no batch takes it until the merchant corrects the account. Once: a failed
// line stays failed.
func (s *Store) FailPayoutLine(ctx context.Context, lineID uuid.UUID, code, reason, via string) (*PayoutOutcome, error) {
	var out *PayoutOutcome
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = s.failLineTx(ctx, tx, lineID, code, reason, via)
		return err
	})
	return out, err
}

func (s *Store) failLineTx(ctx context.Context, tx pgx.Tx, lineID uuid.UUID, code, reason, via string) (*PayoutOutcome, error) {
	l, err := lockLine(ctx, tx, lineID)
	if err != nil {
		return nil, err
	}
	out := &PayoutOutcome{LineID: lineID, BatchID: l.batchID, ClaimID: l.claimID, Amount: l.amount, BankCode: l.bankCode,
		Status: LineFailed, Code: code, Reason: reason}
	switch l.status {
	case LineFailed:
		out.Code, out.Reason = l.code, l.reason
		return out, claimTotals(ctx, tx, out)
	case LinePaid:
		return nil, ErrPayoutLineConflict
	}
	if _, err := tx.Exec(ctx, `UPDATE payout_lines SET status = 'failed', failure_code = $2, failure_reason = $3,
		settled_at = $4, settled_via = $5 WHERE id = $1`, lineID, code, reason, s.Now(), via); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE entitlements SET status = 'owed', batch_id = NULL WHERE id IN
		(SELECT entitlement_id FROM payout_line_entitlements WHERE line_id = $1 AND NOT released) AND status = 'batched' AND batch_id = $2`,
		lineID, l.batchID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE payout_line_entitlements SET released = true WHERE line_id = $1`, lineID); err != nil {
		return nil, err
	}
	if IsAccountFailure(code) {
		// Paying the same account again would fail again: batches skip the
		// claim until its merchant corrects the account (CorrectClaimBank).
		if _, err := tx.Exec(ctx, `UPDATE claims SET account_check_failed_at = $2, account_check_failure = $3 WHERE id = $1`,
			l.claimID, s.Now(), code); err != nil {
			return nil, err
		}
	}
	out.Changed = true
	return out, claimTotals(ctx, tx, out)
}

// FinishPayoutPrecheck ends the holder check: the batch awaits approval, or
// is completed when no line passed. It returns the batch's status.
func (s *Store) FinishPayoutPrecheck(ctx context.Context, batchID uuid.UUID) (string, error) {
	var status string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT status FROM payout_batches WHERE id = $1 FOR UPDATE`, batchID).Scan(&status); err != nil {
			return err
		}
		if status != BatchChecking {
			return nil
		}
		var unchecked, passed int
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending' AND checked_at IS NULL),
				count(*) FILTER (WHERE status = 'pending')
			FROM payout_lines WHERE batch_id = $1`, batchID).Scan(&unchecked, &passed); err != nil {
			return err
		}
		if unchecked > 0 {
			return fmt.Errorf("payout batch %s: %d lines not checked yet", batchID, unchecked)
		}
		status = BatchAwaitingApproval
		var completed *time.Time
		if passed == 0 {
			status = BatchCompleted
			now := s.Now()
			completed = &now
		}
		_, err := tx.Exec(ctx, `UPDATE payout_batches SET status = $2, checked_at = $3, completed_at = $4 WHERE id = $1`,
			batchID, status, s.Now(), completed)
		return err
	})
	return status, err
}

// PayoutProgress counts an approved batch's lines still at the bank (not
// paid or failed).
func (s *Store) PayoutProgress(ctx context.Context, batchID uuid.UUID) (outstanding int, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND approved AND status IN ('pending','sending')`, batchID).
		Scan(&outstanding)
	return outstanding, err
}

// CompletePayoutBatch marks an approved batch completed once every approved
// line is paid or failed; it reports whether the batch is completed.
func (s *Store) CompletePayoutBatch(ctx context.Context, batchID uuid.UUID) (bool, error) {
	outstanding, err := s.PayoutProgress(ctx, batchID)
	if err != nil || outstanding > 0 {
		return false, err
	}
	_, err = s.Pool.Exec(ctx, `UPDATE payout_batches SET status = 'completed', completed_at = coalesce(completed_at, $2)
		WHERE id = $1 AND status = 'transferring'`, batchID, s.Now())
	return err == nil, err
}

// PayoutNotice is a settled line whose claim has not been told yet.
type PayoutNotice struct {
	PayoutOutcome
	Stage string // "holder_check" when it failed before approval
}

// PayoutLinesToNotify returns up to limit settled lines of the batch whose
// outcome is not on the claim's timeline yet.
func (s *Store) PayoutLinesToNotify(ctx context.Context, batchID uuid.UUID, limit int) ([]PayoutNotice, error) {
	rows, err := s.Pool.Query(ctx, `SELECT l.id, l.batch_id, l.claim_id, l.amount, l.bank_code, l.status, l.failure_code, l.failure_reason,
			coalesce(l.settled_via, ''), c.paid_total, c.owed_total
		FROM payout_lines l JOIN claims c ON c.id = l.claim_id
		WHERE l.batch_id = $1 AND NOT l.notified AND l.status IN ('paid','failed') ORDER BY l.seq LIMIT $2`, batchID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PayoutNotice, error) {
		var n PayoutNotice
		err := r.Scan(&n.LineID, &n.BatchID, &n.ClaimID, &n.Amount, &n.BankCode, &n.Status, &n.Code, &n.Reason, &n.Stage,
			&n.PaidTotal, &n.OwedTotal)
		n.Changed = true
		return n, err
	})
}

// MarkPayoutLinesNotified records that the claims' timelines have the lines'
// outcomes (once written; writing them again would change nothing).
func (s *Store) MarkPayoutLinesNotified(ctx context.Context, lineIDs []uuid.UUID) error {
	if len(lineIDs) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE payout_lines SET notified = true WHERE id = ANY($1)`, lineIDs)
	return err
}

// ClaimStatusOf returns a claim's current status.
func (s *Store) ClaimStatusOf(ctx context.Context, claimID uuid.UUID) (string, error) {
	var st string
	err := s.Pool.QueryRow(ctx, `SELECT status FROM claims WHERE id = $1`, claimID).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return st, err
}
