package models_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// instStore is a seeded store whose demo program has its compensation
// and fee-waiver budgets funded.
func instStore(t *testing.T) *models.Store {
	t.Helper()
	s := newStore(t)
	if err := s.SeedInstruments(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedInstruments(context.Background()); err != nil {
		t.Fatal(err) // idempotent
	}
	return s
}

func instStaff(t *testing.T, s *models.Store, email string, roles ...string) *models.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), models.NewUser{Email: email, Name: "직원", Password: "correct horse", Roles: roles, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var instBRNSeq = 5000

// instClaim files a claim for a new merchant with goods, then puts it in
// status with an approved compensation and estimated loss (what review does).
func instClaim(t *testing.T, s *models.Store, status string, approved, estimated int64, goods ...models.GoodsItem) (uuid.UUID, *models.User) {
	t.Helper()
	instBRNSeq++
	u := newMerchant(t, s, fmt.Sprintf("m%d@example.kr", instBRNSeq))
	in := validClaim(rules.ValidBRNFromSeed(instBRNSeq).String())
	in.Goods = goods
	_, f, err := file(t, s, u, "k", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(context.Background(), `UPDATE claims SET status = $2, approved_compensation = $3, estimated_loss = $4 WHERE id = $1`,
		f.ID, status, approved, estimated); err != nil {
		t.Fatal(err)
	}
	return f.ID, u
}

func instBalances(t *testing.T, s *models.Store) map[string]int64 {
	t.Helper()
	sum, err := s.LedgerSummary(context.Background(), models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 0 {
		t.Fatalf("the ledger does not balance: %d (%v)", sum.Total, sum.Balances)
	}
	return sum.Balances
}

func instCode(err error) string {
	if e, ok := err.(*models.Error); ok {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "not a domain error: " + err.Error()
}

func TestEntitleCompensationIdempotentTruncatedAndSwept(t *testing.T) {
	s := instStore(t)
	ctx := context.Background()
	approved, _ := instClaim(t, s, models.StatusApproved, 1_234_567, 2_000_000)
	inReview, _ := instClaim(t, s, models.StatusInReview, 0, 2_000_000)
	missed, _ := instClaim(t, s, models.StatusAutoApproved, 300_005, 300_005)
	zero, _ := instClaim(t, s, models.StatusApproved, 9, 9)

	entitle := func(id uuid.UUID) (uuid.UUID, bool, error) {
		var eid uuid.UUID
		var created bool
		err := s.InTx(ctx, func(tx pgx.Tx) error {
			var err error
			eid, created, err = s.EntitleCompensation(ctx, tx, id)
			return err
		})
		return eid, created, err
	}
	id, created, err := entitle(approved)
	if err != nil || !created {
		t.Fatalf("entitle: %v %v", created, err)
	}
	again, created, err := entitle(approved)
	if err != nil || created || again != id {
		t.Fatalf("second call must return the first entitlement: %v %v %v", again, created, err)
	}
	var amount int64
	var key string
	if err := s.Pool.QueryRow(ctx, `SELECT amount, source_key FROM entitlements WHERE id = $1`, id).Scan(&amount, &key); err != nil {
		t.Fatal(err)
	}
	if amount != 1_234_560 || key != "compensation:"+approved.String() {
		t.Fatalf("entitlement %d %q, want 1,234,560 truncated to 10 won, keyed by the claim", amount, key)
	}
	if _, _, err := entitle(inReview); instCode(err) != "claim_not_approved" {
		t.Fatalf("a claim in review: %v", err)
	}
	if id, created, err := entitle(zero); err != nil || created || id != uuid.Nil {
		t.Fatalf("under 10 won there is nothing to entitle: %v %v %v", id, created, err)
	}
	if _, _, err := entitle(uuid.New()); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("unknown claim: %v", err)
	}

	// A refusal inside the caller's transaction leaves it usable (savepoint).
	big, _ := instClaim(t, s, models.StatusApproved, models.DemoCompensationBudget+10, 1)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if _, _, err := s.EntitleCompensation(ctx, tx, big); instCode(err) != "insufficient_balance" {
			t.Errorf("over budget: %v", err)
		}
		_, err := tx.Exec(ctx, `UPDATE claims SET updated_at = now() WHERE id = $1`, big)
		return err
	})
	if err != nil {
		t.Fatalf("the caller's transaction broke: %v", err)
	}

	// The sweep finds the approval nobody entitled, skips what the budget
	// cannot cover, and a second sweep finds nothing.
	var total models.SweepPage
	after := uuid.Nil
	for {
		page, err := s.SweepCompensation(ctx, models.DemoProgram, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		total.Entitled += page.Entitled
		total.Short += page.Short
		total.Amount += page.Amount
		after = page.Next
		if page.Done {
			break
		}
	}
	if total.Entitled != 1 || total.Amount != 300_000 || total.Short != 1 {
		t.Fatalf("sweep: %+v", total)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE source_key = $1`, "compensation:"+missed.String()); n != 1 {
		t.Fatalf("missed approval entitled %d times", n)
	}
	page, err := s.SweepCompensation(ctx, models.DemoProgram, uuid.Nil, 100)
	if err != nil || page.Entitled != 0 || page.Short != 1 || !page.Done {
		t.Fatalf("second sweep: %+v %v", page, err)
	}
	b := instBalances(t, s)
	if b["budget:compensation"] != models.DemoCompensationBudget-1_234_560-300_000 || b["payable"] != 1_534_560 {
		t.Fatalf("balances %v", b)
	}
}

func TestReplaceGoodsUntilDecided(t *testing.T) {
	s := instStore(t)
	ctx := context.Background()
	id, owner := instClaim(t, s, models.StatusInReview, 0, 0, models.GoodsItem{SKU: "A", Name: "사과", UnitPrice: 1000, Quantity: 1})
	other := newMerchant(t, s, "other@example.kr")
	admin := instStaff(t, s, "admin@example.kr", models.RoleProgramAdmin)

	goods := []models.GoodsItem{{SKU: " B-1 ", Name: "배", UnitPrice: 30_000, Quantity: 40, Perishable: true}, {SKU: "C", Name: "쌀", UnitPrice: 50_000, Quantity: 10}}
	got, err := s.ReplaceGoods(ctx, owner, id, goods, "")
	if err != nil || len(got) != 2 || got[0].SKU != "B-1" {
		t.Fatalf("replace: %v %v", got, err)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_goods WHERE claim_id = $1`, id); n != 2 {
		t.Fatalf("%d goods stored", n)
	}
	_, err = s.ReplaceGoods(ctx, owner, id, []models.GoodsItem{{SKU: "X", Name: "", UnitPrice: -1, Quantity: 0}, {SKU: "X", Name: "y", UnitPrice: 1, Quantity: 1}}, "")
	e, ok := err.(*models.Error)
	if !ok || e.Kind != models.EINVALID || e.Fields["goods[0].name"] != "required" || e.Fields["goods[0].unit_price"] != "out_of_range" ||
		e.Fields["goods[0].quantity"] != "out_of_range" || e.Fields["goods[1].sku"] != "duplicate" {
		t.Fatalf("bad goods: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_goods WHERE claim_id = $1`, id); n != 2 {
		t.Fatal("a refused change wrote something")
	}
	if _, err := s.ReplaceGoods(ctx, other, id, goods, ""); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("another merchant: %v", err)
	}
	if _, err := s.ReplaceGoods(ctx, admin, id, goods, ""); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("staff: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET status = 'approved' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceGoods(ctx, owner, id, nil, ""); instCode(err) != "claim_decided" {
		t.Fatalf("decided claim: %v", err)
	}
}
