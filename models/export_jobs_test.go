package models_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
)

func exportStore(t *testing.T) (*models.Store, *models.User) {
	t.Helper()
	ctx := context.Background()
	v, err := vault.Parse(vault.NewKeySpec("t1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(ctx, pgtest.NewDB(t), 8, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, models.NewUser{Email: "staff@kpost.test", Name: "직원", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	return s, u
}

// insertClaims bulk-inserts n claims of the demo program.
func insertClaims(t *testing.T, s *models.Store, owner *models.User, n int) {
	t.Helper()
	m, err := s.CreateUser(context.Background(), models.NewUser{Email: "m" + owner.ID.String()[:8] + "@shop.test", Name: "상인", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name,
			representative, phone, category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4,
			account_blind_index, account_holder, owed_total, created_at)
		SELECT gen_random_uuid(), 'T' || lpad(i::text, 7, '0'), $1, $2, lpad(i::text, 10, '0'), '상점 ' || i, '대표', '010-0000-0000',
			'food', '서울', i, '004', decode(repeat('00', 38), 'hex'), 't1', '0000', decode(repeat('00', 32), 'hex'), '예금주', 10 * i, now() + make_interval(secs => i)
		FROM generate_series(1, $3::int) AS i`, models.DemoProgram, m.ID, n); err != nil {
		t.Fatal(err)
	}
}

// The register reads through a server-side cursor batch by batch: every row
// once, in order, across batch boundaries, and an early stop is clean.
func TestClaimRegisterRowsStreamThroughACursor(t *testing.T) {
	s, u := exportStore(t)
	ctx := context.Background()
	const n = 2_501
	insertClaims(t, s, u, n)
	for _, dedicated := range []bool{false, true} {
		err := s.ExportSnapshot(ctx, dedicated, func(tx pgx.Tx) error {
			total, err := models.ClaimRegisterCount(ctx, tx, models.DemoProgram)
			if err != nil || total != n {
				t.Fatalf("count %d, %v", total, err)
			}
			var rows, sum int64
			prev := ""
			for r, err := range models.ClaimRegisterRows(ctx, tx, models.DemoProgram) {
				if err != nil {
					return err
				}
				if r.ReceiptNo <= prev {
					t.Fatalf("receipt %s after %s", r.ReceiptNo, prev)
				}
				prev = r.ReceiptNo
				rows++
				sum += r.ClaimedLoss
			}
			if rows != n || sum != n*(n+1)/2 {
				t.Errorf("%d rows summing to %d", rows, sum)
			}
			// Stopping early closes nothing the transaction needs afterwards.
			for range models.ClaimRegisterRows(ctx, tx, models.DemoProgram) {
				break
			}
			_, err = models.ClaimRegisterCount(ctx, tx, models.DemoProgram)
			return err
		})
		if err != nil {
			t.Fatalf("dedicated=%v: %v", dedicated, err)
		}
	}
	// The snapshot is read-only.
	err := s.ExportSnapshot(ctx, false, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM claims`)
		return err
	})
	if err == nil {
		t.Error("an export snapshot could write")
	}
}

func TestExportJobLeases(t *testing.T) {
	s, u := exportStore(t)
	ctx := context.Background()
	now := time.Now()
	s.Now = func() time.Time { return now }
	var job *models.ExportJob
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		job, err = s.CreateExportJob(ctx, tx, models.DemoProgram, models.ExportClaims, u.ID, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if job.Status != models.ExportQueued {
		t.Fatalf("new job %+v", job)
	}
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.CreateExportJob(ctx, tx, models.DemoProgram, "secrets", u.ID, false)
		return err
	}); !models.IsKind(err, models.EINVALID) {
		t.Errorf("unknown kind: %v", err)
	}

	first, err := s.ClaimExportJob(ctx, time.Minute)
	if err != nil || first.ID != job.ID || first.Attempts != 1 {
		t.Fatalf("claim: %+v %v", first, err)
	}
	if _, err := s.ClaimExportJob(ctx, time.Minute); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("a running job was handed out twice: %v", err)
	}
	if err := s.ExportJobProgress(ctx, first, 10, 100); err != nil {
		t.Fatal(err)
	}
	w := s.ExportJobWriter(ctx, first)
	if _, err := w.Write(bytes.Repeat([]byte("x"), models.ExportChunkSize+10)); err != nil {
		t.Fatal(err)
	}

	// The runner goes silent; after the stale period another takes over.
	now = now.Add(2 * time.Minute)
	second, err := s.ClaimExportJob(ctx, time.Minute)
	if err != nil || second.ID != job.ID || second.Attempts != 2 || second.Lease == first.Lease || second.RowsDone != 0 {
		t.Fatalf("takeover: %+v %v", second, err)
	}
	var chunks int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM export_chunks WHERE job_id = $1`, job.ID).Scan(&chunks); err != nil || chunks != 0 {
		t.Errorf("the takeover kept %d stale chunks", chunks)
	}
	// The first runner wakes up: everything it does is refused.
	if err := s.ExportJobProgress(ctx, first, 20, 100); !errors.Is(err, models.ErrLeaseLost) {
		t.Errorf("stale progress: %v", err)
	}
	if err := w.Close(); !errors.Is(err, models.ErrLeaseLost) {
		t.Errorf("stale chunk: %v", err)
	}
	if err := s.FinishExportJob(ctx, first, 1, 1, strings.Repeat("a", 64), models.AuditEntry{Actor: "x", Action: "export.generate", Subject: "s"}); !errors.Is(err, models.ErrLeaseLost) {
		t.Errorf("stale finish: %v", err)
	}

	// The second runner stores a file over several chunks and finishes.
	content := bytes.Repeat([]byte("0123456789"), models.ExportChunkSize/4)
	w2 := s.ExportJobWriter(ctx, second)
	for i := 0; i < len(content); i += 777_777 {
		if _, err := w2.Write(content[i:min(i+777_777, len(content))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishExportJob(ctx, second, 5, int64(len(content)), strings.Repeat("b", 64),
		models.AuditEntry{ActorID: &u.ID, Actor: u.Email, Action: "export.generate", Subject: "program:" + models.DemoProgram}); err != nil {
		t.Fatal(err)
	}
	done, err := s.ExportJobFor(ctx, u, job.ID)
	if err != nil || done.Status != models.ExportDone || done.RowsDone != 5 || done.Percent() != 100 {
		t.Fatalf("done job %+v %v", done, err)
	}
	var out bytes.Buffer
	if n, err := s.WriteExportFile(ctx, done, &out); err != nil || n != int64(len(content)) || !bytes.Equal(out.Bytes(), content) {
		t.Errorf("file read back: %d bytes, %v", n, err)
	}
	other, _ := s.CreateUser(ctx, models.NewUser{Email: "other@kpost.test", Name: "다른직원", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	if _, err := s.ExportJobFor(ctx, other, job.ID); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("another user sees the job: %v", err)
	}

	// Retention removes old finished jobs with their files.
	now = now.Add(models.ExportRetention + time.Hour)
	if n, err := s.DeleteExpiredExportJobs(ctx); err != nil || n != 1 {
		t.Errorf("retention removed %d: %v", n, err)
	}
}

func TestProgramSummaryOrdersStatusesByLifecycle(t *testing.T) {
	s, u := exportStore(t)
	ctx := context.Background()
	insertClaims(t, s, u, 30)
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET status = (ARRAY['paid','received','in_review','rejected'])[1 + (claimed_loss % 4)]`); err != nil {
		t.Fatal(err)
	}
	sum, err := models.ProgramSummary(ctx, s.Pool, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	var count, amount int64
	for _, t := range sum.ByStatus {
		labels = append(labels, t.Label)
		count += t.Count
		amount += t.Amount
	}
	if strings.Join(labels, ",") != "received,in_review,rejected,paid" || count != 30 || amount != 465 {
		t.Errorf("by status %v (%d claims, %d won)", sum.ByStatus, count, amount)
	}
	if len(sum.ByRegion) != 1 || sum.ByRegion[0] != (exports.Tally{Label: "서울", Count: 30, Amount: 4650}) {
		t.Errorf("by region %v", sum.ByRegion)
	}
	if models.SummaryLines(sum) != 4+1+1 {
		t.Errorf("%d lines", models.SummaryLines(sum))
	}
}
