package payout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/bank"
	"github.com/relief/relief/workflows/payout/payouttest"
)

func matchSandbox(_ int, bankCode, account string) string {
	return banksim.DefaultHolder(bankCode, account)
}

func statuses(t *testing.T, s *models.Store, claimID uuid.UUID) []string {
	t.Helper()
	events, err := s.Timeline(context.Background(), claimID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Status)
	}
	return out
}

// TestBatchPaysLinesAndReturnsFailuresToOwed runs one batch through the real
// workflow against the sandbox bank: a holder that does not match and a closed
// account fail at the holder check (before approval), a payee over its daily
// limit fails at the bank; the creator cannot approve, a second approval is
// refused; everything else is paid once, in the ledger too, and the claims
// move paying → paid → closed.
func TestBatchPaysLinesAndReturnsFailuresToOwed(t *testing.T) {
	ctx := context.Background()
	account := func(i int) (string, string) {
		if i == 2 {
			return "004", "99900000000002" // closed (the sandbox's 999 prefix)
		}
		return []string{"004", "088", "020"}[i%3], "1101234560000" + string(rune('0'+i))
	}
	limited := "004/11012345600003"
	h := newHarness(t, banksim.Faults{AccountDailyLimits: map[string]int64{limited: 10}})
	seeded := h.seed(payouttest.Options{Claims: 6, Prefix: "e", Account: account, Holder: func(i int, b, a string) string {
		if i == 1 {
			return "홍길동" // not the account's holder
		}
		return banksim.DefaultHolder(b, a)
	}})
	w := h.worker()
	defer w.Stop()

	created, err := payouttest.CreateBatch(ctx, h.store, h.creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		t.Fatal(err)
	}
	if err := payout.Start(ctx, h.c, created.ID, payout.Tuning{PageSize: 2, Parallel: 2, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	b := h.waitStatus(created.ID, models.BatchAwaitingApproval, time.Minute)
	if b.Counts[models.LineFailed] != 2 || b.Counts[models.LinePending] != 4 {
		t.Fatalf("after the holder check: %v", b.Counts)
	}
	if n := h.count(`SELECT count(*) FROM entitlements WHERE claim_id = ANY($1) AND status = 'owed' AND batch_id IS NULL`,
		[]uuid.UUID{seeded.ClaimIDs[1], seeded.ClaimIDs[2]}); n != 2 {
		t.Fatalf("entitlements of the lines failed at the holder check owed again: %d", n)
	}

	if _, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: h.creator.ID}); !errors.Is(err, models.ErrPayoutSegregation) {
		t.Fatalf("approval by the creator: %v", err)
	}
	res, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: h.approver.ID, RequestID: "req-1"})
	if err != nil || res.ApprovedCount != 4 {
		t.Fatalf("approval: %+v %v", res, err)
	}
	third, err := h.store.CreateUser(ctx, models.NewUser{Email: "third@finance.relief", Name: "재무c", Password: password, Roles: []string{models.RoleFinance}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: third.ID}); !errors.Is(err, models.ErrPayoutAlreadyApproved) {
		t.Fatalf("second approval: %v", err)
	}

	result := h.workflowResult(created.ID, 2*time.Minute)
	if result.Status != models.BatchCompleted || result.Paid != 3 || result.Failed != 3 {
		t.Fatalf("result %+v", result)
	}
	lines, err := h.store.PayoutLines(ctx, created.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[uuid.UUID]string{}
	var paidTotal int64
	for _, l := range lines {
		codes[l.ClaimID] = l.FailureCode
		if l.Status == models.LinePaid {
			paidTotal += l.Amount
		}
		if strings.Contains(l.TransferKey, seeded.ClaimIDs[0].String()) || len(l.TransferKey) > 64 {
			t.Fatalf("transfer key %q", l.TransferKey)
		}
	}
	if codes[seeded.ClaimIDs[1]] != bank.CodeHolderMismatch || codes[seeded.ClaimIDs[2]] != bank.CodeInvalidAccount ||
		codes[seeded.ClaimIDs[3]] != bank.CodeDailyLimit {
		t.Fatalf("failure codes %v", codes)
	}
	stats, err := h.sim.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Debits != 3 || stats.DuplicateDebits != 0 || stats.DebitedAmount != paidTotal {
		t.Fatalf("sandbox %+v, want 3 debits of %d", stats, paidTotal)
	}
	sum, err := h.store.LedgerSummary(ctx, models.DemoProgram)
	if err != nil || sum.Total != 0 || sum.Balances["clearing"] != paidTotal {
		t.Fatalf("ledger %+v %v", sum, err)
	}
	for _, i := range []int{0, 4, 5} {
		got := statuses(t, h.store, seeded.ClaimIDs[i])
		if strings.Join(got[len(got)-3:], ",") != "paying,paid,closed" {
			t.Fatalf("claim %d timeline %v", i, got)
		}
		if n := h.count(`SELECT count(*) FROM claims WHERE id = $1 AND paid_total = owed_total AND status = 'closed'`, seeded.ClaimIDs[i]); n != 1 {
			t.Fatalf("claim %d not fully paid and closed", i)
		}
	}
	st, err := h.store.ClaimStatusOf(ctx, seeded.ClaimIDs[3])
	if err != nil || st != models.StatusEntitled {
		t.Fatalf("claim refused by the bank is %q (%v), want entitled again", st, err)
	}
	events, _ := h.store.Timeline(ctx, seeded.ClaimIDs[1])
	if note := events[len(events)-1].Note; !strings.Contains(note, "예금주") || !strings.Contains(note, "수정해 주세요") || strings.Contains(note, "1101234560") {
		t.Fatalf("merchant's note %q", note)
	}
	for _, i := range []int{1, 2} {
		if n := h.count(`SELECT count(*) FROM claims WHERE id = $1 AND account_check_failed_at IS NOT NULL`, seeded.ClaimIDs[i]); n != 1 {
			t.Fatalf("claim %d refused for its account is not flagged for correction", i)
		}
	}
	if n := h.count(`SELECT count(*) FROM claims WHERE id = $1 AND account_check_failed_at IS NULL`, seeded.ClaimIDs[3]); n != 1 {
		t.Fatal("a limit failure flagged the claim")
	}
	if n := h.count(`SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND NOT notified AND status IN ('paid','failed')`, created.ID); n != 0 {
		t.Fatalf("%d outcomes not on the claims' timelines", n)
	}
	r, err := h.store.PayoutReconciliation(ctx, h.batch(created.ID))
	if err != nil || !r.Balanced || r.Total.Settled != paidTotal || len(r.ByBank) != 3 {
		t.Fatalf("reconciliation %+v %v", r, err)
	}

	// The three failures are owed again; the next batch takes the one the
	// account was not to blame for. The other two wait for their merchant's
	// correction of the account.
	next, err := payouttest.CreateBatch(ctx, h.store, h.creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil || next.Lines != 1 || next.Total != seeded.Amounts[3] {
		t.Fatalf("next batch %+v %v", next, err)
	}
	if n := h.count(`SELECT count(*) FROM entitlements WHERE claim_id = ANY($1) AND status = 'owed' AND batch_id IS NULL`,
		[]uuid.UUID{seeded.ClaimIDs[1], seeded.ClaimIDs[2]}); n != 2 {
		t.Fatalf("entitlements of the claims awaiting correction still owed: %d", n)
	}
}

// TestExactlyOnceDespiteStoppedWorkerAndLostResponses is the exactly-once
// proof: the worker is stopped in the middle of the transfers and a new one
// takes over, while the sandbox bank loses a quarter of its responses after
// committing the transfer (and refuses some calls before). Afterwards the bank
// debited every payout exactly once, the ledger balances and the amounts paid
// are the amounts owed.
func TestExactlyOnceDespiteStoppedWorkerAndLostResponses(t *testing.T) {
	ctx := context.Background()
	const n = 200
	h := newHarness(t, banksim.Faults{Seed: 42, LatencyMS: 10, LatencyJitterMS: 20, LoseAfterCommitRate: 0.25, FailBeforeCommitRate: 0.05})
	seeded := h.seed(payouttest.Options{Claims: n, Prefix: "x", Holder: matchSandbox})
	created, err := payouttest.CreateBatch(ctx, h.store, h.creator, models.PayoutBatchInput{Program: models.DemoProgram})
	if err != nil {
		t.Fatal(err)
	}
	tuning := payout.Tuning{PageSize: 10, Parallel: 2, Concurrency: 3, HeartbeatTimeout: 2 * time.Second}
	if err := payout.Start(ctx, h.c, created.ID, tuning); err != nil {
		t.Fatal(err)
	}
	first := h.worker()
	h.waitStatus(created.ID, models.BatchAwaitingApproval, time.Minute)
	if _, err := payout.Approve(ctx, h.c, created.ID, payout.ApproveRequest{ApproverID: h.approver.ID}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a quarter of the lines paid", time.Minute, func() bool {
		return h.count(`SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND status = 'paid'`, created.ID) >= n/4
	})
	first.Stop()
	paidAtStop := h.count(`SELECT count(*) FROM payout_lines WHERE batch_id = $1 AND status = 'paid'`, created.ID)
	if paidAtStop >= n {
		t.Fatalf("the worker stopped after the batch finished (%d paid): no proof", paidAtStop)
	}
	// Duplicate requests meanwhile change nothing.
	if err := payout.Start(ctx, h.c, created.ID, tuning); err != nil {
		t.Fatal(err)
	}
	second := h.worker()
	defer second.Stop()

	result := h.workflowResult(created.ID, 3*time.Minute)
	t.Logf("stopped the worker at %d/%d paid; result %+v", paidAtStop, n, result)
	if result.Paid != n || result.Failed != 0 || result.PaidTotal != seeded.Total {
		t.Fatalf("result %+v, want %d paid totalling %d", result, n, seeded.Total)
	}
	stats, err := h.sim.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sandbox: %+v", stats)
	if stats.DuplicateDebits != 0 || stats.Debits != n || stats.DebitedAmount != seeded.Total || stats.Succeeded != n {
		t.Fatalf("sandbox %+v: want %d debits totalling %d, none duplicated", stats, n, seeded.Total)
	}
	if stats.InjectedLostReplies == 0 {
		t.Fatal("no response was lost: the faults did not strike")
	}
	sum, err := h.store.LedgerSummary(ctx, models.DemoProgram)
	if err != nil || sum.Total != 0 || sum.Balances["clearing"] != seeded.Total || sum.Balances["payable"] != 0 {
		t.Fatalf("ledger %+v %v", sum, err)
	}
	if got := h.count(`SELECT count(*) FROM payout_settlements s JOIN payout_lines l ON l.id = s.line_id WHERE l.batch_id = $1`, created.ID); got != n {
		t.Fatalf("settlements %d", got)
	}
	if got := h.count(`SELECT count(*) FROM claims WHERE id = ANY($1) AND paid_total = owed_total AND status = 'closed'`, seeded.ClaimIDs); got != n {
		t.Fatalf("%d of %d claims fully paid and closed", got, n)
	}
	if got := h.count(`SELECT count(*) FROM ledger_transactions WHERE kind = 'payment'`); got != n {
		t.Fatalf("payments %d", got)
	}
	r, err := h.store.PayoutReconciliation(ctx, h.batch(created.ID))
	if err != nil || !r.Balanced || r.LedgerPaid != seeded.Total {
		t.Fatalf("reconciliation %+v %v", r, err)
	}
}
