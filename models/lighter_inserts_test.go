package models_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// fkViolation fails the test unless err is the claims → programs foreign key
// violation (SQLSTATE 23503, named as the constraint was before 00015).
func fkViolation(t *testing.T, step string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" || pgErr.ConstraintName != "claims_program_code_fkey" {
		t.Fatalf("%s: got %v, want a violation of claims_program_code_fkey", step, err)
	}
}

func merchantViolation(t *testing.T, step string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23503" || pgErr.ConstraintName != "claims_merchant_id_fkey" {
		t.Fatalf("%s: got %v, want a violation of claims_merchant_id_fkey", step, err)
	}
}

// insertClaimsSQL inserts one claim per program code in $1 (receipt numbers
// from $3), for merchant $2.
const insertClaimsSQL = `INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name,
		representative, phone, category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4,
		account_blind_index, account_holder)
	SELECT gen_random_uuid(), $3 || i, p, $2, lpad((abs(hashtext($3 || i)) % 1000000000)::text, 10, '0'), '상점', '대표', '010-0000-0000', 'food', '서울', 1000,
		'004', decode(repeat('00', 38), 'hex'), 't1', '0000', decode(repeat('00', 32), 'hex'), '예금주'
	FROM unnest($1::text[]) WITH ORDINALITY AS u(p, i)`

// 00015 checks the program and the merchant of the claims a statement
// inserts once per statement instead of once per claim. What the foreign keys
// kept still holds: no claim names a missing program or merchant, however it
// is written, and a program or merchant with claims can be neither deleted
// nor given another key, even by a transaction that races a claim being
// filed.
func TestClaimsKeepTheirProgram(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m := newMerchant(t, s, "fk@example.kr")
	const spare = "FK-SPARE"
	copyDemoProgram(t, s, spare)
	claims := func() int { return count(t, s, `SELECT count(*) FROM claims`) }

	// A statement with one missing program among good ones writes nothing.
	_, err := s.Pool.Exec(ctx, insertClaimsSQL, []string{models.DemoProgram, "NO-SUCH-PROGRAM", spare}, m.ID, "FKA")
	fkViolation(t, "insert naming a missing program", err)
	if n := claims(); n != 0 {
		t.Fatalf("%d claims written by the refused statement", n)
	}
	// Intake's own statements: a claim alone and a group of them.
	if _, _, err := file(t, s, m, "fk-1", validClaim(rules.ValidBRNFromSeed(8100).String())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, insertClaimsSQL, []string{models.DemoProgram, spare}, m.ID, "FKB"); err != nil {
		t.Fatalf("claims naming existing programs: %v", err)
	}
	if n := claims(); n != 3 {
		t.Fatalf("%d claims, want 3", n)
	}
	// Moving a claim to a missing program.
	_, err = s.Pool.Exec(ctx, `UPDATE claims SET program_code = 'NO-SUCH-PROGRAM' WHERE receipt_no = 'FKB2'`)
	fkViolation(t, "moving a claim to a missing program", err)

	// The merchant, checked the same way.
	_, err = s.Pool.Exec(ctx, insertClaimsSQL, []string{models.DemoProgram}, uuid.New(), "FKM")
	merchantViolation(t, "insert naming a missing merchant", err)
	_, err = s.Pool.Exec(ctx, `UPDATE claims SET merchant_id = $1 WHERE receipt_no = 'FKB2'`, uuid.New())
	merchantViolation(t, "moving a claim to a missing merchant", err)
	_, err = s.Pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, m.ID)
	merchantViolation(t, "deleting a merchant with claims", err)
	other := newMerchant(t, s, "fk-other@example.kr")
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET merchant_id = $1 WHERE receipt_no = 'FKB2'`, other.ID); err != nil {
		t.Fatalf("moving a claim to another merchant: %v", err)
	}
	_, err = s.Pool.Exec(ctx, `UPDATE users SET id = $2 WHERE id = $1`, other.ID, uuid.New())
	merchantViolation(t, "giving a merchant with claims another id", err)
	if n := count(t, s, `SELECT count(*) FROM claims WHERE merchant_id = $1`, other.ID); n != 1 {
		t.Fatalf("%d claims moved to the other merchant", n)
	}

	// The program side: neither delete nor rename while claims name it; other
	// edits go through, and a program without claims can go.
	_, err = s.Pool.Exec(ctx, `DELETE FROM programs WHERE code = $1`, spare)
	fkViolation(t, "deleting a program with claims", err)
	_, err = s.Pool.Exec(ctx, `UPDATE programs SET code = 'FK-RENAMED' WHERE code = $1`, spare)
	fkViolation(t, "renaming a program with claims", err)
	if _, err := s.Pool.Exec(ctx, `UPDATE programs SET name = name || '!' WHERE code = $1`, spare); err != nil {
		t.Fatalf("editing a program with claims: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM claims WHERE program_code = $1`, spare); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE programs SET code = 'FK-RENAMED' WHERE code = $1`, spare); err != nil {
		t.Fatalf("renaming a program without claims: %v", err)
	}

	// A race: a claim is inserted and not yet committed when the program is
	// deleted. The delete waits for the claim's transaction (its key-share
	// lock on the program) and then refuses.
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, insertClaimsSQL, []string{"FK-RENAMED"}, m.ID, "FKC"); err != nil {
		t.Fatal(err)
	}
	deleted := execBehind(s, `DELETE FROM programs WHERE code = 'FK-RENAMED'`)
	stillWaiting(t, deleted, "the delete of a program an uncommitted claim names")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fkViolation(t, "deleting a program while a claim naming it commits", finished(t, deleted, "the delete of the program"))
	if n := count(t, s, `SELECT count(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM programs p WHERE p.code = c.program_code)`); n != 0 {
		t.Fatalf("%d claims name a missing program", n)
	}
	statusCountsAgree(t, s, "after the program checks")
}

// "Every status, largest first" is read as one index scan per status, merged
// (00015 dropped the index led by program and amount). The pages must be
// exactly the order a plain ORDER BY over the program gives, ties broken by
// id, in both directions, with and without a region, across page boundaries.
func TestReviewQueueEveryStatusByAmount(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	reviewer := newStaff(t, s, "amount@example.kr", "KPOST", models.RoleReviewer)
	m := newMerchant(t, s, "amount-m@example.kr")
	regions := []string{"대전", "서울"}
	for i := range 24 {
		fileFor(t, s, m, rules.ValidBRNFromSeed(400+i).String(), func(in *models.ClaimInput) {
			in.Region = regions[i%2]
			in.ClaimedLoss = int64(1_000_000 + (i%7)*100_000) // ties across statuses
			in.Bank.AccountNumber = fmt.Sprintf("2000%08d", i)
		})
	}
	// Spread them over five statuses.
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET status = (ARRAY['received','in_review','approved','rejected','paid'])[1 + n % 5]
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM claims) o WHERE o.id = claims.id`); err != nil {
		t.Fatal(err)
	}
	for _, sort := range []string{models.SortAmountDesc, models.SortAmountAsc} {
		for _, region := range []string{"", "대전"} {
			dir := "DESC"
			if sort == models.SortAmountAsc {
				dir = "ASC"
			}
			rows, err := s.Pool.Query(ctx, `SELECT id FROM claims WHERE program_code = $1 AND ($2 = '' OR region = $2)
				ORDER BY claimed_loss `+dir+`, id `+dir, models.DemoProgram, region)
			if err != nil {
				t.Fatal(err)
			}
			var want []uuid.UUID
			for rows.Next() {
				var id uuid.UUID
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				want = append(want, id)
			}
			rows.Close()
			var got []uuid.UUID
			cursor := ""
			for pages := 0; ; pages++ {
				p, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Region: region, Sort: sort, Limit: 5, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range p.Items {
					got = append(got, it.ID)
				}
				if cursor = p.NextCursor; cursor == "" {
					break
				}
				if pages > 20 {
					t.Fatal("pagination does not end")
				}
			}
			if len(want) < 12 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s, region %q: pages gave %d claims %v, want %d %v", sort, region, len(got), got, len(want), want)
			}
		}
	}
}

// A group statement that commits and then loses its answer (the connection
// breaks before the result arrives) is written again claim by claim. Each
// claim then meets itself, already written: it must be answered as the
// replay of what was stored (202, same receipt), never 500, and nothing is
// written twice.
func TestGroupCommittedButAnswerLostTurnsIntoReplays(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	s.IntakeWriters = 1 // one writer: what arrives meanwhile forms groups
	lost := s.LoseGroupAnswers(1000)
	m := newMerchant(t, s, "lost@example.kr")
	const n = 40
	type answer struct {
		status int
		body   string
		err    error
	}
	answers := make([]answer, n)
	atOnce(n, func(i int) {
		status, resp, err := fileRaw(s, m, fmt.Sprint("lost", i), validClaim(rules.ValidBRNFromSeed(9100+i).String()))
		answers[i] = answer{status, string(resp), err}
	})
	if lost() == 0 {
		t.Fatal("no group statement formed: the test did not exercise a lost answer")
	}
	for i, a := range answers {
		if a.err != nil || a.status != http.StatusAccepted {
			t.Errorf("claim %d: %d %v", i, a.status, a.err)
			continue
		}
		var stored string
		if err := s.Pool.QueryRow(ctx, `SELECT convert_from(body, 'UTF8') FROM idempotency_keys WHERE scope = $1 AND key = $2`,
			"claims:"+m.ID.String(), fmt.Sprint("lost", i)).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if a.body != stored {
			t.Errorf("claim %d answered %s, stored %s", i, a.body, stored)
		}
	}
	if c := count(t, s, `SELECT count(*) FROM claims`); c != n {
		t.Errorf("%d claims, want %d", c, n)
	}
	if c := count(t, s, `SELECT count(*) FROM outbox`); c != n {
		t.Errorf("%d outbox rows, want %d", c, n)
	}
	t.Logf("%d group answers lost", lost())
}
