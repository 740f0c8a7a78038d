package claim_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/claim"
	"github.com/relief/relief/workflows/dispatch"
	"github.com/relief/relief/workflows/internal/historytest"
)

// envRecord turns on TestRecordHistory. Record a new history whenever
// ClaimWorkflow changes shape, under a new file name, and keep the old files:
// every one of them must go on replaying (TestReplayCommittedHistories).
//
//	RELIEF_RECORD_HISTORY=1 RELIEF_RECORD_FILE=claim_v2_in_review.json go test ./workflows/claim -run TestRecordHistory
const envRecord = historytest.EnvRecord

// recordFile is where TestRecordHistory writes unless RELIEF_RECORD_FILE names
// another file in testdata/histories. An existing file is never overwritten:
// it is the proof that workflows started by an older version still replay.
const recordFile = "claim_v1_in_review.json"

// TestRecordHistory runs the real ClaimWorkflow — started by the real outbox
// dispatcher, with real activities on PostgreSQL — on a real Temporal server
// until it waits in in_review, and writes its history as protojson (the format
// of `temporal workflow show --output json`).
func TestRecordHistory(t *testing.T) {
	historytest.SkipUnlessRecording(t)
	path := historytest.NewPath(t, recordFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	store := historytest.OpenStore(ctx, t)
	u, err := store.CreateUser(ctx, models.NewUser{Email: "rec@example.kr", Name: "김기록", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if err != nil {
		t.Fatal(err)
	}
	in := &models.ClaimInput{Program: models.DemoProgram, BRN: "120-81-47521", BusinessName: "대전상회", Representative: "김대전",
		Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_500_000,
		Bank: models.BankInput{BankCode: "004", AccountNumber: "123-4567-8901-23", Holder: "김대전"}}
	body, _ := json.Marshal(in)
	status, resp, err := store.FileClaim(ctx, u, "rec-1", models.RequestHash("POST", "/api/v1/claims", body), in)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("file claim: %d %v", status, err)
	}
	var filed models.Filed
	if err := json.Unmarshal(resp, &filed); err != nil {
		t.Fatal(err)
	}

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	if err := workflows.EnsureSearchAttributes(ctx, c, ts.GetDefaultNamespace()); err != nil {
		t.Fatal(err)
	}
	for _, w := range workflows.NewWorkers(c, workflows.Deps{Store: store}) {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&dispatch.Dispatcher{Store: store, Temporal: c, Log: log, Poll: 100 * time.Millisecond}).Run(dctx)
	}()
	defer func() { stop(); <-done }()

	id := claim.WorkflowID(filed.ID)
	var hist *historypb.History
	for hist == nil {
		if ctx.Err() != nil {
			t.Fatal("the workflow never reached in_review")
		}
		time.Sleep(100 * time.Millisecond)
		h, err := historytest.Fetch(ctx, c, id)
		if err != nil {
			continue // not started yet
		}
		if reached(h, models.StatusInReview) {
			hist = h
		}
	}

	historytest.Write(t, path, hist)
}

// reached reports whether the history holds the upsert of ReliefClaimStatus to
// status: the last command of the workflow task that recorded it, so the
// history is complete up to the point where the workflow waits.
func reached(h *historypb.History, status string) bool {
	for _, e := range h.Events {
		a := e.GetUpsertWorkflowSearchAttributesEventAttributes()
		if a == nil {
			continue
		}
		p := a.GetSearchAttributes().GetIndexedFields()[claim.SearchStatus.GetName()]
		var got string
		if p != nil && json.Unmarshal(p.GetData(), &got) == nil && got == status {
			return true
		}
	}
	return false
}
