package allocation_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/worker"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/allocation"
	"github.com/relief/relief/workflows/internal/historytest"
)

// recordFile is where TestRecordHistory writes; override with
// RELIEF_RECORD_FILE (a base name inside testdata/histories). Record a new
// history whenever AllocationWorkflow changes shape, under a new name, and
// keep the old ones: every one must go on replaying.
//
//	RELIEF_RECORD_HISTORY=1 go test ./workflows/allocation -run TestRecordHistory
const recordFile = "allocation_v1_notified.json"

// TestRecordHistory runs the real AllocationWorkflow — real activities on
// PostgreSQL, a real Temporal server — through a preview, the approval and
// the notification of three claims to its end, and writes its history as
// protojson (the format of `temporal workflow show --output json`).
func TestRecordHistory(t *testing.T) {
	historytest.SkipUnlessRecording(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := historytest.OpenStore(ctx, t, (*models.Store).SeedInstruments)
	admin := historytest.Staff(ctx, t, store, "admin@example.kr", models.RoleProgramAdmin)
	approver := historytest.Staff(ctx, t, store, "approver@example.kr", models.RoleApprover)
	historytest.FileClaims(ctx, t, store, 3, func(i int) *models.ClaimInput {
		in := historytest.DemoClaim(rules.ValidBRNFromSeed(700 + i).String())
		in.Goods = []models.GoodsItem{{SKU: "G", Name: "사과", UnitPrice: 20_000, Quantity: 100, Perishable: i == 0}}
		return in
	})
	if _, err := store.Pool.Exec(ctx, `UPDATE claims SET status = 'approved', approved_compensation = 1000000 * (1 + (brn::bigint % 3))`); err != nil {
		t.Fatal(err)
	}
	var tr *models.Tranche
	if err := store.InTx(ctx, func(tx pgx.Tx) (err error) {
		tr, err = store.CreateTranche(ctx, tx, admin, models.DemoProgram, models.TrancheInput{Name: "1차", Budget: 3_000_000}, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	c := historytest.StartWorker(t, allocation.TaskQueue, func(w worker.Worker) { allocation.Register(w, store) })

	if err := allocation.Start(ctx, c, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := allocation.Preview(ctx, c, tr, admin.ID); err != nil {
		t.Fatal(err)
	}
	res, err := allocation.Approve(ctx, c, tr, allocation.ApproveRequest{ApproverID: approver.ID})
	if err != nil || res.PurchaseOrders == 0 {
		t.Fatalf("approve: %+v %v", res, err)
	}
	if err := c.GetWorkflow(ctx, allocation.WorkflowID(tr.ID), "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	historytest.Record(ctx, t, c, allocation.WorkflowID(tr.ID), recordFile)
}
