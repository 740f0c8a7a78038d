package models

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/google/uuid"

	"github.com/relief/relief/exports"
)

// PayoutReconRow is one bank's (or the whole batch's) reconciliation, in won.
// Owed = Pending + AtBank + Settled + Failed, always.
type PayoutReconRow struct {
	BankCode    string `json:"bank_code"`
	BankName    string `json:"bank_name"`
	Lines       int    `json:"lines"`
	Owed        int64  `json:"owed"`    // every line of the batch
	Sent        int64  `json:"sent"`    // handed to the bank (paid, failed there, or still there)
	Settled     int64  `json:"settled"` // paid
	Failed      int64  `json:"failed"`  // failed, at the holder check or at the bank: owed again
	AtBank      int64  `json:"at_bank"` // sent, outcome not known yet
	Pending     int64  `json:"pending"` // not sent yet
	PaidLines   int    `json:"paid_lines"`
	FailedLines int    `json:"failed_lines"`
}

// PayoutRecon is a batch's reconciliation: by payee bank and in total, with
// the ledger's view of the same money.
type PayoutRecon struct {
	BatchID uuid.UUID        `json:"batch_id"`
	Program string           `json:"program"`
	Status  string           `json:"status"`
	ByBank  []PayoutReconRow `json:"by_bank"`
	Total   PayoutReconRow   `json:"total"`
	// LedgerPaid sums the ledger's payments (payable → clearing) for the
	// batch's lines and SettlementsPaid the settlement records; both equal
	// Total.Settled when the books agree (Balanced).
	LedgerPaid      int64 `json:"ledger_paid"`
	SettlementsPaid int64 `json:"settlements_paid"`
	Balanced        bool  `json:"balanced"`
}

// PayoutReconciliation computes the reconciliation of batch b.
func (s *Store) PayoutReconciliation(ctx context.Context, b *PayoutBatch) (*PayoutRecon, error) {
	r := &PayoutRecon{BatchID: b.ID, Program: b.Program, Status: b.Status, ByBank: []PayoutReconRow{}}
	rows, err := s.Pool.Query(ctx, `SELECT bank_code, count(*)::int, sum(amount)::bigint,
			coalesce(sum(amount) FILTER (WHERE sent_at IS NOT NULL), 0)::bigint,
			coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0)::bigint,
			coalesce(sum(amount) FILTER (WHERE status = 'failed'), 0)::bigint,
			coalesce(sum(amount) FILTER (WHERE status = 'sending'), 0)::bigint,
			coalesce(sum(amount) FILTER (WHERE status = 'pending'), 0)::bigint,
			(count(*) FILTER (WHERE status = 'paid'))::int, (count(*) FILTER (WHERE status = 'failed'))::int
		FROM payout_lines WHERE batch_id = $1 GROUP BY bank_code ORDER BY bank_code`, b.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := &r.Total
	t.BankName = "합계"
	for rows.Next() {
		var x PayoutReconRow
		if err := rows.Scan(&x.BankCode, &x.Lines, &x.Owed, &x.Sent, &x.Settled, &x.Failed, &x.AtBank, &x.Pending, &x.PaidLines, &x.FailedLines); err != nil {
			return nil, err
		}
		x.BankName = exports.BankName(x.BankCode)
		if x.BankName == "" {
			x.BankName = Banks[x.BankCode]
		}
		r.ByBank = append(r.ByBank, x)
		t.Lines += x.Lines
		t.Owed += x.Owed
		t.Sent += x.Sent
		t.Settled += x.Settled
		t.Failed += x.Failed
		t.AtBank += x.AtBank
		t.Pending += x.Pending
		t.PaidLines += x.PaidLines
		t.FailedLines += x.FailedLines
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	err = s.Pool.QueryRow(ctx, `SELECT
			(SELECT coalesce(sum(ll.amount), 0) FROM ledger_transactions t
				JOIN ledger_lines ll ON ll.tx_id = t.id
				JOIN ledger_accounts a ON a.id = ll.account_id AND a.kind = 'clearing'
				WHERE t.kind = 'payment' AND t.idempotency_key IN (SELECT 'payment:' || id::text FROM payout_lines WHERE batch_id = $1))::bigint,
			(SELECT coalesce(sum(s.amount), 0) FROM payout_settlements s JOIN payout_lines l ON l.id = s.line_id WHERE l.batch_id = $1)::bigint`,
		b.ID).Scan(&r.LedgerPaid, &r.SettlementsPaid)
	if err != nil {
		return nil, err
	}
	r.Balanced = r.LedgerPaid == t.Settled && r.SettlementsPaid == t.Settled &&
		t.Owed == t.Pending+t.AtBank+t.Settled+t.Failed && t.Owed == b.Total
	return r, nil
}

// BankFileMemo is what the payee's statement shows for a Relief payout.
const BankFileMemo = "피해지원금"

// PayoutFileLines streams the approved lines of a batch as bank-file
// transfers, with the account decrypted: only for finance, and the caller
// audit-logs the file.
func (s *Store) PayoutFileLines(ctx context.Context, batchID uuid.UUID) iter.Seq2[exports.Transfer, error] {
	return func(yield func(exports.Transfer, error) bool) {
		rows, err := s.Pool.Query(ctx, `SELECT l.claim_id, l.bank_code, l.amount, l.transfer_key, c.account_ciphertext, c.account_key_id, c.account_holder
			FROM payout_lines l JOIN claims c ON c.id = l.claim_id WHERE l.batch_id = $1 AND l.approved ORDER BY l.seq`, batchID)
		if err != nil {
			yield(exports.Transfer{}, err)
			return
		}
		defer rows.Close()
		sender := "RELIEF " + strings.ToUpper(batchID.String()[:8])
		for rows.Next() {
			var t exports.Transfer
			var claimID uuid.UUID
			var ciphertext []byte
			var keyID string
			if err := rows.Scan(&claimID, &t.BankCode, &t.Amount, &t.Key, &ciphertext, &keyID, &t.Holder); err != nil {
				yield(t, err)
				return
			}
			account, err := s.Vault.Open(ciphertext, keyID, []byte(claimID.String()))
			if err != nil {
				yield(t, fmt.Errorf("claim %s: account: %w", claimID, err))
				return
			}
			t.Account, t.RecipientMemo, t.SenderMemo = string(account), BankFileMemo, sender
			if !yield(t, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(exports.Transfer{}, err)
		}
	}
}

// AuditPayoutFile logs a bank-file download with its SHA-256.
func (s *Store) AuditPayoutFile(ctx context.Context, v *User, batchID uuid.UUID, action string, details map[string]any, ip string) error {
	return s.Audit(ctx, nil, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: action, Subject: "payout_batch:" + batchID.String(), IP: ip, Details: details})
}
