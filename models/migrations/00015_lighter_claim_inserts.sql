-- +goose Up
-- Less work per filed claim. Intake writes every index of claims and runs
-- every row trigger of claims for every claim, on the two cores that also
-- serve the requests, so each one costs capacity on the day a window opens.
--
-- 1. Two reviewer-queue indexes go. claims_program_loss_idx served "every
--    status, largest (or smallest) claim first"; ReviewQueue now reads that
--    view as one short scan of claims_program_status_loss_idx per status (a
--    dozen statuses, a page from each, merged). claims_program_status_region_idx
--    served a region filter on top of a status; the status-led indexes serve
--    it by filtering (a region holds about one claim in 17, so a page of 50
--    reads about 850 index entries). bench/queue times both views over a
--    million claims.
--
-- 2. The foreign keys from claims to programs and to users (the merchant)
--    are checked once per statement instead of once per claim. A foreign key
--    runs one query, with an executor of its own, per inserted row: 128 of
--    them for a group of 64 claims, all but one of the program ones for the
--    same row (measured: ~5 µs per claim each). The statement trigger that
--    keeps the status counts already reads the claims a statement inserted;
--    it now also locks their programs and merchants FOR KEY SHARE, as the
--    foreign keys did, in one query each, and refuses the statement when one
--    is missing (SQLSTATE 23503, named as the constraints were). The other
--    side of each constraint is a trigger on programs and on users: a
--    program or user that claims name can be neither deleted nor given
--    another key. Together they keep what the constraints kept, also against
--    concurrent writers: the key-share lock makes a delete wait for the
--    claims' commit, and the delete's check then sees them. Moving a claim to
--    another program or merchant is checked by the row trigger on UPDATE.
--    (bench/allocation disables claims_status_counted_ins while it COPYs
--    claims; they name the program and merchant it has just created.)
--    The foreign keys from claim_goods and claim_events to claims stay: they
--    cascade deletes, and the planner reads them for join estimates.
--
-- 3. The receipt number is built by a PL/pgSQL function instead of an SQL
--    one. An SQL function that cannot be inlined (00014's draws nextval in a
--    FROM clause so that it runs once) starts an executor for every call:
--    ~10% of an intake backend's CPU in a profile at 3,000 claims/s. PL/pgSQL
--    evaluates these two simple expressions without one, and still draws the
--    sequence exactly once per call.
DROP INDEX claims_program_loss_idx;
DROP INDEX claims_program_status_region_idx;
ALTER TABLE claims DROP CONSTRAINT claims_program_code_fkey;
ALTER TABLE claims DROP CONSTRAINT claims_merchant_id_fkey;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_receipt_no(filed_at timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $$
DECLARE
    n bigint := nextval('claim_receipt_seq');
BEGIN
    RETURN 'R' || to_char(filed_at AT TIME ZONE 'Asia/Seoul', 'YYMMDD') || '-' ||
        CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
    programs integer;
    merchants integer;
    found integer;
BEGIN
    -- (plpgsql plans a statement when it first runs it, so each branch only
    -- names the transition tables its trigger has)
    IF TG_OP = 'INSERT' THEN
        SELECT count(DISTINCT program_code), count(DISTINCT merchant_id) INTO programs, merchants FROM new_rows;
        PERFORM 1 FROM programs p WHERE p.code IN (SELECT program_code FROM new_rows) FOR KEY SHARE OF p;
        GET DIAGNOSTICS found = ROW_COUNT;
        IF found <> programs THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_program_code_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_program_code_fkey', TABLE = 'claims',
                      DETAIL = 'a claim names a program that does not exist';
        END IF;
        PERFORM 1 FROM users u WHERE u.id IN (SELECT merchant_id FROM new_rows) FOR KEY SHARE OF u;
        GET DIAGNOSTICS found = ROW_COUNT;
        IF found <> merchants THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_merchant_id_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_merchant_id_fkey', TABLE = 'claims',
                      DETAIL = 'a claim names a merchant that does not exist';
        END IF;
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n)
            SELECT program_code, status, pick, count(*) FROM new_rows
            GROUP BY program_code, status ORDER BY program_code, status
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n)
            SELECT program_code, status, pick, -count(*) FROM old_rows
            GROUP BY program_code, status ORDER BY program_code, status
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    IF NEW.program_code IS DISTINCT FROM OLD.program_code THEN
        PERFORM 1 FROM programs p WHERE p.code = NEW.program_code FOR KEY SHARE OF p;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_program_code_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_program_code_fkey', TABLE = 'claims',
                      DETAIL = format('Key (program_code)=(%s) is not present in table "programs".', NEW.program_code);
        END IF;
    END IF;
    IF NEW.merchant_id IS DISTINCT FROM OLD.merchant_id THEN
        PERFORM 1 FROM users u WHERE u.id = NEW.merchant_id FOR KEY SHARE OF u;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_merchant_id_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_merchant_id_fkey', TABLE = 'claims',
                      DETAIL = format('Key (merchant_id)=(%s) is not present in table "users".', NEW.merchant_id);
        END IF;
        IF NEW.status IS NOT DISTINCT FROM OLD.status AND NEW.program_code IS NOT DISTINCT FROM OLD.program_code THEN
            RETURN NULL; -- the counts do not move
        END IF;
    END IF;
    INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (OLD.program_code, OLD.status, pick, -1)
        ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n - 1;
    INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (NEW.program_code, NEW.status, pick, 1)
        ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + 1;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION program_keeps_its_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.code IS NOT DISTINCT FROM OLD.code THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM claims WHERE program_code = OLD.code) THEN
        RAISE EXCEPTION 'update or delete on table "programs" violates foreign key constraint "claims_program_code_fkey" on table "claims"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_program_code_fkey', TABLE = 'programs',
                  DETAIL = format('Key (code)=(%s) is still referenced from table "claims".', OLD.code);
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER programs_keep_their_claims BEFORE DELETE OR UPDATE OF code ON programs
    FOR EACH ROW EXECUTE FUNCTION program_keeps_its_claims();

-- +goose StatementBegin
CREATE FUNCTION merchant_keeps_their_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM claims WHERE merchant_id = OLD.id) THEN
        RAISE EXCEPTION 'update or delete on table "users" violates foreign key constraint "claims_merchant_id_fkey" on table "claims"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_merchant_id_fkey', TABLE = 'users',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "claims".', OLD.id);
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER users_keep_their_claims BEFORE DELETE OR UPDATE OF id ON users
    FOR EACH ROW EXECUTE FUNCTION merchant_keeps_their_claims();
-- The row trigger now also watches the merchant.
DROP TRIGGER claims_status_counted_upd ON claims;
CREATE TRIGGER claims_status_counted_upd AFTER UPDATE OF status, program_code, merchant_id ON claims FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.program_code IS DISTINCT FROM NEW.program_code
        OR OLD.merchant_id IS DISTINCT FROM NEW.merchant_id)
    EXECUTE FUNCTION claim_status_moved();

-- +goose Down
DROP TRIGGER claims_status_counted_upd ON claims;
CREATE TRIGGER claims_status_counted_upd AFTER UPDATE OF status, program_code ON claims FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.program_code IS DISTINCT FROM NEW.program_code)
    EXECUTE FUNCTION claim_status_moved();
DROP TRIGGER users_keep_their_claims ON users;
DROP FUNCTION merchant_keeps_their_claims();
DROP TRIGGER programs_keep_their_claims ON programs;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_receipt_no(filed_at timestamptz) RETURNS text
LANGUAGE sql VOLATILE PARALLEL UNSAFE AS $$
	SELECT 'R' || to_char(filed_at AT TIME ZONE 'Asia/Seoul', 'YYMMDD') || '-' ||
		CASE WHEN s.n < 1000000 THEN lpad(s.n::text, 6, '0') ELSE s.n::text END
	FROM (SELECT nextval('claim_receipt_seq') AS n) s
$$;
-- +goose StatementEnd
DROP FUNCTION program_keeps_its_claims();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n)
            SELECT program_code, status, pick, count(*) FROM new_rows
            GROUP BY program_code, status ORDER BY program_code, status
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO claim_status_counts AS c (program_code, status, shard, n)
            SELECT program_code, status, pick, -count(*) FROM old_rows
            GROUP BY program_code, status ORDER BY program_code, status
            ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (OLD.program_code, OLD.status, pick, -1)
        ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n - 1;
    INSERT INTO claim_status_counts AS c (program_code, status, shard, n) VALUES (NEW.program_code, NEW.status, pick, 1)
        ON CONFLICT (program_code, status, shard) DO UPDATE SET n = c.n + 1;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
ALTER TABLE claims ADD CONSTRAINT claims_program_code_fkey FOREIGN KEY (program_code) REFERENCES programs(code);
ALTER TABLE claims ADD CONSTRAINT claims_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES users(id);
CREATE INDEX claims_program_status_region_idx ON claims (program_code, status, region, created_at, id);
CREATE INDEX claims_program_loss_idx ON claims (program_code, claimed_loss, id);
