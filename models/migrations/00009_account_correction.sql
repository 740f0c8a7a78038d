-- +goose Up
-- Payout account correction. A payout line that fails for a reason in the
-- account itself (the bank's holder check or transfer said holder_mismatch
-- or invalid_account) flags its claim: batches skip the claim's owed
-- entitlements until the merchant corrects the account
-- (PUT /api/v1/claims/{id}/bank), which clears the flag.
ALTER TABLE claims
    ADD COLUMN account_check_failed_at timestamptz,
    ADD COLUMN account_check_failure text NOT NULL DEFAULT '';
-- Few claims are flagged at any time: batches anti-join on this.
CREATE INDEX claims_account_check_failed_idx ON claims (id) WHERE account_check_failed_at IS NOT NULL;

-- +goose Down
DROP INDEX claims_account_check_failed_idx;
ALTER TABLE claims DROP COLUMN account_check_failure, DROP COLUMN account_check_failed_at;
