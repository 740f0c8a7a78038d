package models

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// IsAccountFailure reports whether a payout line's failure code says the
// payout account itself is wrong (the holder check or the transfer found
// another holder, or no such open account): paying it again cannot help
// until the merchant corrects the account. Transient and limit failures
// (daily_limit_exceeded, …) are not.
func IsAccountFailure(code string) bool {
	return code == FailureHolderMismatch || code == FailureInvalidAccount
}

// The bank adapter's failure codes that mean the account is wrong. They are
// the bank package's CodeHolderMismatch and CodeInvalidAccount (a test there
// keeps them equal); models does not import the workflows layer.
const (
	FailureHolderMismatch = "holder_mismatch"
	FailureInvalidAccount = "invalid_account"
)

// NoteAccountCorrected is the timeline note (a catalog message id) of an
// account correction.
const NoteAccountCorrected = "claim.note.account_corrected"

// sealedAccount is a payout account as the claims table stores it: the
// number encrypted (bound to the claim id), its last four digits, and the
// blind index of bank code and number that finds equal accounts.
type sealedAccount struct {
	ciphertext []byte
	keyID      string
	last4      string
	blindIndex []byte
}

// sealAccount encrypts a normalized (digits-only) account number for a claim.
func (s *Store) sealAccount(claimID uuid.UUID, bankCode, account string) sealedAccount {
	a := sealedAccount{last4: account[len(account)-4:], blindIndex: s.Vault.BlindIndex(bankCode + ":" + account)}
	a.ciphertext, a.keyID = s.Vault.Seal([]byte(account), []byte(claimID.String()))
	return a
}

// Normalize validates a payout account as claim intake does (the same
// checks and problem codes; fields named without the "bank." prefix) and
// returns the digits-only account number.
func (b *BankInput) Normalize() (string, error) {
	fields := map[string]string{}
	account := b.normalize(fields, "")
	if len(fields) > 0 {
		return "", &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return account, nil
}

// ErrAccountCheckNotFailed: the account can be changed only after the bank
// refused it.
var ErrAccountCheckNotFailed = Coded(ECONFLICT, "account_check_not_failed",
	"the payout account can be changed only after the bank's account check failed")

// ErrPayoutInProgress: a payout line of the claim is still at the bank.
var ErrPayoutInProgress = Coded(ECONFLICT, "payout_in_progress",
	"a payout of this claim is in progress; correct the account once it has finished")

// CorrectClaimBank replaces the payout account of the merchant's own claim
// after the bank's account check failed (PUT /api/v1/claims/{id}/bank), in
// tx: the number sealed as intake seals it, the flag cleared (so the next
// batch takes the claim's owed entitlements again), a timeline entry and an
// audit entry. Only the claim's merchant may (staff 403, other merchants
// 404). Repeating it changes nothing: once the flag is cleared, the same
// account answers as it is and another one is 409 account_check_not_failed.
// changed reports whether this call corrected the account.
func (s *Store) CorrectClaimBank(ctx context.Context, tx pgx.Tx, v *User, claimID uuid.UUID, in BankInput, ip string) (view *BankView, changed bool, err error) {
	if v == nil || !v.HasRole(RoleMerchant) || v.IsStaff() {
		return nil, false, Coded(EFORBIDDEN, "forbidden", "only the claim's merchant corrects its payout account")
	}
	account, err := in.Normalize()
	if err != nil {
		return nil, false, err
	}
	var (
		merchant         uuid.UUID
		status, bankCode string
		holder, last4    string
		blindIndex       []byte
		failedAt         *time.Time
		failure          string
	)
	err = tx.QueryRow(ctx, `SELECT merchant_id, status, bank_code, account_holder, account_last4, account_blind_index,
			account_check_failed_at, account_check_failure
		FROM claims WHERE id = $1 FOR UPDATE`, claimID).
		Scan(&merchant, &status, &bankCode, &holder, &last4, &blindIndex, &failedAt, &failure)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && merchant != v.ID {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, err
	}
	sealed := s.sealAccount(claimID, in.BankCode, account)
	if failedAt == nil {
		if bankCode == in.BankCode && holder == in.Holder && bytes.Equal(blindIndex, sealed.blindIndex) {
			return bankView(bankCode, last4, holder), false, nil // corrected before: a repeat
		}
		return nil, false, ErrAccountCheckNotFailed
	}
	// A line of the claim still at the bank reads the account when it is
	// sent: the account must not change under it.
	var inFlight bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payout_lines WHERE claim_id = $1 AND status IN ('pending','sending'))`,
		claimID).Scan(&inFlight); err != nil {
		return nil, false, err
	}
	if inFlight {
		return nil, false, ErrPayoutInProgress
	}
	now := s.Now()
	if _, err := tx.Exec(ctx, `UPDATE claims SET bank_code = $2, account_ciphertext = $3, account_key_id = $4, account_last4 = $5,
			account_blind_index = $6, account_holder = $7, account_check_failed_at = NULL, account_check_failure = '', updated_at = $8
		WHERE id = $1`, claimID, in.BankCode, sealed.ciphertext, sealed.keyID, sealed.last4, sealed.blindIndex, in.Holder, now); err != nil {
		return nil, false, err
	}
	// One entry per failure corrected.
	key := "account_corrected:" + failedAt.UTC().Format(time.RFC3339Nano)
	if _, err := addEvent(ctx, tx, claimID, key, now, status, RoleMerchant, &v.ID, NoteAccountCorrected); err != nil {
		return nil, false, err
	}
	if err := s.Audit(ctx, tx, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "claim.bank.correct",
		Subject: "claim:" + claimID.String(), IP: ip, Details: map[string]any{
			"failure": failure, "bank_code_before": bankCode, "bank_code": in.BankCode,
			"account_changed": !bytes.Equal(blindIndex, sealed.blindIndex), "holder_changed": holder != in.Holder}}); err != nil {
		return nil, false, err
	}
	return bankView(in.BankCode, sealed.last4, in.Holder), true, nil
}

func bankView(code, last4, holder string) *BankView {
	return &BankView{BankCode: code, BankName: Banks[code], AccountMasked: "******" + last4, Holder: holder}
}
