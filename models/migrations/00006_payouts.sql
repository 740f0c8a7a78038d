-- +goose Up
-- Payout batches. A batch takes everything a program owes (entitlements with
-- status 'owed') into one line per claim, is checked against the bank (holder
-- inquiry), approved by a second finance user and then paid line by line.
-- The rules that keep money safe are constraints here, not only code:
--   * the approver is never the creator (payout_batches_segregation);
--   * a batch is approved once (payout_batches_approved_once trigger);
--   * an entitlement sits in at most one live line (payout_line_entitlements_live);
--   * a line has at most one successful transfer (payout_settlements primary key),
--     whatever retries, crashes or duplicate requests happen: Temporal's
--     workflow-ID dedup expires with retention, this does not.
CREATE TABLE payout_batches (
    id             uuid PRIMARY KEY,
    program_code   text NOT NULL REFERENCES programs(code),
    instrument     text CHECK (instrument IN ('compensation','prepurchase','fee_waiver')), -- NULL: every instrument
    cutoff         timestamptz NOT NULL,             -- entitlements created up to this instant
    channel        text NOT NULL DEFAULT 'api' CHECK (channel IN ('api','file')),
    status         text NOT NULL DEFAULT 'checking'
                   CHECK (status IN ('checking','awaiting_approval','transferring','completed')),
    line_count     integer NOT NULL DEFAULT 0 CHECK (line_count >= 0),
    total          bigint  NOT NULL DEFAULT 0 CHECK (total >= 0),
    approved_count integer CHECK (approved_count >= 0),
    approved_total bigint  CHECK (approved_total >= 0),
    created_by     uuid NOT NULL REFERENCES users(id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    checked_at     timestamptz,
    approved_by    uuid REFERENCES users(id),
    approved_at    timestamptz,
    completed_at   timestamptz,
    CONSTRAINT payout_batches_segregation CHECK (approved_by IS NULL OR approved_by <> created_by),
    CONSTRAINT payout_batches_approval CHECK ((approved_by IS NULL) = (approved_at IS NULL)
        AND (approved_by IS NULL) = (approved_count IS NULL)
        AND (approved_count IS NULL) = (approved_total IS NULL)),
    CONSTRAINT payout_batches_status CHECK (status <> 'transferring' OR approved_by IS NOT NULL)
        -- 'completed' without an approval: every line failed the holder check
);
CREATE INDEX payout_batches_program_idx ON payout_batches (program_code, created_at DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION payout_batch_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.created_by <> OLD.created_by OR NEW.program_code <> OLD.program_code THEN
        RAISE EXCEPTION 'payout batch %: identity columns are immutable', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payout_batches_immutable';
    END IF;
    IF OLD.approved_by IS NOT NULL AND (NEW.approved_by IS DISTINCT FROM OLD.approved_by
            OR NEW.approved_at IS DISTINCT FROM OLD.approved_at
            OR NEW.approved_count IS DISTINCT FROM OLD.approved_count
            OR NEW.approved_total IS DISTINCT FROM OLD.approved_total) THEN
        RAISE EXCEPTION 'payout batch % is already approved', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payout_batches_approved_once';
    END IF;
    IF OLD.approved_by IS NULL AND NEW.approved_by IS NOT NULL AND OLD.status <> 'awaiting_approval' THEN
        RAISE EXCEPTION 'payout batch % is not awaiting approval (status %)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payout_batches_approvable';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER payout_batches_guard BEFORE UPDATE ON payout_batches
    FOR EACH ROW EXECUTE FUNCTION payout_batch_guard();

-- One line per claim per batch: the sum of the claim's owed entitlements.
-- transfer_key is the bank's idempotency key for the line's (single) attempt:
-- derived from the line's random id, never from personal data.
CREATE TABLE payout_lines (
    id             uuid PRIMARY KEY,
    batch_id       uuid NOT NULL REFERENCES payout_batches(id),
    seq            integer NOT NULL CHECK (seq > 0),   -- 1..line_count: pages and file order
    claim_id       uuid NOT NULL REFERENCES claims(id),
    program_code   text NOT NULL REFERENCES programs(code),
    bank_code      text NOT NULL,                     -- the payee's bank, for the per-bank views
    amount         bigint NOT NULL CHECK (amount > 0 AND amount % 10 = 0),
    transfer_key   text NOT NULL UNIQUE,
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sending','paid','failed')),
    approved       boolean NOT NULL DEFAULT false,    -- part of the approved instruction
    failure_code   text NOT NULL DEFAULT '',
    failure_reason text NOT NULL DEFAULT '',
    bank_ref       text NOT NULL DEFAULT '',
    checked_at     timestamptz,                       -- holder inquiry passed
    sent_at        timestamptz,                       -- first handed to the bank
    settled_at     timestamptz,                       -- paid or failed
    settled_via    text CHECK (settled_via IN ('api','result_file','holder_check')),
    notified       boolean NOT NULL DEFAULT false,    -- claim timeline written for the outcome
    UNIQUE (batch_id, seq),
    UNIQUE (batch_id, claim_id),
    CHECK ((status IN ('paid','failed')) = (settled_at IS NOT NULL)),
    CHECK (status <> 'sending' OR approved),
    CHECK (status <> 'paid' OR approved)
);
CREATE INDEX payout_lines_claim_idx ON payout_lines (claim_id);
CREATE INDEX payout_lines_unnotified_idx ON payout_lines (batch_id, seq) WHERE NOT notified AND status IN ('paid','failed');

-- Which entitlements a line pays. released: the line failed and the
-- entitlement is owed again (and may join a later batch).
CREATE TABLE payout_line_entitlements (
    line_id        uuid NOT NULL REFERENCES payout_lines(id),
    entitlement_id uuid NOT NULL REFERENCES entitlements(id),
    amount         bigint NOT NULL CHECK (amount > 0),
    released       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (line_id, entitlement_id)
);
CREATE UNIQUE INDEX payout_line_entitlements_live ON payout_line_entitlements (entitlement_id) WHERE NOT released;
-- A batch finds the entitlements it marked by batch_id.
CREATE INDEX entitlements_batch_idx ON entitlements (batch_id) WHERE batch_id IS NOT NULL;

-- The successful transfer of a line, written in the same transaction as the
-- ledger payment. The primary key on line_id is the last guard of "exactly
-- one successful transfer per line".
CREATE TABLE payout_settlements (
    line_id      uuid PRIMARY KEY REFERENCES payout_lines(id),
    transfer_key text NOT NULL UNIQUE,
    claim_id     uuid NOT NULL REFERENCES claims(id),
    amount       bigint NOT NULL CHECK (amount > 0),
    bank_ref     text NOT NULL DEFAULT '',
    via          text NOT NULL CHECK (via IN ('api','result_file')),
    settled_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION payout_settlement_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payout_settlements is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER payout_settlements_append_only BEFORE UPDATE OR DELETE ON payout_settlements
    FOR EACH ROW EXECUTE FUNCTION payout_settlement_append_only();

-- +goose Down
DROP INDEX entitlements_batch_idx;
DROP TABLE payout_settlements;
DROP FUNCTION payout_settlement_append_only;
DROP TABLE payout_line_entitlements;
DROP TABLE payout_lines;
DROP TABLE payout_batches;
DROP FUNCTION payout_batch_guard;
