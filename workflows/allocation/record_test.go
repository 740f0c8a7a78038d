package allocation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows/allocation"
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
	staff := func(email, role string) *models.User {
		u, err := store.CreateUser(ctx, models.NewUser{Email: email, Name: "직원", Password: "correct horse", Roles: []string{role}, Agency: "KPOST"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	admin, approver := staff("admin@example.kr", models.RoleProgramAdmin), staff("approver@example.kr", models.RoleApprover)
	for i := range 3 {
		u, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("m%d@example.kr", i), Name: "상인", Password: "correct horse", Roles: []string{models.RoleMerchant}})
		if err != nil {
			t.Fatal(err)
		}
		in := &models.ClaimInput{Program: models.DemoProgram, BRN: rules.ValidBRNFromSeed(700 + i).String(), BusinessName: "상회", Representative: "대표",
			Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_000_000,
			Bank:  models.BankInput{BankCode: "004", AccountNumber: "12345678901234", Holder: "대표"},
			Goods: []models.GoodsItem{{SKU: "G", Name: "사과", UnitPrice: 20_000, Quantity: 100, Perishable: i == 0}}}
		if _, _, err := store.FileClaim(ctx, u, "k", models.RequestHash("POST", "/api/v1/claims", []byte{byte(i)}), in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Pool.Exec(ctx, `UPDATE claims SET status = 'approved', approved_compensation = 1000000 * (1 + (brn::bigint % 3))`); err != nil {
		t.Fatal(err)
	}
	var tr *models.Tranche
	if err := store.InTx(ctx, func(tx pgx.Tx) error {
		tr, err = store.CreateTranche(ctx, tx, admin, models.DemoProgram, models.TrancheInput{Name: "1차", Budget: 3_000_000}, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	w := worker.New(c, allocation.TaskQueue, worker.Options{})
	allocation.Register(w, store)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

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
	writeHistory(t, ctx, c, allocation.WorkflowID(tr.ID), recordFile)
}

func writeHistory(t *testing.T, ctx context.Context, c client.Client, workflowID, name string) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
	if n := os.Getenv("RELIEF_RECORD_FILE"); n != "" {
		name = filepath.Base(n)
	}
	path := filepath.Join("testdata", "histories", name)
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d events", path, len(h.Events))
}
