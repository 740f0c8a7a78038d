package models_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout/payouttest"
)

func correctBank(s *models.Store, v *models.User, claimID uuid.UUID, in models.BankInput) (*models.BankView, bool, error) {
	var view *models.BankView
	var changed bool
	err := s.InTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		view, changed, err = s.CorrectClaimBank(context.Background(), tx, v, claimID, in, "127.0.0.1")
		return err
	})
	return view, changed, err
}

// A line refused for its account (holder_mismatch) returns its money to owed
// but no batch takes it until the merchant corrects the account; the next
// batch after the correction does. A limit failure is paid again as before.
func TestPayoutAccountFailureWaitsForCorrection(t *testing.T) {
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
	bad, limited := lines[0], lines[1]
	if _, err := s.FailPayoutLine(ctx, bad.ID, "holder_mismatch", "예금주 불일치", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailPayoutLine(ctx, limited.ID, "daily_limit_exceeded", "한도 초과", "api"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE claim_id = $1 AND status = 'owed' AND batch_id IS NULL`, bad.ClaimID); n != 1 {
		t.Fatal("the failed line's entitlement is not owed again")
	}
	var merchantID uuid.UUID
	if err := s.Pool.QueryRow(ctx, `SELECT merchant_id FROM claims WHERE id = $1`, bad.ClaimID).Scan(&merchantID); err != nil {
		t.Fatal(err)
	}
	merchant, err := s.UserByID(ctx, merchantID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimForViewer(ctx, merchant, bad.ClaimID)
	if err != nil || !c.AccountCheckFailed || c.AccountCheckFailure != "holder_mismatch" {
		t.Fatalf("flagged claim: %+v %v", c, err)
	}
	if c, err := s.ClaimForViewer(ctx, merchant, limited.ClaimID); err != nil || c.AccountCheckFailed {
		t.Fatalf("a limit failure flagged the claim: %v", err)
	}

	// The next batch pays the limited claim only.
	next, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil || next.Lines != 1 || next.Total != limited.Amount {
		t.Fatalf("next batch: %+v %v", next, err)
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE claim_id = $1 AND status = 'owed' AND batch_id IS NULL`, bad.ClaimID); n != 1 {
		t.Fatal("the flagged claim's entitlement was taken")
	}
	if _, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram}); code(err) != "nothing_owed" {
		t.Fatalf("a batch took the flagged claim: %v", err)
	}

	// Who may correct, and what is checked.
	if _, _, err := correctBank(s, creator, bad.ClaimID, models.BankInput{BankCode: "088", AccountNumber: "110-999-888777", Holder: "김상인"}); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("staff: %v", err)
	}
	other, err := s.CreateUser(ctx, models.NewUser{Email: "other@merchant.kr", Name: "남", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := correctBank(s, other, bad.ClaimID, models.BankInput{BankCode: "088", AccountNumber: "110999888777", Holder: "김상인"}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("another merchant: %v", err)
	}
	_, _, err = correctBank(s, merchant, bad.ClaimID, models.BankInput{BankCode: "999", AccountNumber: "12", Holder: " "})
	var e *models.Error
	if !errors.As(err, &e) || e.Code != "validation_failed" || e.Fields["bank_code"] != "unsupported_bank" ||
		e.Fields["account_number"] != "invalid_account" || e.Fields["holder"] != "required" {
		t.Fatalf("invalid account: %v", err)
	}

	var beforeIndex []byte
	if err := s.Pool.QueryRow(ctx, `SELECT account_blind_index FROM claims WHERE id = $1`, bad.ClaimID).Scan(&beforeIndex); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Now().Add(time.Second) }
	view, changed, err := correctBank(s, merchant, bad.ClaimID, models.BankInput{BankCode: "088", AccountNumber: "110-999-888777", Holder: " 김상인 "})
	if err != nil || !changed || view.BankCode != "088" || view.AccountMasked != "******8777" || view.Holder != "김상인" {
		t.Fatalf("correct: %+v %v %v", view, changed, err)
	}
	var ciphertext, index []byte
	var keyID, last4 string
	var failedAt *time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT account_ciphertext, account_key_id, account_last4, account_blind_index, account_check_failed_at
		FROM claims WHERE id = $1`, bad.ClaimID).Scan(&ciphertext, &keyID, &last4, &index, &failedAt); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ciphertext, []byte("110999888777")) || last4 != "8777" || failedAt != nil {
		t.Fatalf("stored account: last4 %q, flag %v, plaintext in the column: %v", last4, failedAt, bytes.Contains(ciphertext, []byte("110999888777")))
	}
	if plain, err := s.Vault.Open(ciphertext, keyID, []byte(bad.ClaimID.String())); err != nil || string(plain) != "110999888777" {
		t.Fatalf("the column does not open to the new account: %v", err)
	}
	if !bytes.Equal(index, s.Vault.BlindIndex("088:110999888777")) || bytes.Equal(index, beforeIndex) {
		t.Fatal("blind index not updated")
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE claim_id = $1 AND note = $2`, bad.ClaimID, models.NoteAccountCorrected); n != 1 {
		t.Fatalf("timeline entries = %d", n)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_log WHERE action = 'claim.bank.correct' AND subject = $1`, "claim:"+bad.ClaimID.String()); n != 1 {
		t.Fatalf("audit entries = %d", n)
	}

	// A repeat changes nothing; another account now is refused.
	if view, changed, err := correctBank(s, merchant, bad.ClaimID, models.BankInput{BankCode: "088", AccountNumber: "110999888777", Holder: "김상인"}); err != nil || changed || view.AccountMasked != "******8777" {
		t.Fatalf("repeat: %+v %v %v", view, changed, err)
	}
	if _, _, err := correctBank(s, merchant, bad.ClaimID, models.BankInput{BankCode: "088", AccountNumber: "110999888000", Holder: "김상인"}); code(err) != "account_check_not_failed" {
		t.Fatalf("change without a failure: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE claim_id = $1 AND note = $2`, bad.ClaimID, models.NoteAccountCorrected); n != 1 {
		t.Fatalf("timeline entries after the repeat = %d", n)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_log WHERE action = 'claim.bank.correct'`); n != 1 {
		t.Fatalf("audit entries after the repeat = %d", n)
	}

	// The next batch takes the corrected claim, with the new bank and account.
	last, err := payouttest.CreateBatch(ctx, s, creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil || last.Lines != 1 || last.Total != bad.Amount {
		t.Fatalf("batch after the correction: %+v %v", last, err)
	}
	work, err := s.PayoutWorkLines(ctx, last.ID, 1, 1, false)
	if err != nil || len(work) != 1 || work[0].ClaimID != bad.ClaimID || work[0].BankCode != "088" || work[0].Account != "110999888777" {
		t.Fatalf("work line: %+v %v", work, err)
	}
	// While that line is at the bank, the account cannot change under it.
	if _, err := s.FailPayoutLine(ctx, bad.ID, "holder_mismatch", "x", "api"); err != nil { // already failed: changes nothing
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET account_check_failed_at = now(), account_check_failure = 'invalid_account' WHERE id = $1`, bad.ClaimID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := correctBank(s, merchant, bad.ClaimID, models.BankInput{BankCode: "004", AccountNumber: "1109998880001", Holder: "김상인"}); code(err) != "payout_in_progress" {
		t.Fatalf("correction while a line is in flight: %v", err)
	}
	_ = seeded
}
