package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Instruments a merchant can be owed money under.
const (
	InstrumentCompensation = "compensation"
	InstrumentPrepurchase  = "prepurchase"
	InstrumentFeeWaiver    = "fee_waiver"
)

// Instruments in display order.
var Instruments = []string{InstrumentCompensation, InstrumentPrepurchase, InstrumentFeeWaiver}

// Ledger account codes. Money flows funding → budget (per program and
// instrument) → payable (per claim) → clearing (sent to the bank).
func fundingAccount(program string) string { return "funding:" + program }
func budgetAccount(program, instrument string) string {
	return "budget:" + program + ":" + instrument
}
func payableAccount(claimID uuid.UUID) string { return "payable:" + claimID.String() }
func clearingAccount(program string) string   { return "clearing:" + program }

// InTx runs fn in a transaction (committed when fn returns nil).
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error { return s.inTx(ctx, fn) }

// posting is one ledger line before it is written.
type posting struct {
	code, kind, instrument string
	claimID                *uuid.UUID
	amount                 int64
}

func accountID(ctx context.Context, tx pgx.Tx, program string, p posting) (int64, error) {
	var id int64
	var instrument *string
	if p.instrument != "" {
		instrument = &p.instrument
	}
	err := tx.QueryRow(ctx, `INSERT INTO ledger_accounts (code, kind, program_code, instrument, claim_id) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id`, p.code, p.kind, program, instrument, p.claimID).Scan(&id)
	return id, err
}

// postTx writes a balanced transaction once per key. created is false when the
// key was posted before (the earlier transaction's id is returned).
func postTx(ctx context.Context, tx pgx.Tx, program, kind, key, memo string, reverses *uuid.UUID, lines []posting) (uuid.UUID, bool, error) {
	var sum int64
	for _, l := range lines {
		if l.amount == 0 {
			return uuid.Nil, false, fmt.Errorf("ledger: zero line in %s", key)
		}
		sum += l.amount
	}
	if sum != 0 || len(lines) < 2 {
		return uuid.Nil, false, fmt.Errorf("ledger: transaction %s does not balance", key)
	}
	id := uuid.New()
	tag, err := tx.Exec(ctx, `INSERT INTO ledger_transactions (id, program_code, kind, idempotency_key, reverses, memo)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (idempotency_key) DO NOTHING`, id, program, kind, key, reverses, memo)
	if err != nil {
		return uuid.Nil, false, err
	}
	if tag.RowsAffected() == 0 {
		err := tx.QueryRow(ctx, `SELECT id FROM ledger_transactions WHERE idempotency_key = $1`, key).Scan(&id)
		return id, false, err
	}
	for _, l := range lines {
		acct, err := accountID(ctx, tx, program, l)
		if err != nil {
			return uuid.Nil, false, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_lines (tx_id, account_id, amount) VALUES ($1,$2,$3)`, id, acct, l.amount); err != nil {
			return uuid.Nil, false, balanceError(err)
		}
	}
	return id, true, nil
}

// balanceError turns the accounts' non-negative CHECK into a domain error: a
// budget cannot go below zero and nobody is paid more than they are owed.
func balanceError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.TableName == "ledger_accounts" {
		return Coded(ECONFLICT, "insufficient_balance", "the budget or the amount owed is not enough for this posting")
	}
	return err
}

// FundBudget puts amount into a program's budget for an instrument, once per key.
func (s *Store) FundBudget(ctx context.Context, program, instrument string, amount int64, key string) error {
	if amount <= 0 {
		return FieldError("validation_failed", "amount", "out_of_range", "amount must be positive")
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, _, err := postTx(ctx, tx, program, "funding", key, "budget "+instrument, nil, []posting{
			{code: fundingAccount(program), kind: "funding", amount: -amount},
			{code: budgetAccount(program, instrument), kind: "budget", instrument: instrument, amount: amount},
		})
		return err
	})
}

// NewEntitlement is money a claim is owed.
type NewEntitlement struct {
	ClaimID    uuid.UUID
	Program    string
	Instrument string
	Amount     int64  // won, a positive multiple of 10 (government payouts drop fractions under 10 won)
	SourceKey  string // unique per fact, e.g. "compensation:<claim>", "po:<purchase order>"
	Memo       string
}

// PostEntitlement moves Amount from the program's instrument budget to the
// claim's payable account and records the entitlement, in tx. Posting the same
// SourceKey again changes nothing (created=false).
func (s *Store) PostEntitlement(ctx context.Context, tx pgx.Tx, e NewEntitlement) (id uuid.UUID, created bool, err error) {
	if e.Amount <= 0 || e.Amount%10 != 0 {
		return uuid.Nil, false, FieldError("validation_failed", "amount", "not_multiple_of_10", "entitlements are positive multiples of 10 won")
	}
	if !contains(Instruments, e.Instrument) {
		return uuid.Nil, false, FieldError("validation_failed", "instrument", "unknown_instrument", "unknown instrument")
	}
	claimID := e.ClaimID
	txID, created, err := postTx(ctx, tx, e.Program, "entitlement", "entitlement:"+e.SourceKey, e.Memo, nil, []posting{
		{code: budgetAccount(e.Program, e.Instrument), kind: "budget", instrument: e.Instrument, amount: -e.Amount},
		{code: payableAccount(claimID), kind: "payable", claimID: &claimID, amount: e.Amount},
	})
	if err != nil || !created {
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT id FROM entitlements WHERE source_key = $1`, e.SourceKey).Scan(&id)
		}
		return id, false, err
	}
	id = uuid.New()
	if _, err := tx.Exec(ctx, `INSERT INTO entitlements (id, claim_id, program_code, instrument, amount, source_key, tx_id)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, id, e.ClaimID, e.Program, e.Instrument, e.Amount, e.SourceKey, txID); err != nil {
		return uuid.Nil, false, err
	}
	feeWaived := int64(0)
	if e.Instrument == InstrumentFeeWaiver {
		feeWaived = e.Amount
	}
	if _, err := tx.Exec(ctx, `UPDATE claims SET owed_total = owed_total + $2, fee_waived = fee_waived + $3, updated_at = now() WHERE id = $1`,
		e.ClaimID, e.Amount, feeWaived); err != nil {
		return uuid.Nil, false, err
	}
	return id, true, nil
}

// PostPayment records that amount reached the claim's bank account: payable →
// clearing, and the claim's paid total grows, once per key. The payable account
// cannot go negative, so nobody is paid more than they are owed.
func (s *Store) PostPayment(ctx context.Context, tx pgx.Tx, program string, claimID uuid.UUID, amount int64, key, memo string) (created bool, err error) {
	if amount <= 0 {
		return false, FieldError("validation_failed", "amount", "out_of_range", "payments are positive")
	}
	_, created, err = postTx(ctx, tx, program, "payment", "payment:"+key, memo, nil, []posting{
		{code: payableAccount(claimID), kind: "payable", claimID: &claimID, amount: -amount},
		{code: clearingAccount(program), kind: "clearing", amount: amount},
	})
	if err != nil || !created {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE claims SET paid_total = paid_total + $2, updated_at = now() WHERE id = $1`, claimID, amount)
	return true, err
}

// ReverseEntitlement cancels an owed (not yet batched or paid) entitlement by a
// reversing transaction; the original stays on the ledger.
func (s *Store) ReverseEntitlement(ctx context.Context, tx pgx.Tx, entitlementID uuid.UUID, memo string) error {
	var txID, claimID uuid.UUID
	var program, instrument, status string
	var amount int64
	err := tx.QueryRow(ctx, `SELECT tx_id, claim_id, program_code, instrument, status, amount FROM entitlements WHERE id = $1 FOR UPDATE`, entitlementID).
		Scan(&txID, &claimID, &program, &instrument, &status, &amount)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if status == "reversed" {
		return nil
	}
	if status != "owed" {
		return Coded(ECONFLICT, "entitlement_in_payment", "only owed entitlements can be reversed")
	}
	if _, _, err := postTx(ctx, tx, program, "reversal", "reversal:"+txID.String(), memo, &txID, []posting{
		{code: payableAccount(claimID), kind: "payable", claimID: &claimID, amount: -amount},
		{code: budgetAccount(program, instrument), kind: "budget", instrument: instrument, amount: amount},
	}); err != nil {
		return err
	}
	feeWaived := int64(0)
	if instrument == InstrumentFeeWaiver {
		feeWaived = amount
	}
	if _, err := tx.Exec(ctx, `UPDATE entitlements SET status = 'reversed' WHERE id = $1`, entitlementID); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE claims SET owed_total = owed_total - $2, fee_waived = fee_waived - $3, updated_at = now() WHERE id = $1`, claimID, amount, feeWaived)
	return err
}

// LedgerSummary is a program's balances by account kind (and instrument for budgets).
type LedgerSummary struct {
	Total    int64            `json:"total"` // sum of every line: always 0
	Balances map[string]int64 `json:"balances"`
}

// LedgerSummary totals a program's ledger.
func (s *Store) LedgerSummary(ctx context.Context, program string) (*LedgerSummary, error) {
	out := &LedgerSummary{Balances: map[string]int64{}}
	rows, err := s.Pool.Query(ctx, `SELECT a.kind || coalesce(':' || a.instrument, ''), sum(l.amount)
		FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id WHERE a.program_code = $1 GROUP BY 1`, program)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out.Balances[k] = v
		out.Total += v
	}
	return out, rows.Err()
}
