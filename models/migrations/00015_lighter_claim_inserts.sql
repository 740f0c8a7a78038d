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
-- 2. The foreign key from claims to programs is checked once per statement
--    instead of once per claim. A foreign key runs one query per inserted row
--    (measured: ~5 µs per claim, 64 queries for a group of 64 claims, all for
--    the same program row). The statement trigger that keeps the status counts
--    already reads the claims a statement inserted; it now also locks their
--    programs FOR KEY SHARE, as the foreign key did, and refuses a statement
--    whose program does not exist (SQLSTATE 23503, named as the constraint
--    was). The other side of the constraint is a trigger on programs: a
--    program with claims cannot be deleted or change its code. Together they
--    keep exactly what the constraint kept, including against concurrent
--    writers: the key-share lock makes a delete of the program wait for the
--    claims' commit, and the delete's check then sees them.
--    (bench/allocation disables claims_status_counted_ins while it COPYs
--    claims; those claims name a program it has just created.)
DROP INDEX claims_program_loss_idx;
DROP INDEX claims_program_status_region_idx;
ALTER TABLE claims DROP CONSTRAINT claims_program_code_fkey;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
    wanted integer;
    found integer;
BEGIN
    -- (plpgsql plans a statement when it first runs it, so each branch only
    -- names the transition tables its trigger has)
    IF TG_OP = 'INSERT' THEN
        SELECT count(DISTINCT program_code) INTO wanted FROM new_rows;
        PERFORM 1 FROM programs p WHERE p.code IN (SELECT program_code FROM new_rows) FOR KEY SHARE OF p;
        GET DIAGNOSTICS found = ROW_COUNT;
        IF found <> wanted THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_program_code_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_program_code_fkey', TABLE = 'claims',
                      DETAIL = 'a claim names a program that does not exist';
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

-- +goose Down
DROP TRIGGER programs_keep_their_claims ON programs;
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
CREATE INDEX claims_program_status_region_idx ON claims (program_code, status, region, created_at, id);
CREATE INDEX claims_program_loss_idx ON claims (program_code, claimed_loss, id);
