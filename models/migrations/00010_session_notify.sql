-- +goose Up
-- Web processes cache session lookups for a few seconds (session_cache.go).
-- Whatever ends a session or changes the user behind it tells every process
-- at once: one NOTIFY per statement naming the users concerned (or '*' for
-- many), sent on commit. Sessions are ended by DELETE only (logout, rotation
-- at login, role and password changes through users_end_sessions_on_change,
-- purge), so these two triggers see every way a cached session can go stale.
-- +goose StatementBegin
CREATE FUNCTION sessions_notify_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n   bigint;
    ids text;
BEGIN
    SELECT count(DISTINCT user_id), string_agg(DISTINCT user_id::text, ',') INTO n, ids FROM changed_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    -- a NOTIFY payload is limited to 8000 bytes; many users at once: drop every cached session
    PERFORM pg_notify('relief_sessions', CASE WHEN n > 100 THEN '*' ELSE ids END);
    RETURN NULL;
END;
$$;
CREATE FUNCTION users_notify_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n   bigint;
    ids text;
BEGIN
    SELECT count(*), string_agg(id::text, ',') INTO n, ids FROM changed_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('relief_sessions', CASE WHEN n > 100 THEN '*' ELSE ids END);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER sessions_notify_users AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION sessions_notify_users();
CREATE TRIGGER users_notify_sessions AFTER UPDATE ON users
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION users_notify_sessions();

-- +goose Down
DROP TRIGGER users_notify_sessions ON users;
DROP TRIGGER sessions_notify_users ON sessions;
DROP FUNCTION users_notify_sessions;
DROP FUNCTION sessions_notify_users;
