package models_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
)

func TestLedgerEntitlementPaymentAndReversal(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := newMerchant(t, s, "a@example.kr")
	_, f, err := file(t, s, u, "k", validClaim("1208147521"))
	if err != nil {
		t.Fatal(err)
	}
	p := models.DemoProgram
	if err := s.FundBudget(ctx, p, models.InstrumentCompensation, 1_000_000, "fund-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.FundBudget(ctx, p, models.InstrumentCompensation, 1_000_000, "fund-1"); err != nil {
		t.Fatal(err) // same key: no second funding
	}
	entitle := func(amount int64, key string) (uuid.UUID, bool, error) {
		var id uuid.UUID
		var created bool
		err := s.InTx(ctx, func(tx pgx.Tx) error {
			var err error
			id, created, err = s.PostEntitlement(ctx, tx, models.NewEntitlement{ClaimID: f.ID, Program: p, Instrument: models.InstrumentCompensation, Amount: amount, SourceKey: key})
			return err
		})
		return id, created, err
	}
	id, created, err := entitle(300_000, "compensation:"+f.ID.String())
	if err != nil || !created {
		t.Fatalf("entitle: %v %v", created, err)
	}
	again, created, err := entitle(300_000, "compensation:"+f.ID.String())
	if err != nil || created || again != id {
		t.Fatalf("re-posting the same source must be a no-op: %v %v %v", again, created, err)
	}
	if _, _, err := entitle(123_455, "odd"); !models.IsKind(err, models.EINVALID) {
		t.Fatalf("non-multiple of 10: %v", err)
	}
	if _, _, err := entitle(800_000, "too-much"); err == nil || err.(*models.Error).Code != "insufficient_balance" {
		t.Fatalf("budget overdraft: %v", err)
	}

	pay := func(amount int64, key string) error {
		return s.InTx(ctx, func(tx pgx.Tx) error {
			_, err := s.PostPayment(ctx, tx, p, f.ID, amount, key, "")
			return err
		})
	}
	if err := pay(300_000, "line-1"); err != nil {
		t.Fatal(err)
	}
	if err := pay(300_000, "line-1"); err != nil {
		t.Fatal(err) // replayed payment key: no second debit
	}
	if err := pay(10, "line-2"); err == nil {
		t.Fatal("paid more than owed")
	}
	var owed, paid int64
	_ = s.Pool.QueryRow(ctx, `SELECT owed_total, paid_total FROM claims WHERE id = $1`, f.ID).Scan(&owed, &paid)
	if owed != 300_000 || paid != 300_000 {
		t.Fatalf("owed %d paid %d", owed, paid)
	}

	// A second entitlement, reversed: the ledger keeps both and still balances.
	id2, _, err := entitle(50_000, "second")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx pgx.Tx) error { return s.ReverseEntitlement(ctx, tx, id2, "mistake") }); err != nil {
		t.Fatal(err)
	}
	sum, err := s.LedgerSummary(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"funding": -1_000_000, "budget:compensation": 700_000, "payable": 0, "clearing": 300_000}
	for k, v := range want {
		if sum.Balances[k] != v {
			t.Errorf("%s = %d, want %d (all %v)", k, sum.Balances[k], v, sum.Balances)
		}
	}
	if sum.Total != 0 {
		t.Fatalf("ledger does not sum to zero: %d", sum.Total)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM ledger_lines`); err == nil {
		t.Fatal("ledger lines deleted")
	}
}

func TestUnbalancedTransactionRejectedByDatabase(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		id := uuid.New()
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_transactions (id, program_code, kind, idempotency_key) VALUES ($1, $2, 'funding', 'x')`, id, models.DemoProgram); err != nil {
			return err
		}
		var acct int64
		if err := tx.QueryRow(ctx, `INSERT INTO ledger_accounts (code, kind, program_code) VALUES ('clearing:x', 'clearing', $1) RETURNING id`, models.DemoProgram).Scan(&acct); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO ledger_lines (tx_id, account_id, amount) VALUES ($1, $2, 100), ($1, $2, -99)`, id, acct)
		return err
	})
	if err == nil {
		t.Fatal("an unbalanced transaction committed")
	}
}
