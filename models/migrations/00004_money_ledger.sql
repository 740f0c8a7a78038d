-- +goose Up
-- Double-entry ledger. Every transaction's lines sum to zero (checked at commit by
-- a deferred constraint trigger); balances are kept per account, and a program's
-- budget and a merchant's payable can never go negative. Corrections are
-- reversals, never deletes: lines and transactions are append-only.
CREATE TABLE ledger_accounts (
    id           bigserial PRIMARY KEY,
    code         text NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('funding','budget','payable','clearing','rounding')),
    program_code text NOT NULL REFERENCES programs(code),
    instrument   text CHECK (instrument IN ('compensation','prepurchase','fee_waiver')),
    claim_id     uuid REFERENCES claims(id),
    balance      bigint NOT NULL DEFAULT 0,
    CHECK (kind NOT IN ('budget','payable') OR balance >= 0)
);

CREATE TABLE ledger_transactions (
    id              uuid PRIMARY KEY,
    program_code    text NOT NULL REFERENCES programs(code),
    kind            text NOT NULL CHECK (kind IN ('funding','entitlement','payment','reversal')),
    idempotency_key text NOT NULL UNIQUE,
    reverses        uuid UNIQUE REFERENCES ledger_transactions(id),
    memo            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_lines (
    id         bigserial PRIMARY KEY,
    tx_id      uuid NOT NULL REFERENCES ledger_transactions(id),
    account_id bigint NOT NULL REFERENCES ledger_accounts(id),
    amount     bigint NOT NULL CHECK (amount <> 0)
);
CREATE INDEX ledger_lines_tx_idx ON ledger_lines (tx_id);
CREATE INDEX ledger_lines_account_idx ON ledger_lines (account_id);

-- +goose StatementBegin
CREATE FUNCTION ledger_line_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NEW;
END;
$$;
CREATE FUNCTION ledger_tx_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    n int;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*) INTO total, n FROM ledger_lines WHERE tx_id = NEW.tx_id;
    IF total <> 0 OR n < 2 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (sum %, % lines)', NEW.tx_id, total, n
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: correct by reversal', TG_TABLE_NAME;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER ledger_lines_apply AFTER INSERT ON ledger_lines FOR EACH ROW EXECUTE FUNCTION ledger_line_applied();
CREATE CONSTRAINT TRIGGER ledger_lines_balanced AFTER INSERT ON ledger_lines
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_tx_balanced();
CREATE TRIGGER ledger_lines_append_only BEFORE UPDATE OR DELETE ON ledger_lines FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- What a merchant is owed, by instrument. One row per source fact (an approved
-- compensation, a received purchase order, a fee-waiver run line): source_key is
-- unique, so writing the same entitlement twice is a no-op.
CREATE TABLE entitlements (
    id           uuid PRIMARY KEY,
    claim_id     uuid NOT NULL REFERENCES claims(id),
    program_code text NOT NULL REFERENCES programs(code),
    instrument   text NOT NULL CHECK (instrument IN ('compensation','prepurchase','fee_waiver')),
    amount       bigint NOT NULL CHECK (amount > 0 AND amount % 10 = 0),
    source_key   text NOT NULL UNIQUE,
    tx_id        uuid NOT NULL REFERENCES ledger_transactions(id),
    status       text NOT NULL DEFAULT 'owed' CHECK (status IN ('owed','batched','paid','reversed')),
    batch_id     uuid,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entitlements_owed_idx ON entitlements (program_code, status, claim_id);
CREATE INDEX entitlements_claim_idx ON entitlements (claim_id);

-- +goose Down
DROP TABLE entitlements;
DROP TABLE ledger_lines;
DROP TABLE ledger_transactions;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_line_applied;
DROP FUNCTION ledger_tx_balanced;
DROP FUNCTION ledger_append_only;
