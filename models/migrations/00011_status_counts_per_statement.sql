-- +goose Up
-- The per-status counts of 00003, kept once per statement instead of once per
-- row: intake writes up to 64 claims in one statement, and 64 row triggers
-- each upserting one count row cost ~1.3 ms of a ~12 ms statement. Each
-- statement trigger reads the claims it changed from its transition tables,
-- sums them per (program, status) and upserts one row per pair: aggregated
-- first, because ON CONFLICT cannot touch the same row twice in a statement.
-- The shard is still the backend's pid, so every upsert of a transaction takes
-- the same shard, and the rows go in (program_code, status) order, so two
-- transactions that share a shard lock its rows in the same order.
-- Transition tables need one event per trigger, hence two; the INSERT one
-- keeps the name claims_status_counted_ins (the allocation benchmark disables
-- it by that name while it COPYs claims). Status changes stay row by row as
-- in 00003: they come one claim at a time, and a statement trigger on UPDATE
-- could not filter by column, so it would run for every update of a claim.
-- DROP TRIGGER locks claims until commit, so no write falls between the old
-- triggers and the new ones.
DROP TRIGGER claims_status_counted_upd ON claims;
DROP TRIGGER claims_status_counted_ins ON claims;
DROP FUNCTION claim_status_counted();
-- +goose StatementBegin
CREATE FUNCTION claim_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pick smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
    -- (plpgsql plans a statement when it first runs it, so each branch only
    -- names the transition tables its trigger has)
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
CREATE TRIGGER claims_status_counted_ins AFTER INSERT ON claims REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION claim_status_counted();
CREATE TRIGGER claims_status_counted_del AFTER DELETE ON claims REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION claim_status_counted();
-- +goose StatementBegin
CREATE FUNCTION claim_status_moved() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER claims_status_counted_upd AFTER UPDATE OF status, program_code ON claims FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.program_code IS DISTINCT FROM NEW.program_code)
    EXECUTE FUNCTION claim_status_moved();

-- +goose Down
DROP TRIGGER claims_status_counted_upd ON claims;
DROP TRIGGER claims_status_counted_del ON claims;
DROP TRIGGER claims_status_counted_ins ON claims;
DROP FUNCTION claim_status_counted();
DROP FUNCTION claim_status_moved();
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
