-- +goose Up
-- Security and privacy (issue 8). Each rule here is also enforced by the
-- application; the database is the last guard for every writer.

-- Sessions end when what they authorise changes: a user's roles, agency or
-- password. The application deletes them too (ChangeUserRoles); this trigger
-- covers every other writer (psql, a migration, a future admin screen).
-- +goose StatementBegin
CREATE FUNCTION users_end_sessions_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.roles IS DISTINCT FROM OLD.roles
       OR NEW.agency_code IS DISTINCT FROM OLD.agency_code
       OR NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN
        DELETE FROM sessions WHERE user_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER users_end_sessions_on_change AFTER UPDATE OF roles, agency_code, password_hash ON users
    FOR EACH ROW EXECUTE FUNCTION users_end_sessions_on_change();

-- Retention per program: personal data of a closed program is anonymised
-- (`relief purge`) once retention_days have passed since it closed.
ALTER TABLE programs
    ADD COLUMN retention_days integer NOT NULL DEFAULT 1825 CHECK (retention_days BETWEEN 1 AND 36500),
    ADD COLUMN closed_at timestamptz;
UPDATE programs SET closed_at = now() WHERE status = 'closed';
-- +goose StatementBegin
CREATE FUNCTION programs_track_closed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'closed' THEN
        NEW.closed_at := coalesce(NEW.closed_at, now());
    ELSE
        NEW.closed_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER programs_track_closed_at BEFORE INSERT OR UPDATE OF status, closed_at ON programs
    FOR EACH ROW EXECUTE FUNCTION programs_track_closed_at();
ALTER TABLE programs ADD CONSTRAINT programs_closed_at_check CHECK ((status = 'closed') = (closed_at IS NOT NULL));

-- Anonymised claims keep their amounts, statuses, category and region (the
-- aggregates) and every ledger reference; the personal columns are emptied.
-- The BRN becomes 'purged-<claim id>' so (program_code, brn) stays unique.
ALTER TABLE claims ADD COLUMN purged_at timestamptz;
ALTER TABLE claims DROP CONSTRAINT claims_brn_check;
ALTER TABLE claims ADD CONSTRAINT claims_brn_check
    CHECK (brn ~ '^[0-9]{10}$' OR (purged_at IS NOT NULL AND brn = 'purged-' || id::text));
-- Bank account numbers are stored sealed (AES-256-GCM: 12-byte nonce, 16-byte
-- tag, at least 10 digits), never as plain digits: a plaintext write cannot fit.
ALTER TABLE claims ADD CONSTRAINT claims_account_sealed_check CHECK (
    purged_at IS NOT NULL
    OR (octet_length(account_ciphertext) >= 38 AND account_key_id <> '' AND account_last4 ~ '^[0-9]{4}$'
        AND octet_length(account_blind_index) = 32));

-- The blind index must survive key rotation: the fingerprint of the key it is
-- derived from is recorded once, and `relief rekey` refuses to run with another.
CREATE TABLE vault_index_key (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Who viewed whose personal data (the auditor's page reads these by action).
CREATE INDEX audit_log_security_action_idx ON audit_log (action, id);

-- +goose Down
DROP INDEX audit_log_security_action_idx;
DROP TABLE vault_index_key;
ALTER TABLE claims DROP CONSTRAINT claims_account_sealed_check;
ALTER TABLE claims DROP CONSTRAINT claims_brn_check;
ALTER TABLE claims ADD CONSTRAINT claims_brn_check CHECK (brn ~ '^[0-9]{10}$');
ALTER TABLE claims DROP COLUMN purged_at;
ALTER TABLE programs DROP CONSTRAINT programs_closed_at_check;
DROP TRIGGER programs_track_closed_at ON programs;
DROP FUNCTION programs_track_closed_at;
ALTER TABLE programs DROP COLUMN closed_at, DROP COLUMN retention_days;
DROP TRIGGER users_end_sessions_on_change ON users;
DROP FUNCTION users_end_sessions_on_change;
