package models_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relief/relief/models/rules"
)

// lineViolation fails the test unless err is the violation of the named
// foreign key of claim_goods or claim_events (SQLSTATE 23503, named as the
// constraint was before 00016).
func lineViolation(t *testing.T, step, constraint string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" || pgErr.ConstraintName != constraint {
		t.Fatalf("%s: got %v, want a violation of %s", step, err, constraint)
	}
}

const (
	insertGoodsSQL = `INSERT INTO claim_goods (claim_id, line, sku, name, unit_price, quantity, perishable)
		SELECT id, 90 + i, 'X-' || i, '물품', 1000, 1, false FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, i)`
	insertEventsSQL = `INSERT INTO claim_events (claim_id, event_key, at, status, actor_role)
		SELECT id, 'test-' || i, now(), 'received', 'system' FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, i)`
	orphansSQL = `SELECT (SELECT count(*) FROM claim_goods g WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.id = g.claim_id))
		+ (SELECT count(*) FROM claim_events e WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.id = e.claim_id))`
)

// 00016 checks the claim of the goods lines and timeline entries a statement
// inserts once per statement instead of once per row. What the foreign keys
// kept still holds: no goods line or timeline entry names a missing claim,
// however it is written, deleting a claim takes its goods and timeline with
// it, and a claim with either cannot be given another id, also against a
// transaction that races the insert.
func TestClaimLinesKeepTheirClaim(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m := newMerchant(t, s, "lines@example.kr")
	var ids []uuid.UUID
	for i, key := range []string{"lines-1", "lines-2", "lines-3"} {
		status, f, err := file(t, s, m, key, validClaim(rules.ValidBRNFromSeed(8200+i).String()))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("filing %s: %d %v", key, status, err)
		}
		ids = append(ids, f.ID)
	}
	// Intake's own statement wrote each claim's goods and first timeline entry.
	if n := count(t, s, `SELECT count(*) FROM claim_goods WHERE claim_id = ANY($1)`, ids); n != 3 {
		t.Fatalf("%d goods lines filed, want 3", n)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE claim_id = ANY($1) AND event_key = 'received'`, ids); n != 3 {
		t.Fatalf("%d timeline entries filed, want 3", n)
	}
	goods := func() int { return count(t, s, `SELECT count(*) FROM claim_goods`) }
	events := func() int { return count(t, s, `SELECT count(*) FROM claim_events`) }
	g0, e0 := goods(), events()

	// One missing claim among good ones refuses the whole statement.
	missing := uuid.New()
	_, err := s.Pool.Exec(ctx, insertGoodsSQL, []uuid.UUID{ids[0], missing, ids[1]})
	lineViolation(t, "goods naming a missing claim", "claim_goods_claim_id_fkey", err)
	_, err = s.Pool.Exec(ctx, insertEventsSQL, []uuid.UUID{ids[0], missing})
	lineViolation(t, "timeline naming a missing claim", "claim_events_claim_id_fkey", err)
	if g, e := goods(), events(); g != g0 || e != e0 {
		t.Fatalf("refused statements wrote rows: goods %d→%d, timeline %d→%d", g0, g, e0, e)
	}
	if _, err := s.Pool.Exec(ctx, insertGoodsSQL, ids); err != nil {
		t.Fatalf("goods naming existing claims: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, insertEventsSQL, ids); err != nil {
		t.Fatalf("timeline naming existing claims: %v", err)
	}

	// Moving a row to a missing claim is refused, to another claim allowed.
	_, err = s.Pool.Exec(ctx, `UPDATE claim_goods SET claim_id = $2 WHERE claim_id = $1 AND line = 91`, ids[0], missing)
	lineViolation(t, "moving a goods line to a missing claim", "claim_goods_claim_id_fkey", err)
	_, err = s.Pool.Exec(ctx, `UPDATE claim_events SET claim_id = $2 WHERE claim_id = $1 AND event_key = 'test-1'`, ids[0], missing)
	lineViolation(t, "moving a timeline entry to a missing claim", "claim_events_claim_id_fkey", err)
	if _, err := s.Pool.Exec(ctx, `UPDATE claim_events SET claim_id = $2 WHERE claim_id = $1 AND event_key = 'test-1'`, ids[0], ids[2]); err != nil {
		t.Fatalf("moving a timeline entry to another claim: %v", err)
	}
	// Edits that leave the claim alone pass (the privacy purge blanks notes).
	if _, err := s.Pool.Exec(ctx, `UPDATE claim_events SET note = '' WHERE claim_id = ANY($1)`, ids); err != nil {
		t.Fatalf("editing timeline entries: %v", err)
	}

	// A claim with goods or a timeline keeps its id.
	_, err = s.Pool.Exec(ctx, `UPDATE claims SET id = $2 WHERE id = $1`, ids[0], uuid.New())
	lineViolation(t, "giving a claim with goods another id", "claim_goods_claim_id_fkey", err)
	if _, err := s.Pool.Exec(ctx, `DELETE FROM claim_goods WHERE claim_id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	_, err = s.Pool.Exec(ctx, `UPDATE claims SET id = $2 WHERE id = $1`, ids[1], uuid.New())
	lineViolation(t, "giving a claim with a timeline another id", "claim_events_claim_id_fkey", err)

	// Deleting claims deletes their goods and timeline (ON DELETE CASCADE).
	if _, err := s.Pool.Exec(ctx, `DELETE FROM outbox WHERE aggregate_id = ANY($1)`, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM claims WHERE id = ANY($1)`, ids[:2]); err != nil {
		t.Fatalf("deleting claims: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_goods WHERE claim_id = ANY($1)`, ids[:2]); n != 0 {
		t.Fatalf("%d goods lines of deleted claims left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE claim_id = ANY($1)`, ids[:2]); n != 0 {
		t.Fatalf("%d timeline entries of deleted claims left", n)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_goods WHERE claim_id = $1`, ids[2]); n != 2 {
		t.Fatalf("the claim left alone has %d goods lines, want 2", n)
	}

	// Races, both ways round, on the last claim.
	last := ids[2]
	// 1. Goods inserted and not yet committed when the claim is deleted: the
	// delete waits for them (their key-share lock) and then takes them too.
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO claim_goods (claim_id, line, sku, name, unit_price, quantity, perishable)
		VALUES ($1, 50, 'RACE', '물품', 1000, 1, false)`, last); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM outbox WHERE aggregate_id = $1`, last); err != nil {
		t.Fatal(err)
	}
	deleted := execBehind(s, `DELETE FROM claims WHERE id = $1`, last)
	stillWaiting(t, deleted, "the delete of a claim with an uncommitted goods line")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := finished(t, deleted, "the delete of the claim"); err != nil {
		t.Fatalf("deleting the claim after its new goods line committed: %v", err)
	}
	if n := count(t, s, orphansSQL); n != 0 {
		t.Fatalf("%d goods lines or timeline entries name a missing claim", n)
	}

	// 2. The claim deleted and not yet committed when a timeline entry is
	// written for it: the insert waits for the delete and then refuses.
	_, f, err := file(t, s, m, "lines-4", validClaim(rules.ValidBRNFromSeed(8210).String()))
	if err != nil {
		t.Fatal(err)
	}
	dtx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dtx.Rollback(ctx) }()
	if _, err := dtx.Exec(ctx, `DELETE FROM outbox WHERE aggregate_id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := dtx.Exec(ctx, `DELETE FROM claims WHERE id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	inserted := execBehind(s, insertEventsSQL, []uuid.UUID{f.ID})
	stillWaiting(t, inserted, "a timeline entry for a claim being deleted")
	if err := dtx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	lineViolation(t, "a timeline entry for a claim deleted meanwhile", "claim_events_claim_id_fkey",
		finished(t, inserted, "the timeline entry"))
	if n := count(t, s, orphansSQL); n != 0 {
		t.Fatalf("%d goods lines or timeline entries name a missing claim", n)
	}
	statusCountsAgree(t, s, "after the claim line checks")
}
