-- +goose Up
-- Goods lines and timeline entries name their claim, and their foreign keys
-- checked that once per inserted row: one query, with an executor of its own,
-- for each of them. Intake writes ~2.5 of those rows per claim, so a group of
-- 64 claims ran ~160 checks of claims it had written itself a moment before;
-- in a profile at 3,000 claims/s they were ~10% of PostgreSQL's CPU, and
-- without them PostgreSQL's CPU per claim fell by 10–17% (measured at 3,500
-- claims/s on 2 cores). As 00015 did for claims → programs and users, the
-- check now runs once per statement, and keeps what the constraints kept:
--
-- * A statement trigger on INSERT locks the claims the new rows name FOR KEY
--   SHARE, in one query, and refuses the statement when one is missing
--   (SQLSTATE 23503, named as the constraint was). A row trigger checks a
--   claim_id changed by UPDATE the same way.
-- * ON DELETE CASCADE: a statement trigger on claims deletes the goods and
--   timeline of the claims a statement deleted, in one query each.
-- * A claim with goods or timeline entries cannot be given another id.
--
-- Against concurrent writers it holds as the constraints did: the key-share
-- lock makes a delete of the claim wait for the insert's commit, after which
-- the delete's cascade (a new snapshot per query) removes the new rows too;
-- an insert that comes second waits for the delete and then finds the claim
-- gone. (The planner no longer reads these constraints for join estimates
-- of goods or timeline with claims; those joins are all by claim id, which
-- the column statistics estimate well enough.)
--
-- Each check probes the parent's primary key once per parent named, through
-- a LATERAL subquery (which a row lock keeps from being flattened into a
-- join), as the foreign keys' own queries did. PL/pgSQL keeps a query's plan
-- for the session, and a join or "= ANY (array)" planned while the parent
-- table was small keeps scanning all of it as it grows: a first version of
-- this migration did, and cost five times the constraints' CPU per claim by
-- 30,000 claims (BenchmarkIntakeGroupStatement). 00015's status-count trigger
-- joined users that way (users grow with every merchant who signs up); it now
-- probes programs and merchants the same way, and reads new_rows once for both.
ALTER TABLE claim_goods DROP CONSTRAINT claim_goods_claim_id_fkey;
ALTER TABLE claim_events DROP CONSTRAINT claim_events_claim_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION claim_lines_name_claims() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named uuid[];
    claims_locked integer;
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN -- on INSERT
        SELECT array_agg(DISTINCT claim_id) INTO named FROM new_rows;
    ELSIF NEW.claim_id IS DISTINCT FROM OLD.claim_id THEN -- a row on UPDATE OF claim_id
        named := ARRAY[NEW.claim_id];
    ELSE
        RETURN NULL;
    END IF;
    -- One primary-key probe per claim named (see the note at the top).
    PERFORM 1 FROM unnest(named) AS n(id), LATERAL (SELECT FROM claims c WHERE c.id = n.id FOR KEY SHARE OF c) AS probe;
    GET DIAGNOSTICS claims_locked = ROW_COUNT;
    IF claims_locked = coalesce(cardinality(named), 0) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_TABLE_NAME || '_claim_id_fkey'
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_TABLE_NAME || '_claim_id_fkey', TABLE = TG_TABLE_NAME,
              DETAIL = 'a row names a claim that does not exist';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER claim_goods_name_claims AFTER INSERT ON claim_goods REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION claim_lines_name_claims();
CREATE TRIGGER claim_goods_move_claims AFTER UPDATE OF claim_id ON claim_goods
    FOR EACH ROW EXECUTE FUNCTION claim_lines_name_claims();
CREATE TRIGGER claim_events_name_claims AFTER INSERT ON claim_events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION claim_lines_name_claims();
CREATE TRIGGER claim_events_move_claims AFTER UPDATE OF claim_id ON claim_events
    FOR EACH ROW EXECUTE FUNCTION claim_lines_name_claims();

-- +goose StatementBegin
CREATE FUNCTION claims_take_their_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone uuid[];
BEGIN
    -- Claims are deleted only by hand and in tests (the purge anonymises
    -- them), so "= ANY" is enough here.
    SELECT array_agg(id) INTO gone FROM old_rows;
    DELETE FROM claim_goods WHERE claim_id = ANY (gone);
    DELETE FROM claim_events WHERE claim_id = ANY (gone);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER claims_take_their_lines AFTER DELETE ON claims REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION claims_take_their_lines();

-- +goose StatementBegin
CREATE FUNCTION claim_keeps_its_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named_by text;
BEGIN
    IF NEW.id IS NOT DISTINCT FROM OLD.id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM claim_goods WHERE claim_id = OLD.id) THEN
        named_by := 'claim_goods';
    ELSIF EXISTS (SELECT 1 FROM claim_events WHERE claim_id = OLD.id) THEN
        named_by := 'claim_events';
    ELSE
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'update on table "claims" violates foreign key constraint "%" on table "%"', named_by || '_claim_id_fkey', named_by
        USING ERRCODE = 'foreign_key_violation', CONSTRAINT = named_by || '_claim_id_fkey', TABLE = 'claims',
              DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', OLD.id, named_by);
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER claims_keep_their_lines BEFORE UPDATE OF id ON claims
    FOR EACH ROW EXECUTE FUNCTION claim_keeps_its_lines();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
    programs_named text[];
    merchants_named uuid[];
    locked integer;
BEGIN
    -- (plpgsql plans a statement when it first runs it, so each branch only
    -- names the transition tables its trigger has)
    IF TG_OP = 'INSERT' THEN
        -- One primary-key probe per program and merchant named, whatever the
        -- size of users when this session planned it (see the note at the top).
        SELECT array_agg(DISTINCT program_code), array_agg(DISTINCT merchant_id)
            INTO programs_named, merchants_named FROM new_rows;
        PERFORM 1 FROM unnest(programs_named) AS n(code), LATERAL (SELECT FROM programs p WHERE p.code = n.code FOR KEY SHARE OF p) AS probe;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked <> coalesce(cardinality(programs_named), 0) THEN
            RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_program_code_fkey"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_program_code_fkey', TABLE = 'claims',
                      DETAIL = 'a claim names a program that does not exist';
        END IF;
        PERFORM 1 FROM unnest(merchants_named) AS n(id), LATERAL (SELECT FROM users u WHERE u.id = n.id FOR KEY SHARE OF u) AS probe;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked <> coalesce(cardinality(merchants_named), 0) THEN
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

-- +goose Down
DROP TRIGGER claims_keep_their_lines ON claims;
DROP FUNCTION claim_keeps_its_lines();
DROP TRIGGER claims_take_their_lines ON claims;
DROP FUNCTION claims_take_their_lines();
DROP TRIGGER claim_events_move_claims ON claim_events;
DROP TRIGGER claim_events_name_claims ON claim_events;
DROP TRIGGER claim_goods_move_claims ON claim_goods;
DROP TRIGGER claim_goods_name_claims ON claim_goods;
DROP FUNCTION claim_lines_name_claims();
ALTER TABLE claim_events ADD CONSTRAINT claim_events_claim_id_fkey FOREIGN KEY (claim_id) REFERENCES claims(id) ON DELETE CASCADE;
ALTER TABLE claim_goods ADD CONSTRAINT claim_goods_claim_id_fkey FOREIGN KEY (claim_id) REFERENCES claims(id) ON DELETE CASCADE;
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
