-- +goose Up
-- The platform operator's sales ledger: daily gross sales and commission per
-- seller (BRN) and category, per program. It is the evidence for loss
-- estimates and rapid offers. An import replaces a program's whole ledger in
-- one transaction (all-or-nothing); rows are bulk-loaded with COPY into a
-- session-local staging table first. No foreign key to programs: the importer
-- checks the program once instead of once per row (a million rows).
CREATE TABLE sales_ledger (
    program_code text   NOT NULL,
    brn          text   NOT NULL,
    day          date   NOT NULL,
    category     text   NOT NULL,
    gross_sales  bigint NOT NULL CHECK (gross_sales >= 0),
    commission   bigint NOT NULL CHECK (commission >= 0),
    PRIMARY KEY (program_code, brn, day, category)
);

-- One row per uploaded ledger file. A background import reports progress here;
-- heartbeat_at lets a restarted process tell a crashed import (marked failed)
-- from a live one.
CREATE TABLE ledger_imports (
    id           uuid PRIMARY KEY,
    program_code text NOT NULL REFERENCES programs(code),
    uploaded_by  uuid NOT NULL REFERENCES users(id),
    filename     text NOT NULL,
    format       text NOT NULL CHECK (format IN ('csv','xlsx')),
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    sha256       bytea NOT NULL,
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','running','done','failed')),
    rows_total   bigint NOT NULL DEFAULT 0,
    rows_done    bigint NOT NULL DEFAULT 0,
    error_count  integer NOT NULL DEFAULT 0,
    errors       jsonb NOT NULL DEFAULT '[]',
    message      text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
-- at most one import in flight per program
CREATE UNIQUE INDEX ledger_imports_active_key ON ledger_imports (program_code) WHERE status IN ('queued','running');
CREATE INDEX ledger_imports_program_idx ON ledger_imports (program_code, created_at DESC);

-- +goose Down
DROP TABLE ledger_imports;
DROP TABLE sales_ledger;
