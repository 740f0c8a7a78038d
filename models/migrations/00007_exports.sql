-- +goose Up
-- Export jobs: big workbooks are built in the background and kept in
-- PostgreSQL, so a file one web replica built can be downloaded through any
-- other behind the load balancer, and a replica's crash loses nothing: a job
-- whose heartbeat stops is taken over by another replica (lease), up to three
-- attempts, then marked failed.
CREATE TABLE export_jobs (
    id            uuid PRIMARY KEY,
    program_code  text NOT NULL REFERENCES programs(code),
    kind          text NOT NULL CHECK (kind IN ('claims','allocations','fee-waivers','payouts','summary')),
    requested_by  uuid NOT NULL REFERENCES users(id),
    -- decided from the requester's roles when the job was made, never later
    full_accounts boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','running','done','failed')),
    rows_total    bigint NOT NULL DEFAULT 0 CHECK (rows_total >= 0),
    rows_done     bigint NOT NULL DEFAULT 0 CHECK (rows_done >= 0),
    attempts      integer NOT NULL DEFAULT 0,
    -- the current runner's lease: progress, chunks and the result are accepted
    -- only from the holder, so a replica presumed dead cannot overwrite its successor
    lease         uuid,
    heartbeat_at  timestamptz,
    error         text NOT NULL DEFAULT '',
    sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes         bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    CHECK (status <> 'done' OR (sha256 IS NOT NULL AND bytes IS NOT NULL AND finished_at IS NOT NULL))
);
CREATE INDEX export_jobs_pending_idx ON export_jobs (created_at) WHERE status IN ('queued','running');
CREATE INDEX export_jobs_requester_idx ON export_jobs (requested_by, program_code, created_at DESC);
CREATE INDEX export_jobs_finished_idx ON export_jobs (finished_at) WHERE finished_at IS NOT NULL;

-- The finished file in 1 MiB pieces, read back one piece at a time so a
-- download needs no more memory than one piece. xlsx is already deflated:
-- EXTERNAL stores it out of line without a second compression attempt.
CREATE TABLE export_chunks (
    job_id uuid NOT NULL REFERENCES export_jobs(id) ON DELETE CASCADE,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);
ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- +goose Down
DROP TABLE export_chunks;
DROP TABLE export_jobs;
