-- +goose Up
CREATE TABLE agencies (
    code text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    phone         text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    roles         text[] NOT NULL CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['merchant','reviewer','approver','program_admin','finance','auditor']),
    agency_code   text REFERENCES agencies(code),
    demo          boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- staff belong to an agency; merchants do not
    CHECK ((roles = ARRAY['merchant']) = (agency_code IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE programs (
    code                 text PRIMARY KEY,
    agency_code          text NOT NULL REFERENCES agencies(code),
    name                 text NOT NULL,
    platform             text NOT NULL,
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('draft','open','closed')),
    outage_starts_at     timestamptz NOT NULL,
    outage_ends_at       timestamptz NOT NULL CHECK (outage_ends_at > outage_starts_at),
    window_opens_at      timestamptz NOT NULL,
    window_closes_at     timestamptz NOT NULL CHECK (window_closes_at > window_opens_at),
    -- staggered application days (홀짝제 / 5부제) by the BRN's last digit, counted from stagger_starts_on
    stagger_mode         text NOT NULL DEFAULT 'none' CHECK (stagger_mode IN ('none','odd_even','five_day')),
    stagger_starts_on    date,
    compensation_rate_bp integer NOT NULL DEFAULT 10000 CHECK (compensation_rate_bp BETWEEN 0 AND 10000),
    compensation_floor   bigint NOT NULL DEFAULT 0 CHECK (compensation_floor >= 0),
    compensation_cap     bigint NOT NULL CHECK (compensation_cap >= 0),
    fast_track_limit     bigint NOT NULL DEFAULT 0 CHECK (fast_track_limit >= 0),
    four_eyes_threshold  bigint NOT NULL CHECK (four_eyes_threshold >= 0),
    prepurchase_cap      bigint NOT NULL DEFAULT 0 CHECK (prepurchase_cap >= 0),
    fee_waiver_starts_on date,
    fee_waiver_ends_on   date,
    fee_rate_bp          integer NOT NULL DEFAULT 600 CHECK (fee_rate_bp BETWEEN 0 AND 10000),
    info_request_days    integer NOT NULL DEFAULT 14,
    appeal_days          integer NOT NULL DEFAULT 30,
    rule_version         text NOT NULL DEFAULT 'v1',
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE claim_receipt_seq;

CREATE TABLE claims (
    id                    uuid PRIMARY KEY,
    receipt_no            text NOT NULL UNIQUE,
    program_code          text NOT NULL REFERENCES programs(code),
    merchant_id           uuid NOT NULL REFERENCES users(id),
    brn                   text NOT NULL CHECK (brn ~ '^[0-9]{10}$'),
    business_name         text NOT NULL,
    representative        text NOT NULL,
    phone                 text NOT NULL,
    category              text NOT NULL,
    region                text NOT NULL,
    claimed_loss          bigint NOT NULL CHECK (claimed_loss >= 0),
    accept_offer          boolean NOT NULL DEFAULT false,
    bank_code             text NOT NULL,
    account_ciphertext    bytea NOT NULL,
    account_key_id        text NOT NULL,
    account_last4         text NOT NULL,
    account_blind_index   bytea NOT NULL,
    account_holder        text NOT NULL,
    status                text NOT NULL DEFAULT 'received',
    estimated_loss        bigint CHECK (estimated_loss >= 0),
    approved_compensation bigint NOT NULL DEFAULT 0 CHECK (approved_compensation >= 0),
    prepurchase_allocated bigint NOT NULL DEFAULT 0 CHECK (prepurchase_allocated >= 0),
    fee_waived            bigint NOT NULL DEFAULT 0 CHECK (fee_waived >= 0),
    owed_total            bigint NOT NULL DEFAULT 0 CHECK (owed_total >= 0),
    paid_total            bigint NOT NULL DEFAULT 0 CHECK (paid_total >= 0 AND paid_total <= owed_total),
    risk_flags            jsonb NOT NULL DEFAULT '[]',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- one claim per business per program, whatever the retries
    UNIQUE (program_code, brn)
);
CREATE INDEX claims_merchant_idx ON claims (merchant_id, created_at DESC, id);
CREATE INDEX claims_program_status_idx ON claims (program_code, status, created_at, id);
CREATE INDEX claims_account_bidx ON claims (account_blind_index);

CREATE TABLE claim_goods (
    claim_id   uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
    line       integer NOT NULL,
    sku        text NOT NULL,
    name       text NOT NULL,
    unit_price bigint NOT NULL CHECK (unit_price > 0),
    quantity   bigint NOT NULL CHECK (quantity > 0),
    perishable boolean NOT NULL DEFAULT false,
    PRIMARY KEY (claim_id, line),
    UNIQUE (claim_id, sku)
);

-- The claim's timeline. event_key makes every writer (activities retry) idempotent.
CREATE TABLE claim_events (
    id         bigserial PRIMARY KEY,
    claim_id   uuid NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
    event_key  text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    status     text NOT NULL,
    actor_role text NOT NULL,
    actor_id   uuid,
    note       text NOT NULL DEFAULT '',
    UNIQUE (claim_id, event_key)
);

-- Transactional outbox: written in the same transaction as the state it announces.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    aggregate_id  uuid NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    available_at  timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text NOT NULL DEFAULT '',
    UNIQUE (topic, aggregate_id)
);
CREATE INDEX outbox_pending_idx ON outbox (available_at, id) WHERE dispatched_at IS NULL;

-- Idempotency-Key replays: the original status and body, per caller.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Append-only, hash-chained audit log.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor_id  uuid,
    actor     text NOT NULL,
    action    text NOT NULL,
    subject   text NOT NULL,
    ip        text NOT NULL DEFAULT '',
    details   jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL UNIQUE
);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only;
DROP TABLE idempotency_keys;
DROP TABLE outbox;
DROP TABLE claim_events;
DROP TABLE claim_goods;
DROP TABLE claims;
DROP SEQUENCE claim_receipt_seq;
DROP TABLE programs;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE agencies;
