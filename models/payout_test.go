package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout/payouttest"
)

func payoutFixture(t *testing.T, claims int) (*models.Store, *payouttest.Seeded, *models.User, *models.User) {
	t.Helper()
	s := newStore(t)
	seeded, err := payouttest.Seed(context.Background(), s, payouttest.Options{Claims: claims, Prefix: "m"})
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := payouttest.FinanceUsers(context.Background(), s, "m", "KPOST", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	return s, seeded, a, b
}

func code(err error) string {
	var e *models.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "not a domain error: " + err.Error()
}

// readyBatch creates a batch and passes every line through the holder check.
func readyBatch(t *testing.T, s *models.Store, creator *models.User) *models.PayoutBatchCreated {
	t.Helper()
	ctx := context.Background()
	created, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := s.PayoutWorkLines(ctx, created.ID, 1, created.Lines, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := []uuid.UUID{}
	for _, l := range lines {
		ids = append(ids, l.ID)
	}
	if err := s.MarkPayoutLinesChecked(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if st, err := s.FinishPayoutPrecheck(ctx, created.ID); err != nil || st != models.BatchAwaitingApproval {
		t.Fatalf("precheck: %q %v", st, err)
	}
	return created
}

func TestPayoutBatchTakesEverythingOwedOnce(t *testing.T) {
	s, seeded, creator, _ := payoutFixture(t, 5)
	ctx := context.Background()
	created, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		t.Fatal(err)
	}
	if created.Lines != 5 || created.Total != seeded.Total || created.Status != models.BatchChecking {
		t.Fatalf("created %+v, want 5 lines totalling %d", created, seeded.Total)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE status = 'batched' AND batch_id = $1`, created.ID); n != 5 {
		t.Fatalf("batched entitlements = %d", n)
	}
	if _, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram}); code(err) != "nothing_owed" {
		t.Fatalf("second batch: %v", err)
	}
	// A second entitlement of the same claim, owed later, goes into the next batch alone.
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if err := s.FundBudget(ctx, models.DemoProgram, models.InstrumentFeeWaiver, 12_340, "fund-fw"); err != nil {
			return err
		}
		_, _, err := s.PostEntitlement(ctx, tx, models.NewEntitlement{ClaimID: seeded.ClaimIDs[0], Program: models.DemoProgram,
			Instrument: models.InstrumentFeeWaiver, Amount: 12_340, SourceKey: "fw:" + seeded.ClaimIDs[0].String()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram, Instrument: models.InstrumentCompensation}); code(err) != "nothing_owed" {
		t.Fatalf("instrument filter: %v", err)
	}
	next, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil || next.Lines != 1 || next.Total != 12_340 {
		t.Fatalf("next batch %+v %v", next, err)
	}
}

func TestPayoutBatchInputErrorsNameTheField(t *testing.T) {
	s, _, creator, _ := payoutFixture(t, 1)
	ctx := context.Background()
	for _, tc := range []struct {
		in          models.PayoutBatchInput
		code, field string
	}{
		{models.PayoutBatchInput{}, "validation_failed", "program"},
		{models.PayoutBatchInput{Program: models.DemoProgram, Instrument: "gold"}, "validation_failed", "instrument"},
		{models.PayoutBatchInput{Program: models.DemoProgram, Channel: "pigeon"}, "validation_failed", "channel"},
		{models.PayoutBatchInput{Program: models.DemoProgram, Cutoff: "yesterday"}, "validation_failed", "cutoff"},
		{models.PayoutBatchInput{Program: "NOPE"}, "program_not_found", "program"},
	} {
		_, err := payouttest.CreateBatch(ctx, s, creator, tc.in)
		var e *models.Error
		if !errors.As(err, &e) || e.Kind != models.EINVALID || e.Code != tc.code || e.Fields[tc.field] == "" {
			t.Errorf("%+v: %v", tc.in, err)
		}
	}
	other, err := s.CreateUser(ctx, models.NewUser{Email: "f@mss.kr", Name: "타기관", Password: "correct horse", Roles: []string{models.RoleFinance}, Agency: "MSS"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payouttest.CreateBatch(ctx, s, other, models.PayoutBatchInput{Program: models.DemoProgram}); code(err) != "program_not_found" {
		t.Errorf("another agency's program: %v", err)
	}
	reviewer, err := s.CreateUser(ctx, models.NewUser{Email: "r@kpost.kr", Name: "심사", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payouttest.CreateBatch(ctx, s, reviewer, models.PayoutBatchInput{Program: models.DemoProgram}); !models.IsKind(err, models.EFORBIDDEN) {
		t.Errorf("reviewer: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM payout_batches`); n != 0 {
		t.Fatalf("%d batches written by refused requests", n)
	}
}

func constraintOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

func TestPayoutApprovalIsGuardedByTheDatabase(t *testing.T) {
	s, _, creator, approver := payoutFixture(t, 3)
	ctx := context.Background()
	created := readyBatch(t, s, creator)

	// Straight SQL, bypassing every check in Go: the database itself refuses.
	_, err := s.Pool.Exec(ctx, `UPDATE payout_batches SET approved_by = created_by, approved_at = now(), approved_count = 3,
		approved_total = total, status = 'transferring' WHERE id = $1`, created.ID)
	if constraintOf(err) != "payout_batches_segregation" {
		t.Fatalf("self-approval in SQL: %v", err)
	}
	if _, err := s.ApprovePayoutBatch(ctx, created.ID, creator.ID, "r1"); code(err) != "segregation_of_duties" {
		t.Fatalf("self-approval: %v", err)
	}
	b, err := s.ApprovePayoutBatch(ctx, created.ID, approver.ID, "r2")
	if err != nil || b.Status != models.BatchTransferring || *b.ApprovedCount != 3 || *b.ApprovedTotal != created.Total {
		t.Fatalf("approve: %+v %v", b, err)
	}
	if _, err := s.ApprovePayoutBatch(ctx, created.ID, approver.ID, "r2-retry"); err != nil {
		t.Fatalf("the same approval retried must succeed: %v", err)
	}
	third, err := s.CreateUser(ctx, models.NewUser{Email: "c@kpost.kr", Name: "재무c", Password: "correct horse", Roles: []string{models.RoleFinance}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApprovePayoutBatch(ctx, created.ID, third.ID, "r3"); code(err) != "already_approved" {
		t.Fatalf("second approval: %v", err)
	}
	_, err = s.Pool.Exec(ctx, `UPDATE payout_batches SET approved_by = $2, approved_at = now() WHERE id = $1`, created.ID, third.ID)
	if constraintOf(err) != "payout_batches_approved_once" {
		t.Fatalf("second approval in SQL: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_log WHERE action = 'payout.batch_approved'`); n != 1 {
		t.Fatalf("approval audit entries = %d", n)
	}
}

func TestPayoutSettlementIsOncePerLine(t *testing.T) {
	s, seeded, creator, approver := payoutFixture(t, 2)
	ctx := context.Background()
	created := readyBatch(t, s, creator)
	if _, err := s.ApprovePayoutBatch(ctx, created.ID, approver.ID, ""); err != nil {
		t.Fatal(err)
	}
	lines, err := s.PayoutLines(ctx, created.ID, "", 0)
	if err != nil || len(lines) != 2 {
		t.Fatal(lines, err)
	}
	paid, failed := lines[0], lines[1]
	o, err := s.SettlePayoutLine(ctx, paid.ID, "SBX1", "api")
	if err != nil || !o.Changed || o.PaidTotal != paid.Amount || o.OwedTotal != paid.Amount {
		t.Fatalf("settle: %+v %v", o, err)
	}
	again, err := s.SettlePayoutLine(ctx, paid.ID, "SBX1", "api")
	if err != nil || again.Changed {
		t.Fatalf("settling twice: %+v %v", again, err)
	}
	// The last guard: a second success row for the line cannot exist.
	_, err = s.Pool.Exec(ctx, `INSERT INTO payout_settlements (line_id, transfer_key, claim_id, amount, bank_ref, via)
		VALUES ($1, 'another-key', $2, $3, 'SBX2', 'api')`, paid.ID, paid.ClaimID, paid.Amount)
	if constraintOf(err) != "payout_settlements_pkey" {
		t.Fatalf("second settlement row: %v", err)
	}
	if _, err := s.FailPayoutLine(ctx, paid.ID, "holder_mismatch", "x", "api"); code(err) != "result_conflict" {
		t.Fatalf("failing a paid line: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM ledger_transactions WHERE kind = 'payment'`); n != 1 {
		t.Fatalf("payments = %d", n)
	}

	o, err = s.FailPayoutLine(ctx, failed.ID, "daily_limit_exceeded", "한도 초과", "api") // not the account: paid again as it is
	if err != nil || !o.Changed {
		t.Fatalf("fail: %+v %v", o, err)
	}
	if _, err := s.SettlePayoutLine(ctx, failed.ID, "SBX3", "api"); code(err) != "result_conflict" {
		t.Fatalf("settling a failed line: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE claim_id = $1 AND status = 'owed' AND batch_id IS NULL`, failed.ClaimID); n != 1 {
		t.Fatal("the failed line's entitlement is not owed again")
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE claim_id = $1 AND status = 'paid'`, paid.ClaimID); n != 1 {
		t.Fatal("the paid line's entitlement is not paid")
	}
	sum, err := s.LedgerSummary(ctx, models.DemoProgram)
	if err != nil || sum.Total != 0 || sum.Balances["clearing"] != paid.Amount {
		t.Fatalf("ledger %+v %v", sum, err)
	}
	done, err := s.CompletePayoutBatch(ctx, created.ID)
	if err != nil || !done {
		t.Fatalf("complete: %v %v", done, err)
	}
	// The failed amount goes into the next batch, as a new line with a new key.
	next, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil || next.Lines != 1 || next.Total != failed.Amount {
		t.Fatalf("next batch: %+v %v", next, err)
	}
	_ = seeded
}

func TestPayoutResultImportChangesNothingUnlessAllRowsAgree(t *testing.T) {
	s, _, creator, approver := payoutFixture(t, 3)
	ctx := context.Background()
	created := readyBatch(t, s, creator)
	if _, err := s.ApprovePayoutBatch(ctx, created.ID, approver.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkBatchSent(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	work, err := s.PayoutWorkLines(ctx, created.ID, 1, 3, true)
	if err != nil || len(work) != 3 {
		t.Fatal(work, err)
	}
	good := func() []exports.TransferResult {
		rows := make([]exports.TransferResult, len(work))
		for i, l := range work {
			rows[i] = exports.TransferResult{Row: i + 2, Key: l.TransferKey, Account: l.Account, Amount: l.Amount, Code: "0000"}
		}
		rows[2].Code, rows[2].Message = "E101", "수취인 계좌 오류"
		return rows
	}
	meta := models.ResultFileMeta{SHA256: "abc"}
	bad := map[string]func([]exports.TransferResult) []exports.TransferResult{
		"invalid_result_file/key":     func(r []exports.TransferResult) []exports.TransferResult { r[0].Key = "RLF-unknown-1"; return r },
		"invalid_result_file/amount":  func(r []exports.TransferResult) []exports.TransferResult { r[1].Amount += 10; return r },
		"invalid_result_file/account": func(r []exports.TransferResult) []exports.TransferResult { r[1].Account = "11100000000000"; return r },
		"total_mismatch/":             func(r []exports.TransferResult) []exports.TransferResult { return r[:2] },
	}
	for name, mutate := range bad {
		_, err := s.ImportPayoutResults(ctx, creator, created.ID, mutate(good()), meta)
		if want, _, _ := strings.Cut(name, "/"); code(err) != want {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.ImportPayoutResults(ctx, creator, created.ID, good(), models.ResultFileMeta{Bank: "999"}); code(err) != "unsupported_bank" {
		t.Errorf("unsupported bank: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND status <> 'sending'`, created.ID); n != 0 {
		t.Fatalf("%d lines changed by refused imports", n)
	}
	imp, err := s.ImportPayoutResults(ctx, creator, created.ID, good(), meta)
	if err != nil || imp.Settled != 2 || imp.Failed != 1 {
		t.Fatalf("import: %+v %v", imp, err)
	}
	again, err := s.ImportPayoutResults(ctx, creator, created.ID, good(), meta)
	if err != nil || again.Unchanged != 3 {
		t.Fatalf("same file twice: %+v %v", again, err)
	}
	flipped := good()
	flipped[0].Code = "E999"
	if _, err := s.ImportPayoutResults(ctx, creator, created.ID, flipped, meta); code(err) != "result_conflict" {
		t.Fatalf("contradicting result: %v", err)
	}
	b, err := s.PayoutBatchByID(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.PayoutReconciliation(ctx, b)
	if err != nil || !r.Balanced || r.Total.Settled != work[0].Amount+work[1].Amount || r.Total.Failed != work[2].Amount {
		t.Fatalf("reconciliation %+v %v", r, err)
	}
}
