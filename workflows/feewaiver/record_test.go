package feewaiver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows/feewaiver"
)

// recordFile is where TestRecordHistory writes; override with
// RELIEF_RECORD_FILE (a base name inside testdata/histories). Record a new
// history whenever FeeWaiverWorkflow changes shape, under a new name, and
// keep the old ones.
//
//	RELIEF_RECORD_HISTORY=1 go test ./workflows/feewaiver -run TestRecordHistory
const recordFile = "feewaiver_v1_timer_and_manual.json"

// TestRecordHistory runs the real FeeWaiverWorkflow on a real Temporal server
// with real activities on PostgreSQL for the demo program, whose promotion
// ended in 2025: the timer is already due, so it runs at once; then a manual
// run (an update) runs again and creates nothing new. The history up to that
// update's completion is written as protojson.
func TestRecordHistory(t *testing.T) {
	if os.Getenv(envRecord) != "1" {
		t.Skip("records a history only with " + envRecord + "=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := vault.Parse(vault.NewKeySpec("rec"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, pgtest.NewDB(t), 8, v)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.SeedInstruments(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := store.CreateUser(ctx, models.NewUser{Email: "admin@example.kr", Name: "직원", Password: "correct horse", Roles: []string{models.RoleProgramAdmin}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		u, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("m%d@example.kr", i), Name: "상인", Password: "correct horse", Roles: []string{models.RoleMerchant}})
		if err != nil {
			t.Fatal(err)
		}
		brn := rules.ValidBRNFromSeed(900 + i).String()
		in := &models.ClaimInput{Program: models.DemoProgram, BRN: brn, BusinessName: "상회", Representative: "대표",
			Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_000_000,
			Bank: models.BankInput{BankCode: "004", AccountNumber: "12345678901234", Holder: "대표"}}
		if _, _, err := store.FileClaim(ctx, u, "k", models.RequestHash("POST", "/api/v1/claims", []byte{byte(i)}), in); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Pool.Exec(ctx, `INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission)
			VALUES ($1, $2, '2025-10-25', 'food', $3, $4), ($1, $2, '2025-11-02', 'food', $3, $4)`,
			models.DemoProgram, brn, 1_234_567*(i+1), 74_074*(i+1)); err != nil {
			t.Fatal(err)
		}
	}

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	w := worker.New(c, feewaiver.TaskQueue, worker.Options{})
	feewaiver.Register(w, store)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	if err := feewaiver.Start(ctx, c, models.DemoProgram, feewaiver.DefaultSettlementLag); err != nil {
		t.Fatal(err)
	}
	for {
		run, err := store.LatestFeeWaiverRun(ctx, models.DemoProgram)
		if err != nil {
			t.Fatal(err)
		}
		if run != nil && run.Status == "done" {
			if run.Entitled != 3 {
				t.Fatalf("timer run %+v", run)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the timer run never finished")
		}
		time.Sleep(100 * time.Millisecond)
	}
	run, err := feewaiver.Run(ctx, c, models.DemoProgram, admin.ID, feewaiver.DefaultSettlementLag)
	if err != nil || run == nil || run.Entitled != 3 {
		t.Fatalf("manual run %+v %v", run, err)
	}
	if n := 0; store.Pool.QueryRow(ctx, `SELECT count(*) FROM entitlements WHERE instrument = 'fee_waiver'`).Scan(&n) != nil || n != 3 {
		t.Fatalf("%d fee-waiver entitlements after two runs", n)
	}

	it := c.GetWorkflowHistory(ctx, feewaiver.WorkflowID(models.DemoProgram), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	name := recordFile
	if n := os.Getenv("RELIEF_RECORD_FILE"); n != "" {
		name = filepath.Base(n)
	}
	path := filepath.Join("testdata", "histories", name)
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d events", path, len(h.Events))
}
