package feewaiver_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/feewaiver"
	"github.com/relief/relief/workflows/internal/historytest"
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
	historytest.SkipUnlessRecording(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := historytest.OpenStore(ctx, t, (*models.Store).SeedInstruments)
	admin := historytest.Staff(ctx, t, store, "admin@example.kr", models.RoleProgramAdmin)
	historytest.FileClaims(ctx, t, store, 3, func(i int) *models.ClaimInput {
		return historytest.DemoClaim(rules.ValidBRNFromSeed(900 + i).String())
	})
	for i := range 3 {
		brn := rules.ValidBRNFromSeed(900 + i).String()
		if _, err := store.Pool.Exec(ctx, `INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission)
			VALUES ($1, $2, '2025-10-25', 'food', $3, $4), ($1, $2, '2025-11-02', 'food', $3, $4)`,
			models.DemoProgram, brn, 1_234_567*(i+1), 74_074*(i+1)); err != nil {
			t.Fatal(err)
		}
	}

	c := historytest.StartWorker(t, feewaiver.TaskQueue, func(w worker.Worker) { feewaiver.Register(w, store) })

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

	historytest.Record(ctx, t, c, feewaiver.WorkflowID(models.DemoProgram), recordFile)
}
