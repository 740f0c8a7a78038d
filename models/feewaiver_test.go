package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
)

func sale(t *testing.T, s *models.Store, claimID uuid.UUID, day, category string, gross, commission int64) {
	t.Helper()
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission)
		SELECT program_code, brn, $2::date, $3, $4, $5 FROM claims WHERE id = $1`, claimID, day, category, gross, commission); err != nil {
		t.Fatal(err)
	}
}

// runFeeWaiver runs a whole fee-waiver run in pages of two claims.
func runFeeWaiver(t *testing.T, s *models.Store, key string) (models.FeeWaiverPage, *models.FeeWaiverRun) {
	t.Helper()
	ctx := context.Background()
	if err := s.StartFeeWaiverRun(ctx, models.DemoProgram, key, "manual"); err != nil {
		t.Fatal(err)
	}
	var total models.FeeWaiverPage
	after := uuid.Nil
	for {
		page, err := s.RunFeeWaiverPage(ctx, models.DemoProgram, key, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		total.Claims += page.Claims
		total.Lines += page.Lines
		total.Entitled += page.Entitled
		total.Amount += page.Amount
		total.Unfunded += page.Unfunded
		after = page.Next
		if page.Done {
			break
		}
	}
	run, err := s.FinishFeeWaiverRun(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return total, run
}

func TestFeeWaiverRunTwiceNeverDuplicates(t *testing.T) {
	s := instStore(t)
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `INSERT INTO fee_rates (program_code, category, rate_bp) VALUES ($1, 'fashion', 1000)`, models.DemoProgram); err != nil {
		t.Fatal(err)
	}
	a, _ := instClaim(t, s, models.StatusApproved, 0, 0)
	b, _ := instClaim(t, s, models.StatusInReview, 0, 0)
	rejected, _ := instClaim(t, s, models.StatusRejected, 0, 0)
	noSales, _ := instClaim(t, s, models.StatusReceived, 0, 0)
	tiny, _ := instClaim(t, s, models.StatusReceived, 0, 0)

	// a: 6% of 1,000,005 is 60,000 (truncated to the won); the second row's
	// commission (3,000) is below 6% of its sales, so only 3,000 is waived;
	// rows outside 21 Oct – 20 Nov are ignored.
	sale(t, s, a, "2025-10-21", "food", 1_000_005, 60_001)
	sale(t, s, a, "2025-11-20", "food", 100_000, 3_000)
	sale(t, s, a, "2025-10-20", "food", 9_999_999, 600_000)
	sale(t, s, a, "2025-11-21", "food", 9_999_999, 600_000)
	// b: fashion at 10%: 123,456 × 10% = 12,345 → 12,340 owed, 끝수 5.
	sale(t, s, b, "2025-11-01", "fashion", 123_456, 20_000)
	sale(t, s, rejected, "2025-11-01", "food", 1_000_000, 60_000)
	sale(t, s, tiny, "2025-11-01", "food", 100, 6) // 6 won: nothing to refund

	first, run := runFeeWaiver(t, s, "run-1")
	if first.Claims != 4 || first.Lines != 3 || first.Entitled != 2 || first.Amount != 63_000+12_340 {
		t.Fatalf("first run %+v", first)
	}
	if run.Status != "done" || run.Entitled != 2 || run.Amount != 75_340 || run.ClaimsDone != run.ClaimsTotal || run.ClaimsTotal != 4 {
		t.Fatalf("run %+v", run)
	}
	second, _ := runFeeWaiver(t, s, "run-2")
	if second.Entitled != 0 || second.Amount != 0 {
		t.Fatalf("second run created entitlements: %+v", second)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE instrument = 'fee_waiver'`); n != 2 {
		t.Fatalf("%d fee-waiver entitlements, want 2", n)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE source_key = $1`, "feewaiver:"+models.DemoProgram+":"+a.String()); n != 1 {
		t.Fatal("source key")
	}
	var waived, owed int64
	if err := s.Pool.QueryRow(ctx, `SELECT fee_waived, owed_total FROM claims WHERE id = $1`, b).Scan(&waived, &owed); err != nil || waived != 12_340 || owed != 12_340 {
		t.Fatalf("claim b: waived %d owed %d %v", waived, owed, err)
	}
	admin := instStaff(t, s, "admin@example.kr", models.RoleProgramAdmin)
	lines, next, err := s.ListFeeWaivers(ctx, admin, models.DemoProgram, "", 2)
	if err != nil || len(lines) != 2 || next == "" {
		t.Fatalf("page 1: %d %q %v", len(lines), next, err)
	}
	more, next2, err := s.ListFeeWaivers(ctx, admin, models.DemoProgram, next, 2)
	if err != nil || len(more) != 1 || next2 != "" || more[0].ReceiptNo <= lines[1].ReceiptNo {
		t.Fatalf("page 2: %v %q %v", more, next2, err)
	}
	byClaim := map[uuid.UUID]models.FeeWaiverLine{}
	for _, l := range append(lines, more...) {
		byClaim[l.ClaimID] = l
	}
	if l := byClaim[b]; l.Waived != 12_345 || l.Amount != 12_340 || l.Remainder != 5 || l.RateBP != 1000 || l.Status != "entitled" {
		t.Fatalf("line b %+v", l)
	}
	if l := byClaim[a]; l.RowsInPeriod != 2 || l.GrossSales != 1_100_005 || l.Amount != 63_000 {
		t.Fatalf("line a %+v", l)
	}
	if l := byClaim[tiny]; l.Status != "zero" || l.Amount != 0 {
		t.Fatalf("line tiny %+v", l)
	}
	if _, ok := byClaim[noSales]; ok {
		t.Fatal("a merchant without sales in the period got a line")
	}
	if _, ok := byClaim[rejected]; ok {
		t.Fatal("a rejected claim got a fee waiver")
	}
	merchant := newMerchant(t, s, "nosy@example.kr")
	if _, _, err := s.ListFeeWaivers(ctx, merchant, models.DemoProgram, "", 10); instCode(err) != "program_not_found" {
		t.Fatalf("merchant listing fee waivers: %v", err)
	}
	if _, _, err := s.ListFeeWaivers(ctx, admin, models.DemoProgram, "%%%", 10); instCode(err) != "validation_failed" {
		t.Fatalf("bad cursor: %v", err)
	}
	b2 := instBalances(t, s)
	if b2["budget:fee_waiver"] != models.DemoFeeWaiverBudget-75_340 || b2["payable"] != 75_340 {
		t.Fatalf("balances %v", b2)
	}
}

func TestFeeWaiverUnfundedLineEntitledOnceFunded(t *testing.T) {
	s := newStore(t) // no fee-waiver budget yet
	ctx := context.Background()
	a, _ := instClaim(t, s, models.StatusApproved, 0, 0)
	sale(t, s, a, "2025-11-01", "food", 1_000_000, 60_000)
	first, run := runFeeWaiver(t, s, "run-1")
	if first.Unfunded != 1 || first.Entitled != 0 || run.Unfunded != 1 {
		t.Fatalf("unfunded run %+v %+v", first, run)
	}
	if err := s.FundBudget(ctx, models.DemoProgram, models.InstrumentFeeWaiver, 100_000, "fund"); err != nil {
		t.Fatal(err)
	}
	second, run := runFeeWaiver(t, s, "run-2")
	if second.Entitled != 1 || second.Amount != 60_000 || run.Unfunded != 0 || run.Amount != 60_000 {
		t.Fatalf("funded run %+v %+v", second, run)
	}
}

func TestFeeWaiverRunnable(t *testing.T) {
	s := newStore(t)
	setup, err := s.FeeWaiverSetup(context.Background(), models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	kst := time.FixedZone("KST", 9*3600)
	if !setup.HasPeriod || setup.From.String() != "2025-10-21" || setup.To.String() != "2025-11-20" || setup.RateBP != 600 {
		t.Fatalf("setup %+v", setup)
	}
	if !setup.Ends().Equal(time.Date(2025, 11, 21, 0, 0, 0, 0, kst)) {
		t.Fatalf("ends %v", setup.Ends())
	}
	if err := setup.CheckFeeWaiverRunnable(time.Date(2025, 11, 20, 23, 59, 0, 0, kst)); instCode(err) != "promotion_not_over" {
		t.Fatalf("during the promotion: %v", err)
	}
	if err := setup.CheckFeeWaiverRunnable(setup.Ends()); err != nil {
		t.Fatal(err)
	}
	setup.HasPeriod = false
	if err := setup.CheckFeeWaiverRunnable(setup.Ends()); instCode(err) != "no_fee_waiver_period" {
		t.Fatal(err)
	}
}
