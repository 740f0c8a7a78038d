-- +goose Up
-- Verification and review: reviewer decisions (segregation of duties enforced
-- here as well as in the workflow's update validators), info requests,
-- appeals, documents, and the indexes the reviewer queue pages with.

-- A claim far above its estimate is flagged: claimed > estimate × ratio.
ALTER TABLE programs ADD COLUMN review_claim_ratio_bp integer NOT NULL DEFAULT 15000 CHECK (review_claim_ratio_bp >= 10000);

-- Every staff decision on a claim, in order. request_id is the Temporal update
-- id, so a retried activity or a replayed request writes nothing twice.
CREATE TABLE review_decisions (
    id          bigserial PRIMARY KEY,
    claim_id    uuid NOT NULL REFERENCES claims(id),
    request_id  text NOT NULL UNIQUE,
    action      text NOT NULL CHECK (action IN ('approve','second_approve','reject','request_info')),
    decided_by  uuid NOT NULL REFERENCES users(id),
    -- for second_approve: the first approver (filled in by the trigger)
    first_by    uuid REFERENCES users(id),
    amount      bigint CHECK (amount >= 0 AND amount % 10 = 0),
    reason_code text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '',
    status_after text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    CHECK (action NOT IN ('approve','second_approve') OR amount IS NOT NULL),
    CHECK (action <> 'reject' OR (reason_code <> '' AND reason <> '')),
    CHECK (action <> 'second_approve' OR (first_by IS NOT NULL AND first_by <> decided_by))
);
CREATE INDEX review_decisions_claim_idx ON review_decisions (claim_id, id);
CREATE INDEX review_decisions_user_idx ON review_decisions (decided_by, at DESC);

-- One appeal per claim.
CREATE TABLE review_appeals (
    claim_id   uuid PRIMARY KEY REFERENCES claims(id),
    request_id text NOT NULL UNIQUE,
    filed_by   uuid NOT NULL REFERENCES users(id),
    reason     text NOT NULL CHECK (reason <> ''),
    rejected_by uuid REFERENCES users(id),
    filed_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
-- Segregation of duties, enforced by the database whatever the caller:
--  * nobody decides on a claim they filed;
--  * a second approval needs the approver role and someone other than the
--    first approver (filled into first_by here, never trusted from the caller);
--  * after an appeal, whoever rejected the claim does not decide it again.
CREATE FUNCTION review_decisions_sod() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    filer uuid;
    first uuid;
    rejecter uuid;
    roles text[];
BEGIN
    SELECT merchant_id INTO filer FROM claims WHERE id = NEW.claim_id FOR UPDATE;
    IF filer = NEW.decided_by THEN
        RAISE EXCEPTION 'segregation of duties: % filed claim %', NEW.decided_by, NEW.claim_id USING ERRCODE = 'RL403';
    END IF;
    SELECT u.roles INTO roles FROM users u WHERE u.id = NEW.decided_by;
    IF NOT (roles && ARRAY['reviewer','approver']) THEN
        RAISE EXCEPTION 'segregation of duties: % is not a reviewer or approver', NEW.decided_by USING ERRCODE = 'RL403';
    END IF;
    IF NEW.action = 'second_approve' THEN
        SELECT decided_by INTO first FROM review_decisions
            WHERE claim_id = NEW.claim_id AND action = 'approve' ORDER BY id DESC LIMIT 1;
        IF first IS NULL THEN
            RAISE EXCEPTION 'second approval of claim % without a first approval', NEW.claim_id USING ERRCODE = 'RL409';
        END IF;
        IF first = NEW.decided_by OR NOT ('approver' = ANY(roles)) THEN
            RAISE EXCEPTION 'segregation of duties: second approval of claim % by %', NEW.claim_id, NEW.decided_by USING ERRCODE = 'RL403';
        END IF;
        NEW.first_by := first;
    END IF;
    SELECT rejected_by INTO rejecter FROM review_appeals WHERE claim_id = NEW.claim_id;
    IF rejecter = NEW.decided_by THEN
        RAISE EXCEPTION 'segregation of duties: % rejected claim % before its appeal', NEW.decided_by, NEW.claim_id USING ERRCODE = 'RL403';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER review_decisions_sod BEFORE INSERT ON review_decisions FOR EACH ROW EXECUTE FUNCTION review_decisions_sod();
CREATE TRIGGER review_decisions_append_only BEFORE UPDATE OR DELETE ON review_decisions FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Info requests: a reviewer asks, the merchant answers before due_at, or the
-- request is closed when the deadline passes (the workflow's durable timer).
CREATE TABLE review_info_requests (
    id           bigserial PRIMARY KEY,
    claim_id     uuid NOT NULL REFERENCES claims(id),
    request_id   text NOT NULL UNIQUE,
    requested_by uuid NOT NULL REFERENCES users(id),
    note         text NOT NULL,
    due_at       timestamptz NOT NULL,
    reminded_at  timestamptz,
    answered_at  timestamptz,
    answer       text NOT NULL DEFAULT '',
    expired_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_info_requests_claim_idx ON review_info_requests (claim_id, id DESC);
CREATE UNIQUE INDEX review_info_requests_open_key ON review_info_requests (claim_id) WHERE answered_at IS NULL AND expired_at IS NULL;

-- Evidence documents, stored in the database (bounded size), named by SHA-256.
CREATE TABLE claim_documents (
    id           uuid PRIMARY KEY,
    claim_id     uuid NOT NULL REFERENCES claims(id),
    uploaded_by  uuid NOT NULL REFERENCES users(id),
    filename     text NOT NULL,
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
    sha256       bytea NOT NULL,
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (claim_id, sha256)
);

-- Reviewer queue: keyset pages per program (and status) by age or amount.
CREATE INDEX claims_program_created_idx ON claims (program_code, created_at, id);
CREATE INDEX claims_program_status_loss_idx ON claims (program_code, status, claimed_loss, id);
CREATE INDEX claims_program_loss_idx ON claims (program_code, claimed_loss, id);
-- regional desks work their region's queue
CREATE INDEX claims_program_status_region_idx ON claims (program_code, status, region, created_at, id);

-- Counts per status for the queue's tabs, kept by a trigger instead of counted
-- on every page view (a GROUP BY over a million claims takes ~0.5 s). Each
-- change adds or subtracts one on one of 16 shards per (program, status),
-- chosen by the backend's pid, so concurrent intake transactions rarely wait
-- for the same row, and a transaction touching several claims always takes
-- the same shard (random shards per row let two group commits lock rows in
-- opposite orders and deadlock). The count is the sum of the shards.
CREATE TABLE claim_status_counts (
    program_code text     NOT NULL,
    status       text     NOT NULL,
    shard        smallint NOT NULL,
    n            bigint   NOT NULL,
    PRIMARY KEY (program_code, status, shard)
);
-- +goose StatementBegin
CREATE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (OLD.program_code, OLD.status, pick, -1)
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n - 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (NEW.program_code, NEW.status, pick, 1)
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER claims_status_counted_ins AFTER INSERT OR DELETE ON claims FOR EACH ROW EXECUTE FUNCTION claim_status_counted();
CREATE TRIGGER claims_status_counted_upd AFTER UPDATE OF status, program_code ON claims FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.program_code IS DISTINCT FROM NEW.program_code)
    EXECUTE FUNCTION claim_status_counted();
INSERT INTO claim_status_counts (program_code, status, shard, n) SELECT program_code, status, 0, count(*) FROM claims GROUP BY 1, 2;

-- +goose Down
DROP TRIGGER claims_status_counted_upd ON claims;
DROP TRIGGER claims_status_counted_ins ON claims;
DROP FUNCTION claim_status_counted;
DROP TABLE claim_status_counts;
DROP INDEX claims_program_status_region_idx;
DROP INDEX claims_program_loss_idx;
DROP INDEX claims_program_status_loss_idx;
DROP INDEX claims_program_created_idx;
DROP TABLE claim_documents;
DROP TABLE review_info_requests;
DROP TRIGGER review_decisions_sod ON review_decisions;
DROP TABLE review_appeals;
DROP TABLE review_decisions;
DROP FUNCTION review_decisions_sod;
ALTER TABLE programs DROP COLUMN review_claim_ratio_bp;
