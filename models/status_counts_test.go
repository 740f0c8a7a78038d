package models_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// statusCountsAgree fails the test unless claim_status_counts (summed over
// its shards) holds exactly the claims per (program, status), and returns
// how many claims the counts hold per pair (for checks that a step moved
// something).
func statusCountsAgree(t *testing.T, s *models.Store, step string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Pool.Query(ctx, `SELECT coalesce(a.program_code, b.program_code), coalesce(a.status, b.status),
			coalesce(a.n, 0), coalesce(b.n, 0)
		FROM (SELECT program_code, status, count(*) AS n FROM claims GROUP BY 1, 2) a
		FULL JOIN (SELECT program_code, status, sum(n)::bigint AS n FROM claim_status_counts GROUP BY 1, 2) b
			ON b.program_code = a.program_code AND b.status = a.status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counted := map[string]int64{}
	for rows.Next() {
		var program, status string
		var claims, n int64
		if err := rows.Scan(&program, &status, &claims, &n); err != nil {
			t.Fatal(err)
		}
		if claims != n {
			t.Errorf("%s: %s/%s: %d claims, counted %d", step, program, status, claims, n)
		}
		if n != 0 {
			counted[program+"/"+status] = n
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// What the reviewer queue's tabs show.
	tabs, err := s.StatusCounts(ctx, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range tabs {
		if want := counted[models.DemoProgram+"/"+st]; n != want {
			t.Errorf("%s: StatusCounts %s = %d, want %d", step, st, n, want)
		}
	}
	return counted
}

// countRowVersions names every row version of claim_status_counts: any write
// to a row, even n = n + 0, changes its ctid.
func countRowVersions(t *testing.T, s *models.Store) string {
	t.Helper()
	var v string
	if err := s.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(program_code || '/' || status || '/' || shard || '@' || ctid::text, ' '
		ORDER BY program_code, status, shard), '') FROM claim_status_counts`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The status counts follow every way claims are written, whatever number of
// claims a statement writes: intake alone and in groups, multi-row inserts,
// updates moving some claims (and leaving others alone) in one statement,
// several changes to claims in one statement, upserts and deletes.
func TestStatusCountsFollowEveryStatement(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const other = "STATUS-TEST"
	copyDemoProgram(t, s, other)
	m := newMerchant(t, s, "counts@example.kr")
	exec := func(step, sql string, args ...any) int64 {
		t.Helper()
		tag, err := s.Pool.Exec(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return tag.RowsAffected()
	}

	// Intake: two claims alone, then a burst that one writer groups.
	for i := range 2 {
		if _, _, err := file(t, s, m, fmt.Sprint("alone", i), validClaim(rules.ValidBRNFromSeed(7000+i).String())); err != nil {
			t.Fatal(err)
		}
	}
	statusCountsAgree(t, s, "filed alone")
	s.IntakeWriters = 1
	const burst = 40
	atOnce(burst, func(i int) {
		if _, _, err := fileRaw(s, m, fmt.Sprint("burst", i), validClaim(rules.ValidBRNFromSeed(7100+i).String())); err != nil {
			t.Error(err)
		}
	})
	groups, grouped := s.IntakeGroups()
	t.Logf("intake: %d group statements carried %d of %d claims", groups, grouped, burst)
	if got := statusCountsAgree(t, s, "filed in groups")[models.DemoProgram+"/"+models.StatusReceived]; got != 2+burst {
		t.Fatalf("received = %d, want %d", got, 2+burst)
	}

	// One INSERT of 48 claims over both programs and four statuses: S001..S048,
	// program other when i % 3 = 0, status by i % 4.
	exec("multi-row insert", `INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name,
			representative, phone, category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4,
			account_blind_index, account_holder, status)
		SELECT gen_random_uuid(), 'S' || lpad(i::text, 3, '0'), CASE WHEN i % 3 = 0 THEN $3 ELSE $1 END, $2, lpad(i::text, 10, '0'),
			'상점 ' || i, '대표', '010-0000-0000', 'food', '서울', i, '004', decode(repeat('00', 38), 'hex'), 't1', '0000',
			decode(repeat('00', 32), 'hex'), '예금주', (ARRAY['received','in_review','rejected','approved'])[1 + i % 4]
		FROM generate_series(1, 48) AS i`, models.DemoProgram, m.ID, other)
	before := statusCountsAgree(t, s, "multi-row insert")
	if before[other+"/"+models.StatusApproved] != 4 || before[models.DemoProgram+"/"+models.StatusReceived] != 2+burst+8 {
		t.Fatalf("after the multi-row insert: %v", before)
	}

	// One UPDATE of every S claim: received → in_review, in_review → received
	// (a swap: the two pairs net out only in part, as the programs differ in
	// size), approved of program other moves to the demo program, rejected
	// stays as it is.
	n := exec("update", `UPDATE claims SET
			status = CASE status WHEN 'received' THEN 'in_review' WHEN 'in_review' THEN 'received' ELSE status END,
			program_code = CASE WHEN status = 'approved' AND program_code = $1 THEN $2 ELSE program_code END
		WHERE receipt_no LIKE 'S%'`, other, models.DemoProgram)
	after := statusCountsAgree(t, s, "update")
	if n != 48 || after[other+"/"+models.StatusApproved] != 0 || after[models.DemoProgram+"/"+models.StatusApproved] != 12 ||
		after[other+"/"+models.StatusRejected] != before[other+"/"+models.StatusRejected] {
		t.Fatalf("update of %d claims: %v → %v", n, before, after)
	}

	// An update that leaves every status and program alone writes no count
	// row; an exact swap (one received claim to in_review, one in_review
	// claim to received) keeps the counts.
	versions := countRowVersions(t, s)
	exec("no-op update", `UPDATE claims SET updated_at = now(), status = status`)
	if got := countRowVersions(t, s); got != versions {
		t.Errorf("an update that moves no claim rewrote count rows:\n%s\n%s", versions, got)
	}
	exec("swap", `UPDATE claims SET status = CASE status WHEN 'received' THEN 'in_review' ELSE 'received' END
		WHERE receipt_no IN ('S004', 'S001')`)
	statusCountsAgree(t, s, "swap")

	// Several changes to claims in one statement: two UPDATEs and a DELETE in
	// data-modifying CTEs and an INSERT.
	exec("one statement, several changes", `WITH a AS (
			UPDATE claims SET status = 'closed' WHERE receipt_no IN ('S005', 'S006', 'S007') RETURNING id
		), b AS (
			UPDATE claims SET status = 'paid', program_code = $2 WHERE receipt_no IN ('S009', 'S010') RETURNING id
		), d AS (
			DELETE FROM claims WHERE receipt_no IN ('S011', 'S012') RETURNING program_code, merchant_id, brn, status
		)
		INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name,
			representative, phone, category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4,
			account_blind_index, account_holder, status)
		SELECT gen_random_uuid(), 'S1' || right(brn, 2), $1, merchant_id, '1' || right(brn, 9), '상점', '대표', '010-0000-0000',
			'food', '서울', 1, '004', decode(repeat('00', 38), 'hex'), 't1', '0000', decode(repeat('00', 32), 'hex'), '예금주', status
		FROM d`, other, models.DemoProgram)
	statusCountsAgree(t, s, "one statement, several changes")

	// An upsert: two new claims inserted, two existing ones updated.
	exec("upsert", `INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name,
			representative, phone, category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4,
			account_blind_index, account_holder, status)
		SELECT coalesce(c.id, gen_random_uuid()), 'U' || i, $1, $2, coalesce(c.brn, lpad((900 + i)::text, 10, '0')), '상점', '대표', '010-0000-0000',
			'food', '서울', 1, '004', decode(repeat('00', 38), 'hex'), 't1', '0000', decode(repeat('00', 32), 'hex'), '예금주', 'verifying'
		FROM generate_series(1, 4) AS i LEFT JOIN claims c ON i <= 2 AND c.receipt_no = 'S02' || i
		ON CONFLICT (id) DO UPDATE SET status = 'appealed'`, models.DemoProgram, m.ID)
	statusCountsAgree(t, s, "upsert")

	// Deletes, and a change rolled back.
	if n := exec("delete", `DELETE FROM claims WHERE receipt_no LIKE 'S03%' OR receipt_no = 'U3'`); n != 11 {
		t.Fatalf("deleted %d claims, want 11", n)
	}
	statusCountsAgree(t, s, "delete")
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE claims SET status = 'closed'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	statusCountsAgree(t, s, "rolled back")
}
