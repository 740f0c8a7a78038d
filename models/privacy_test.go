package models_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/vault"
)

func secChecksum(t *testing.T, s *models.Store, sql string, args ...any) string {
	t.Helper()
	var sum *string
	if err := s.Pool.QueryRow(context.Background(), `SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM (`+sql+`) x`, args...).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum == nil {
		return ""
	}
	return *sum
}

// relief purge: a closed program past its retention loses its personal data
// (claims anonymised, not deleted; evidence and export files deleted; the
// sales ledger's BRNs aliased; merchant accounts without other claims
// anonymised) while its aggregates, the ledger and the audit chain stay intact.
func TestPurgeClosedProgramsKeepsAggregatesAndLedger(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	clock := &secClock{t: time.Now()}
	s.Now = clock.Now
	prog := models.DemoProgram

	a := secUser(t, s, "only-kpost@example.kr", "", models.RoleMerchant) // every claim in the closing program
	b := secUser(t, s, "also-mss@example.kr", "", models.RoleMerchant)   // has a claim in an open program too
	rev := secUser(t, s, "rev@kpost.kr", "KPOST", models.RoleReviewer)
	pa, pb, pbOpen := secPIIFor(40), secPIIFor(41), secPIIFor(42)
	claimA := secFile(t, s, a, prog, pa)
	claimB := secFile(t, s, b, prog, pb)
	claimOpen := secFile(t, s, b, "MSS-TEST", pbOpen)
	if err := s.SetClaimStatus(ctx, claimA, "note-1", models.StatusInReview, "reviewer", pa.Rep+" 대표와 통화, 연락처 "+pa.Phone); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := s.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO review_info_requests (claim_id, request_id, requested_by, note, due_at, answered_at, answer)
		VALUES ($1, 'ir-1', $2, $3, now(), now(), $4)`, claimA, rev.ID, "예금주 "+pa.Holder+" 확인 필요", "계좌 "+pa.Account+" 맞습니다")
	exec(`INSERT INTO review_appeals (claim_id, request_id, filed_by, reason) VALUES ($1, 'ap-1', $2, $3)`, claimB, b.ID, pb.Business+" 매출 재확인 요청")
	exec(`INSERT INTO claim_documents (id, claim_id, uploaded_by, filename, content_type, size_bytes, sha256, data)
		VALUES ($1, $2, $3, 'bizreg.pdf', 'application/pdf', 10, '\x00', convert_to($4, 'UTF8'))`, uuid.New(), claimA, a.ID, "%PDF "+pa.BRN)
	exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by) VALUES ($1, $2, 'claims', $3)`, uuid.New(), prog, rev.ID)
	for i, brn := range []string{strings.ReplaceAll(pa.BRN, "-", ""), strings.ReplaceAll(pb.BRN, "-", "")} {
		for d := 0; d < 3; d++ {
			exec(`INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission) VALUES ($1, $2, $3, 'food', $4, $5)`,
				prog, brn, time.Date(2025, 9, 20+d, 0, 0, 0, 0, time.UTC), 100_000*(i+1)+d, 6_000*(i+1))
		}
	}
	// Money owed and paid through the append-only ledger.
	if err := s.FundBudget(ctx, prog, models.InstrumentCompensation, 5_000_000, "fund"); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, _, err := s.PostEntitlement(ctx, tx, models.NewEntitlement{ClaimID: claimA, Program: prog, Instrument: models.InstrumentCompensation,
			Amount: 300_000, SourceKey: "comp:" + claimA.String()}); err != nil {
			return err
		}
		_, err := s.PostPayment(ctx, tx, prog, claimA, 100_000, "pay-1", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sessA := models.NewSessionToken()
	if err := s.CreateSession(ctx, a.ID, sessA, "", 24*time.Hour); err != nil {
		t.Fatal(err)
	}

	aggregates := `SELECT count(*), sum(claimed_loss), sum(approved_compensation), sum(owed_total), sum(paid_total),
		string_agg(id::text || status || category || region || receipt_no || created_at::text, ',' ORDER BY id) FROM claims WHERE program_code = $1`
	ledger := `SELECT 'l', id::text, tx_id::text, account_id::text, amount::text FROM ledger_lines
		UNION ALL SELECT 't', id::text, kind, idempotency_key, memo FROM ledger_transactions
		UNION ALL SELECT 'a', code, kind, balance::text, coalesce(claim_id::text, '') FROM ledger_accounts
		UNION ALL SELECT 'e', id::text, claim_id::text, amount::text, status FROM entitlements`
	sellerTotals := `SELECT sum(gross_sales), sum(commission), count(*) FROM sales_ledger WHERE program_code = $1 GROUP BY brn`
	dayTotals := `SELECT day, sum(gross_sales) FROM sales_ledger WHERE program_code = $1 GROUP BY day`
	wantAgg, wantLedger := secChecksum(t, s, aggregates, prog), secChecksum(t, s, ledger)
	wantSellers, wantDays := secChecksum(t, s, sellerTotals, prog), secChecksum(t, s, dayTotals, prog)
	summaryBefore, err := s.LedgerSummary(ctx, prog)
	if err != nil {
		t.Fatal(err)
	}

	purge := func(dry bool) []models.PurgeReport {
		t.Helper()
		r, err := s.PurgeClosedPrograms(ctx, dry)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := purge(false); len(r) != 0 {
		t.Fatalf("open program purged: %+v", r)
	}
	if err := s.SetProgramRetention(ctx, prog, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgramRetention(ctx, prog, 0); !models.IsKind(err, models.EINVALID) {
		t.Fatalf("retention 0: %v", err)
	}
	if err := s.CloseProgram(ctx, prog); err != nil {
		t.Fatal(err)
	}
	clock.Add(29 * 24 * time.Hour)
	if r := purge(false); len(r) != 0 {
		t.Fatalf("purged before retention ended: %+v", r)
	}
	clock.Add(2 * 24 * time.Hour)

	piiBefore := secDump(t, s)
	values := append(append(pa.values(), pb.values()...), a.Email, a.Name)
	control := []string{pa.Business, pb.Business, pa.Rep, pa.Holder, pa.Account, strings.ReplaceAll(pa.BRN, "-", ""), a.Email, a.Name}
	if hits := secFind(piiBefore, control); len(hits) < len(control) {
		t.Fatalf("control: the scan must find the data before the purge: %v", hits)
	}
	dry := purge(true)
	if len(dry) != 1 || dry[0].Claims != 2 || dry[0].Users != 1 || dry[0].Documents != 1 || dry[0].Exports != 1 || dry[0].LedgerRows != 6 {
		t.Fatalf("dry run: %+v", dry)
	}
	if hits := secFind(secDump(t, s), values); len(hits) != len(secFind(piiBefore, values)) {
		t.Fatal("a dry run changed data")
	}

	r := purge(false)
	if len(r) != 1 || r[0].Program != prog || r[0].Claims != 2 || r[0].Users != 1 || r[0].Notes != 3 || r[0].Sessions != 1 {
		t.Fatalf("purge: %+v", r)
	}
	if hits := secFind(secDump(t, s), values); len(hits) > 0 {
		t.Fatalf("personal data left after the purge: %v", hits)
	}
	if got := secChecksum(t, s, aggregates, prog); got != wantAgg {
		t.Fatal("claim aggregates (counts, amounts, statuses, categories, regions) changed")
	}
	if got := secChecksum(t, s, ledger); got != wantLedger {
		t.Fatal("the money ledger changed")
	}
	if secChecksum(t, s, sellerTotals, prog) != wantSellers || secChecksum(t, s, dayTotals, prog) != wantDays {
		t.Fatal("sales-ledger figures per seller or per day changed")
	}
	summaryAfter, err := s.LedgerSummary(ctx, prog)
	if err != nil || !reflect.DeepEqual(summaryAfter, summaryBefore) {
		t.Fatalf("ledger summary %+v → %+v (%v)", summaryBefore, summaryAfter, err)
	}
	// The other program's claim and merchant B's account are untouched.
	if hits := secFind(secDump(t, s), append(pbOpen.values(), b.Email)); len(hits) < 5 {
		t.Fatalf("an open program's data was purged: %v", hits)
	}
	if _, err := s.ClaimAccountNumber(ctx, nil, claimOpen); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimAccountNumber(ctx, nil, claimA); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("purged account still decrypts: %v", err)
	}
	if _, err := s.Authenticate(ctx, a.Email, "correct horse battery"); err == nil {
		t.Fatal("an anonymised account can still sign in")
	}
	if _, err := s.SessionUser(ctx, sessA, time.Hour); err == nil {
		t.Fatal("an anonymised account's session survived")
	}
	if _, err := s.Authenticate(ctx, b.Email, "correct horse battery"); err != nil {
		t.Fatalf("merchant with an open claim lost their account: %v", err)
	}
	// Claims still read (the ledger and exports refer to them).
	var brn, status string
	if err := s.Pool.QueryRow(ctx, `SELECT brn, status FROM claims WHERE id = $1`, claimA).Scan(&brn, &status); err != nil ||
		brn != "purged-"+claimA.String() || status != models.StatusInReview {
		t.Fatalf("purged claim: %q %q %v", brn, status, err)
	}
	// Idempotent: a second run changes nothing and logs nothing.
	var audits int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'purge_personal_data'`).Scan(&audits)
	again := purge(false)
	var auditsAfter int
	_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'purge_personal_data'`).Scan(&auditsAfter)
	if len(again) != 1 || again[0].Claims+again[0].Notes+again[0].Users+again[0].LedgerRows+again[0].Documents != 0 || audits != 1 || auditsAfter != 1 {
		t.Fatalf("rerun: %+v, purge audit entries %d → %d", again, audits, auditsAfter)
	}
	if broken, _, err := s.VerifyAudit(ctx); err != nil || broken != 0 {
		t.Fatalf("audit chain after purge: %d %v", broken, err)
	}
	// A purged claim cannot get personal data back by accident: the BRN check
	// only admits the alias on purged rows, and live rows must be sealed.
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET brn = 'purged-' || id::text WHERE id = $1`, claimOpen); err == nil {
		t.Fatal("a live claim took a purged BRN")
	}
}

// ANALYZE copies sampled column values into pg_statistic, where they would
// outlive a purge; personal data must never get there (migration 00012),
// while the columns the planner needs keep their statistics.
func TestAnalyzeKeepsPersonalDataOutOfStatistics(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	var pii []secPII
	for n := range 6 {
		u := secUser(t, s, fmt.Sprintf("stats-%d@example.kr", n), "", models.RoleMerchant)
		p := secPIIFor(60 + n)
		id := secFile(t, s, u, models.DemoProgram, p)
		if err := s.SetClaimStatus(ctx, id, fmt.Sprintf("note-%d", n), models.StatusInReview, "reviewer", p.Rep+" 대표 통화 "+p.Phone); err != nil {
			t.Fatal(err)
		}
		pii = append(pii, p)
	}
	if _, err := s.Pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	var stats string
	if err := s.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(tablename || '.' || attname || ' ' || coalesce(most_common_vals::text, '') || ' ' ||
		coalesce(histogram_bounds::text, ''), E'\n'), '') FROM pg_stats WHERE schemaname = 'public'`).Scan(&stats); err != nil {
		t.Fatal(err)
	}
	for _, p := range pii {
		for _, v := range append(p.values(), p.Rep+" 대표 통화 "+p.Phone) {
			if strings.Contains(stats, v) {
				t.Errorf("pg_stats holds %q", v)
			}
		}
	}
	for _, col := range []string{"users.email", "users.name", "idempotency_keys.body", "outbox.payload"} {
		if strings.Contains(stats, col+" ") {
			t.Errorf("pg_stats has statistics on %s", col)
		}
	}
	for _, col := range []string{"claims.status", "claims.created_at"} { // the planner needs these
		if !strings.Contains(stats, col+" ") {
			t.Errorf("pg_stats has no statistics on %s", col)
		}
	}
}
