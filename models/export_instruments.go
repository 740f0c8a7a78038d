package models

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
)

// The exports of the instruments (00005) and payouts (00006) areas, read
// straight from their tables inside the export's snapshot.

// ExportTranche is an approved tranche whose purchase orders are exported.
type ExportTranche struct {
	ID     uuid.UUID
	Name   string
	Budget int64
}

// AllocationTranches lists a program's approved tranches in order.
func AllocationTranches(ctx context.Context, tx pgx.Tx, program string) ([]ExportTranche, error) {
	rows, err := tx.Query(ctx, `SELECT id, name, budget FROM tranches
		WHERE program_code = $1 AND status IN ('approved', 'notified') ORDER BY seq`, program)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportTranche, error) {
		var t ExportTranche
		err := r.Scan(&t.ID, &t.Name, &t.Budget)
		return t, err
	})
}

// AllocationLineCount is the number of purchase-order lines of a program's approved tranches.
func AllocationLineCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	return exportCount(ctx, tx, `SELECT count(*) FROM purchase_order_items i
		JOIN purchase_orders po ON po.id = i.po_id JOIN tranches t ON t.id = po.tranche_id
		WHERE po.program_code = $1 AND t.status IN ('approved', 'notified')`, program)
}

// FeeWaiverFacts are the fee-waiver run's figures for the 정보 sheet.
type FeeWaiverFacts struct {
	Remainder int64 // 끝수: won under 10 left in the budget
	Unfunded  int64 // lines the budget could not cover
}

// FeeWaiverCount is the number of lines FeeWaiverRows yields, with the run's facts.
func FeeWaiverCount(ctx context.Context, tx pgx.Tx, program string) (int64, FeeWaiverFacts, error) {
	var n int64
	var f FeeWaiverFacts
	err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'entitled'),
			coalesce(sum(remainder) FILTER (WHERE status = 'entitled'), 0), count(*) FILTER (WHERE status = 'unfunded')
		FROM fee_waiver_lines WHERE program_code = $1`, program).Scan(&n, &f.Remainder, &f.Unfunded)
	return n, f, err
}

// FeeWaiverRows yields the fee waivers that became entitlements, by receipt
// number. Waived is the entitled amount (the waived commission truncated to
// 10 won), so the sheet's total is what the program owes.
func FeeWaiverRows(ctx context.Context, tx pgx.Tx, program string) iter.Seq2[exports.FeeWaiverRow, error] {
	return exportCursor(ctx, tx, `SELECT c.receipt_no, c.brn, c.business_name, c.category, f.gross_sales, f.rate_bp, f.amount
		FROM fee_waiver_lines f JOIN claims c ON c.id = f.claim_id
		WHERE f.program_code = $1 AND f.status = 'entitled' ORDER BY c.receipt_no`, []any{program},
		func(r pgx.Rows) (exports.FeeWaiverRow, error) {
			var w exports.FeeWaiverRow
			err := r.Scan(&w.ReceiptNo, &w.BRN, &w.BusinessName, &w.Category, &w.Sales, &w.RateBP, &w.Waived)
			return w, err
		})
}

// payoutLineLabels are the Korean names of the payout line statuses.
var payoutLineLabels = map[string]string{"pending": "대기", "sending": "이체 중", "paid": "지급 완료", "failed": "실패"}

// PayoutLineCount is the number of lines PayoutLineRows yields.
func PayoutLineCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	return exportCount(ctx, tx, `SELECT count(*) FROM payout_lines WHERE program_code = $1`, program)
}

// PayoutLineRows yields a program's payout lines, batch by batch in the order
// the batches were made. The account number is decrypted here; the payout
// sheet masks it unless the reader may see it in full.
func (s *Store) PayoutLineRows(ctx context.Context, tx pgx.Tx, program string) iter.Seq2[exports.PayoutRow, error] {
	return exportCursor(ctx, tx, `SELECT pl.batch_id, c.id, c.receipt_no, c.brn, c.business_name, pl.bank_code,
			c.account_ciphertext, c.account_key_id, c.account_holder, pl.amount, pl.status, pl.failure_reason,
			pl.transfer_key, CASE WHEN pl.status = 'paid' THEN pl.settled_at END
		FROM payout_lines pl
		JOIN payout_batches b ON b.id = pl.batch_id
		JOIN claims c ON c.id = pl.claim_id
		WHERE pl.program_code = $1
		ORDER BY b.created_at, b.id, pl.seq`, []any{program},
		func(r pgx.Rows) (exports.PayoutRow, error) {
			var p exports.PayoutRow
			var batch, claimID uuid.UUID
			var keyID, status string
			var ciphertext []byte
			var paidAt *time.Time
			if err := r.Scan(&batch, &claimID, &p.ReceiptNo, &p.BRN, &p.BusinessName, &p.BankCode, &ciphertext, &keyID,
				&p.Holder, &p.Amount, &status, &p.FailureReason, &p.TransferKey, &paidAt); err != nil {
				return p, err
			}
			// An anonymised claim (personal data purged) has no account left to show.
			if len(ciphertext) > 0 {
				account, err := s.Vault.Open(ciphertext, keyID, []byte(claimID.String()))
				if err != nil {
					return p, fmt.Errorf("claim %s: account: %w", p.ReceiptNo, err)
				}
				p.Account = string(account)
			}
			p.BatchID = batch.String()
			p.Status = payoutLineLabels[status]
			if p.Status == "" {
				p.Status = status
			}
			if paidAt != nil {
				p.PaidAt = *paidAt
			}
			return p, nil
		})
}
