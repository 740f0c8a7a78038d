-- +goose Up
-- Relief instruments: pre-purchase tranches (draft allocation → approved
-- purchase orders → goods received → entitlement) and fee waivers (per-merchant
-- lines computed from the sales ledger after the promotion period). Money moves
-- only through the double-entry ledger (00004); these tables record why.

-- Per-category commission rates waived by a program; categories without a row
-- use programs.fee_rate_bp (default 600 bp = 6%).
CREATE TABLE fee_rates (
    program_code text    NOT NULL REFERENCES programs(code),
    category     text    NOT NULL,
    rate_bp      integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    PRIMARY KEY (program_code, category)
);

-- A pre-purchase tranche: a budget split among approved merchants who offer
-- goods. draft → previewed (a stored draft allocation) → approved (purchase
-- orders written in the same transaction) → notified (every claim told).
CREATE TABLE tranches (
    id              uuid PRIMARY KEY,
    program_code    text    NOT NULL REFERENCES programs(code),
    seq             integer NOT NULL CHECK (seq > 0),
    name            text    NOT NULL CHECK (name <> '' AND char_length(name) <= 50),
    budget          bigint  NOT NULL CHECK (budget > 0),
    status          text    NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','previewed','approved','notified')),
    created_by      uuid    NOT NULL REFERENCES users(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the stored draft
    preview_version integer NOT NULL DEFAULT 0,
    preview_basis   integer NOT NULL DEFAULT 0, -- program's approval_seq the draft saw (stale when another tranche is approved since)
    previewed_by    uuid REFERENCES users(id),
    previewed_at    timestamptz,
    candidates      integer NOT NULL DEFAULT 0,
    total_allocated bigint  NOT NULL DEFAULT 0 CHECK (total_allocated >= 0),
    -- approval
    approval_seq    integer,
    approved_by     uuid REFERENCES users(id),
    approved_at     timestamptz,
    purchase_orders integer NOT NULL DEFAULT 0,
    notified_at     timestamptz,
    UNIQUE (program_code, seq),
    UNIQUE (program_code, approval_seq),
    -- a tranche never allocates more than its budget
    CONSTRAINT tranches_within_budget CHECK (total_allocated <= budget),
    -- segregation of duties: nobody approves a tranche they created
    CONSTRAINT tranches_sod CHECK (approved_by IS NULL OR approved_by <> created_by),
    CHECK ((status IN ('approved','notified')) = (approved_by IS NOT NULL AND approved_at IS NOT NULL AND approval_seq IS NOT NULL)),
    CHECK (status = 'draft' OR previewed_at IS NOT NULL)
);
CREATE INDEX tranches_program_idx ON tranches (program_code, seq);

-- The draft allocation: one line per candidate claim, with the figures that
-- explain it (rules.AllocationLine), and the units per item. A preview deletes
-- and rewrites a tranche's whole draft (100,000 lines and more), so these two
-- tables have no foreign keys, whose checks run a query and lock a row per row
-- written or deleted: the triggers below check the same references once per
-- statement, over its transition tables (tranche_lines_check,
-- tranche_items_check, tranche_lines_referenced).
CREATE TABLE tranche_lines (
    tranche_id        uuid    NOT NULL, -- → tranches(id)
    claim_id          uuid    NOT NULL, -- → claims(id)
    tier              integer NOT NULL CHECK (tier BETWEEN 0 AND 2),
    weight            bigint  NOT NULL CHECK (weight >= 0),
    tier_weight       bigint  NOT NULL CHECK (tier_weight >= 0),
    offer             bigint  NOT NULL CHECK (offer >= 0),
    already_allocated bigint  NOT NULL CHECK (already_allocated >= 0),
    cap               bigint  NOT NULL CHECK (cap >= 0),
    share             bigint  NOT NULL CHECK (share >= 0),
    converted         bigint  NOT NULL CHECK (converted >= 0),
    allocated         bigint  NOT NULL CHECK (allocated >= 0 AND allocated <= cap),
    PRIMARY KEY (tranche_id, claim_id)
);
CREATE INDEX tranche_lines_claim_idx ON tranche_lines (claim_id);

CREATE TABLE tranche_items (
    tranche_id uuid    NOT NULL, -- (tranche_id, claim_id) → tranche_lines
    claim_id   uuid    NOT NULL,
    sku        text    NOT NULL,
    name       text    NOT NULL,
    perishable boolean NOT NULL,
    unit_price bigint  NOT NULL CHECK (unit_price > 0),
    quantity   bigint  NOT NULL CHECK (quantity > 0),
    amount     bigint  NOT NULL CHECK (amount = unit_price * quantity),
    PRIMARY KEY (tranche_id, claim_id, sku)
);

-- +goose StatementBegin
-- tranche_draft_writable is where every change to a draft starts (ids: the
-- tranches a statement touched). It locks those tranches, so one tranche's
-- draft writers and its approval take turns and each statement's checks see
-- the others' committed work (PreviewTranche and ApproveTranche lock the
-- tranche anyway); then an approved tranche's draft is frozen, since its
-- purchase orders were made from it; and, with must_exist, every tranche
-- named exists.
CREATE FUNCTION tranche_draft_writable(ids uuid[], must_exist boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    bad uuid;
BEGIN
    PERFORM 1 FROM tranches WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    SELECT id INTO bad FROM tranches WHERE id = ANY (ids) AND status IN ('approved','notified') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tranche % is approved: its allocation cannot change', bad
            USING ERRCODE = 'check_violation';
    END IF;
    IF must_exist THEN
        SELECT x INTO bad FROM unnest(ids) x WHERE NOT EXISTS (SELECT 1 FROM tranches t WHERE t.id = x) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'tranche % does not exist', bad USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- After each statement on tranche_lines: the draft may change, every line
-- written names an existing claim, and no item is left without its line.
CREATE FUNCTION tranche_lines_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    bad record;
BEGIN
    IF TG_OP IN ('UPDATE','DELETE') THEN
        SELECT array_agg(tranche_id) INTO ids FROM (SELECT DISTINCT tranche_id FROM old_rows) o;
        PERFORM tranche_draft_writable(ids, false);
        SELECT i.tranche_id, i.claim_id INTO bad FROM tranche_items i
            WHERE i.tranche_id = ANY (ids)
              AND NOT EXISTS (SELECT 1 FROM tranche_lines l WHERE l.tranche_id = i.tranche_id AND l.claim_id = i.claim_id)
            LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'tranche % claim %: the line still has items', bad.tranche_id, bad.claim_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF TG_OP IN ('INSERT','UPDATE') THEN
        SELECT array_agg(tranche_id) INTO ids FROM (SELECT DISTINCT tranche_id FROM new_rows) n;
        PERFORM tranche_draft_writable(ids, true);
        SELECT n.tranche_id, n.claim_id INTO bad FROM new_rows n
            WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.id = n.claim_id)
            LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'tranche % line: claim % does not exist', bad.tranche_id, bad.claim_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- After each statement on tranche_items: the draft may change, and every
-- item written belongs to a line.
CREATE FUNCTION tranche_items_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[];
    bad record;
BEGIN
    IF TG_OP IN ('UPDATE','DELETE') THEN
        SELECT array_agg(tranche_id) INTO ids FROM (SELECT DISTINCT tranche_id FROM old_rows) o;
        PERFORM tranche_draft_writable(ids, false);
    END IF;
    IF TG_OP IN ('INSERT','UPDATE') THEN
        SELECT array_agg(tranche_id) INTO ids FROM (SELECT DISTINCT tranche_id FROM new_rows) n;
        PERFORM tranche_draft_writable(ids, false);
        SELECT n.tranche_id, n.claim_id INTO bad FROM new_rows n
            WHERE NOT EXISTS (SELECT 1 FROM tranche_lines l WHERE l.tranche_id = n.tranche_id AND l.claim_id = n.claim_id)
            LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'tranche % claim %: an item without its line', bad.tranche_id, bad.claim_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- Transition tables need one trigger per event.
CREATE TRIGGER tranche_lines_check_ins AFTER INSERT ON tranche_lines
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_lines_check();
CREATE TRIGGER tranche_lines_check_upd AFTER UPDATE ON tranche_lines
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_lines_check();
CREATE TRIGGER tranche_lines_check_del AFTER DELETE ON tranche_lines
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_lines_check();
CREATE TRIGGER tranche_items_check_ins AFTER INSERT ON tranche_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_items_check();
CREATE TRIGGER tranche_items_check_upd AFTER UPDATE ON tranche_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_items_check();
CREATE TRIGGER tranche_items_check_del AFTER DELETE ON tranche_items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tranche_items_check();

-- +goose StatementBegin
-- The referenced side: a claim or a tranche that a draft line names keeps its
-- id and is not deleted (foreign_key_violation). Neither happens in Relief:
-- claims are never deleted (reviews, the ledger and orders name them) and ids
-- never change; these row triggers cost nothing otherwise. A tranche's
-- deletion waits for its draft's writers (the lock above); a claim's is not
-- serialised with a concurrent preview naming it.
CREATE FUNCTION tranche_lines_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'claims' THEN
        PERFORM 1 FROM tranche_lines WHERE claim_id = OLD.id LIMIT 1;
    ELSE
        PERFORM 1 FROM tranche_lines WHERE tranche_id = OLD.id LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '% % is named by tranche_lines', TG_TABLE_NAME, OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN coalesce(NEW, OLD);
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER claims_tranche_lines_ref BEFORE DELETE OR UPDATE OF id ON claims
    FOR EACH ROW EXECUTE FUNCTION tranche_lines_referenced();
CREATE TRIGGER tranches_tranche_lines_ref BEFORE DELETE OR UPDATE OF id ON tranches
    FOR EACH ROW EXECUTE FUNCTION tranche_lines_referenced();

-- A purchase order per merchant per approved tranche (whole units of the goods
-- allocated). Receiving the goods makes the amount, truncated to 10 won, an
-- entitlement (source key "po:<id>"); the remainder under 10 won stays in the budget.
CREATE TABLE purchase_orders (
    id             uuid PRIMARY KEY,
    order_no       text    NOT NULL UNIQUE,
    tranche_id     uuid    NOT NULL REFERENCES tranches(id),
    claim_id       uuid    NOT NULL REFERENCES claims(id),
    program_code   text    NOT NULL REFERENCES programs(code),
    amount         bigint  NOT NULL CHECK (amount > 0),
    status         text    NOT NULL DEFAULT 'ordered' CHECK (status IN ('ordered','received')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    notified_at    timestamptz,
    received_at    timestamptz,
    received_by    uuid REFERENCES users(id),
    entitlement_id uuid REFERENCES entitlements(id),
    entitled       bigint  NOT NULL DEFAULT 0 CHECK (entitled >= 0 AND entitled % 10 = 0 AND entitled <= amount),
    UNIQUE (tranche_id, claim_id),
    CHECK ((status = 'received') = (received_at IS NOT NULL))
);
CREATE INDEX purchase_orders_claim_idx ON purchase_orders (claim_id);
CREATE INDEX purchase_orders_unnotified_idx ON purchase_orders (tranche_id, claim_id) WHERE notified_at IS NULL;

CREATE TABLE purchase_order_items (
    po_id      uuid    NOT NULL REFERENCES purchase_orders(id),
    sku        text    NOT NULL,
    name       text    NOT NULL,
    perishable boolean NOT NULL,
    unit_price bigint  NOT NULL CHECK (unit_price > 0),
    quantity   bigint  NOT NULL CHECK (quantity > 0),
    amount     bigint  NOT NULL CHECK (amount = unit_price * quantity),
    PRIMARY KEY (po_id, sku)
);

-- Fee waiver: one line per claim (merchant) per program. A line that became an
-- entitlement (source key "feewaiver:<program>:<claim>") is never recomputed.
CREATE TABLE fee_waiver_lines (
    program_code   text    NOT NULL REFERENCES programs(code),
    claim_id       uuid    NOT NULL REFERENCES claims(id),
    rows_in_period integer NOT NULL CHECK (rows_in_period >= 0),
    gross_sales    bigint  NOT NULL CHECK (gross_sales >= 0),
    commission     bigint  NOT NULL CHECK (commission >= 0),
    rate_bp        integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    waived         bigint  NOT NULL CHECK (waived >= 0 AND waived <= commission),
    amount         bigint  NOT NULL CHECK (amount >= 0 AND amount % 10 = 0 AND amount <= waived),
    remainder      bigint  NOT NULL CHECK (remainder BETWEEN 0 AND 9 AND amount + remainder = waived),
    status         text    NOT NULL CHECK (status IN ('entitled','zero','unfunded')),
    entitlement_id uuid REFERENCES entitlements(id),
    run_key        text    NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program_code, claim_id),
    CHECK ((status = 'entitled') = (entitlement_id IS NOT NULL))
);

-- One row per fee-waiver run (the workflow's), with its progress.
CREATE TABLE fee_waiver_runs (
    run_key      text PRIMARY KEY,
    program_code text    NOT NULL REFERENCES programs(code),
    trigger      text    NOT NULL CHECK (trigger IN ('timer','manual')),
    status       text    NOT NULL DEFAULT 'running' CHECK (status IN ('running','done')),
    claims_total integer NOT NULL DEFAULT 0,
    claims_done  integer NOT NULL DEFAULT 0,
    entitled     integer NOT NULL DEFAULT 0,
    amount       bigint  NOT NULL DEFAULT 0,
    unfunded     integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX fee_waiver_runs_program_idx ON fee_waiver_runs (program_code, started_at DESC);

-- +goose Down
DROP TABLE fee_waiver_runs;
DROP TABLE fee_waiver_lines;
DROP TABLE purchase_order_items;
DROP TABLE purchase_orders;
DROP TRIGGER tranches_tranche_lines_ref ON tranches;
DROP TRIGGER claims_tranche_lines_ref ON claims;
DROP FUNCTION tranche_lines_referenced;
DROP TABLE tranche_items; -- and its triggers
DROP TABLE tranche_lines;
DROP FUNCTION tranche_items_check;
DROP FUNCTION tranche_lines_check;
DROP FUNCTION tranche_draft_writable;
DROP TABLE tranches;
DROP TABLE fee_rates;
