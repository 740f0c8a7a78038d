// Package reviewtest runs ClaimWorkflow's review on Temporal's test
// environment (time skipping for the durable timers) with its real activities
// on real PostgreSQL.
package reviewtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows/claim"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	s                                             *models.Store
	merchant, reviewer, reviewer2, approver, dual *models.User
}

func setup(t *testing.T) *fixture {
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
	user := func(email string, agency string, roles ...string) *models.User {
		u, err := s.CreateUser(ctx, models.NewUser{Email: email, Name: email, Password: "correct horse", Roles: roles, Agency: agency})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	return &fixture{s: s, merchant: user("m@example.kr", "", models.RoleMerchant),
		reviewer: user("r@example.kr", "KPOST", models.RoleReviewer), reviewer2: user("r2@example.kr", "KPOST", models.RoleReviewer),
		approver: user("a@example.kr", "KPOST", models.RoleApprover), dual: user("d@example.kr", "KPOST", models.RoleMerchant, models.RoleReviewer)}
}

// file files a claim by u for a BRN with daily sales of daily won before the outage.
func (f *fixture) file(t *testing.T, u *models.User, seed int, daily, claimed int64) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	brn := rules.ValidBRNFromSeed(seed)
	var rows [][]any
	for d := (rules.Date{Year: 2025, Month: 8, Day: 29}); d.Compare(rules.Date{Year: 2025, Month: 9, Day: 25}) <= 0; d = d.AddDays(1) {
		rows = append(rows, []any{models.DemoProgram, brn.String(), time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC), "food", daily, int64(0)})
	}
	if _, err := f.s.Pool.CopyFrom(ctx, pgx.Identifier{"sales_ledger"}, []string{"program_code", "brn", "day", "category", "gross_sales", "commission"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	in := &models.ClaimInput{Program: models.DemoProgram, BRN: brn.String(), BusinessName: "상회", Representative: "김",
		Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: claimed, AcceptOffer: claimed == 0,
		Bank: models.BankInput{BankCode: "004", AccountNumber: "1234567890" + brn.String()[6:], Holder: "김"}}
	body, _ := json.Marshal(in)
	_, resp, err := f.s.FileClaim(ctx, u, uuid.NewString(), models.RequestHash("POST", "/", body), in)
	if err != nil {
		t.Fatal(err)
	}
	var filed models.Filed
	_ = json.Unmarshal(resp, &filed)
	return filed.ID
}

func (f *fixture) status(t *testing.T, id uuid.UUID) string {
	t.Helper()
	var st string
	if err := f.s.Pool.QueryRow(context.Background(), `SELECT status FROM claims WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) events(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	rows, err := f.s.Pool.Query(context.Background(), `SELECT status || ':' || note FROM claim_events WHERE claim_id = $1 ORDER BY at, id`, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newEnv(t *testing.T, f *fixture) *testsuite.TestWorkflowEnvironment {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
	env.RegisterActivity(&claim.Activities{Store: f.s})
	env.SetTestTimeout(time.Minute)
	return env
}

// update sends an update at mock time `at` and records its outcome.
type outcome struct {
	res claim.UpdateResult
	err error
	ok  bool
}

func update(env *testsuite.TestWorkflowEnvironment, at time.Duration, name string, arg any) *outcome {
	o := &outcome{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, uuid.NewString(), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { o.err, o.ok = err, true },
			OnComplete: func(r interface{}, err error) {
				o.err, o.ok = err, true
				if err == nil {
					o.res = r.(claim.UpdateResult)
				}
			},
		}, arg)
	}, at)
	return o
}

func code(o *outcome) string {
	if !o.ok {
		return "never answered"
	}
	if o.err == nil {
		return "ok:" + o.res.Status
	}
	_, c, _, ok := claim.ErrorCode(o.err)
	if !ok {
		return "error:" + o.err.Error()
	}
	return c
}

func decision(u *models.User, action string, amount *int64, reason string) claim.DecisionRequest {
	return claim.DecisionRequest{Action: action, Amount: amount, ReasonCode: "insufficient_evidence", Reason: reason, ActorID: u.ID, ActorRoles: u.Roles}
}

func won(n int64) *int64 { return &n }

func TestFourEyesAndSegregationOfDuties(t *testing.T) {
	f := setup(t)
	id := f.file(t, f.merchant, 11, 1_000_000, 20_000_000) // estimate ≈ 12.9M won, above the 10M four-eyes threshold
	env := newEnv(t, f)
	own := update(env, time.Minute, claim.UpdateDecision, decision(f.merchant, "approve", nil, ""))
	first := update(env, 2*time.Minute, claim.UpdateDecision, decision(f.reviewer, "approve", won(12_000_005), ""))
	twice := update(env, 3*time.Minute, claim.UpdateDecision, decision(f.reviewer, "approve", nil, ""))
	notApprover := update(env, 4*time.Minute, claim.UpdateDecision, decision(f.reviewer2, "approve", nil, ""))
	mismatch := update(env, 5*time.Minute, claim.UpdateDecision, decision(f.approver, "approve", won(13_000_000), ""))
	aboveCap := update(env, 6*time.Minute, claim.UpdateDecision, decision(f.approver, "request_info", nil, "more"))
	second := update(env, 7*time.Minute, claim.UpdateDecision, decision(f.approver, "approve", nil, ""))
	late := update(env, 8*time.Minute, claim.UpdateDecision, decision(f.reviewer2, "reject", nil, "no"))
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: id})

	for name, c := range map[string][2]string{
		"merchant decides":             {code(own), "forbidden"},
		"first approval":               {code(first), "ok:pending_second_approval"},
		"first approver again":         {code(twice), "segregation_of_duties"},
		"reviewer as second approver":  {code(notApprover), "approver_required"},
		"second approval other amount": {code(mismatch), "amount_mismatch"},
		"info request while pending":   {code(aboveCap), "invalid_state"},
		"second approval":              {code(second), "ok:approved"},
		"decision after approval":      {code(late), "invalid_state"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: %s, want %s", name, c[0], c[1])
		}
	}
	if first.res.Amount != 12_000_000 || second.res.Amount != 12_000_000 {
		t.Errorf("amounts %d, %d: want the entered amount truncated to 10 won", first.res.Amount, second.res.Amount)
	}
	var approved int64
	_ = f.s.Pool.QueryRow(context.Background(), `SELECT approved_compensation FROM claims WHERE id = $1`, id).Scan(&approved)
	if f.status(t, id) != models.StatusApproved || approved != 12_000_000 {
		t.Errorf("claim %s, approved %d", f.status(t, id), approved)
	}
}

func TestFilerCannotDecideAndAutoApproval(t *testing.T) {
	f := setup(t)
	id := f.file(t, f.dual, 12, 1_000_000, 20_000_000)
	env := newEnv(t, f)
	own := update(env, time.Minute, claim.UpdateDecision, decision(f.dual, "approve", nil, ""))
	capped := update(env, 2*time.Minute, claim.UpdateDecision, decision(f.reviewer, "approve", won(60_000_000), ""))
	noReason := update(env, 3*time.Minute, claim.UpdateDecision, claim.DecisionRequest{Action: "reject", ActorID: f.reviewer.ID, ActorRoles: f.reviewer.Roles})
	env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Minute)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: id})
	if code(own) != "segregation_of_duties" || code(capped) != "amount_above_cap" || code(noReason) != "reason_required" {
		t.Errorf("own %s, capped %s, no reason %s", code(own), code(capped), code(noReason))
	}

	// A small accepted offer goes straight through.
	fast := f.file(t, f.merchant, 16, 100_000, 0) // claimed 0: accepts the offer (≈1.29M won)
	env = newEnv(t, f)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: fast})
	if st := f.status(t, fast); st != models.StatusAutoApproved {
		t.Errorf("fast track: %s", st)
	}
}

func TestInfoRequestDeadlineAppealAndWindow(t *testing.T) {
	f := setup(t)
	id := f.file(t, f.merchant, 14, 500_000, 8_000_000)
	env := newEnv(t, f)
	day := 24 * time.Hour
	ask := update(env, time.Minute, claim.UpdateDecision, decision(f.reviewer, "request_info", nil, "매출 증빙을 올려 주세요"))
	// Nobody answers: the reminder comes 3 days before the 14-day deadline,
	// then the request closes and the claim returns to review.
	reject := update(env, 15*day, claim.UpdateDecision, decision(f.reviewer, "reject", nil, "증빙 없음"))
	stranger := update(env, 15*day+time.Hour, claim.UpdateAppeal, claim.AppealRequest{ActorID: f.reviewer.ID, Reason: "x"})
	appeal := update(env, 15*day+2*time.Hour, claim.UpdateAppeal, claim.AppealRequest{ActorID: f.merchant.ID, Reason: "증빙을 첨부했습니다"})
	rejecterAgain := update(env, 15*day+3*time.Hour, claim.UpdateDecision, decision(f.reviewer, "approve", won(1_000_000), ""))
	reject2 := update(env, 15*day+4*time.Hour, claim.UpdateDecision, decision(f.reviewer2, "reject", nil, "여전히 부족"))
	appeal2 := update(env, 15*day+5*time.Hour, claim.UpdateAppeal, claim.AppealRequest{ActorID: f.merchant.ID, Reason: "다시"})
	// The appeal window (30 days) then passes and the claim closes: the workflow ends.
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: id})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	got := []string{code(ask), code(reject), code(stranger), code(appeal), code(rejecterAgain), code(reject2), code(appeal2)}
	want := []string{"ok:info_requested", "ok:rejected", "forbidden", "ok:in_review", "segregation_of_duties", "ok:rejected", "already_appealed"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d: %s, want %s", i, got[i], want[i])
		}
	}
	if st := f.status(t, id); st != models.StatusClosed {
		t.Errorf("status %s", st)
	}
	wantEvents := []string{"received:", "verifying:", "in_review:review.note.in_review", "info_requested:review.note.request_info",
		"info_requested:review.note.info_reminder", "in_review:review.note.info_expired", "rejected:review.note.reject",
		"appealed:review.note.appealed", "in_review:review.note.appeal_review", "rejected:review.note.reject", "closed:review.note.appeal_window_closed"}
	if ev := f.events(t, id); len(ev) != len(wantEvents) {
		t.Errorf("timeline %q\nwant %q", ev, wantEvents)
	} else {
		for i := range ev {
			if ev[i] != wantEvents[i] {
				t.Errorf("timeline[%d] %s, want %s", i, ev[i], wantEvents[i])
			}
		}
	}
	var expired, reminded *time.Time
	if err := f.s.Pool.QueryRow(context.Background(), `SELECT expired_at, reminded_at FROM review_info_requests WHERE claim_id = $1`, id).Scan(&expired, &reminded); err != nil || expired == nil || reminded == nil {
		t.Errorf("info request expired %v reminded %v (%v)", expired, reminded, err)
	}
}

func TestInfoAnsweredInTime(t *testing.T) {
	f := setup(t)
	id := f.file(t, f.merchant, 15, 500_000, 8_000_000)
	env := newEnv(t, f)
	day := 24 * time.Hour
	update(env, time.Minute, claim.UpdateDecision, decision(f.reviewer, "request_info", nil, "증빙"))
	empty := update(env, day, claim.UpdateInfo, claim.InfoRequest{ActorID: f.merchant.ID, Note: " "})
	answer := update(env, 2*day, claim.UpdateInfo, claim.InfoRequest{ActorID: f.merchant.ID, Note: "첨부했습니다"})
	again := update(env, 3*day, claim.UpdateInfo, claim.InfoRequest{ActorID: f.merchant.ID, Note: "또"})
	approve := update(env, 20*day, claim.UpdateDecision, decision(f.reviewer2, "approve", nil, ""))
	env.RegisterDelayedCallback(env.CancelWorkflow, 21*day)
	env.ExecuteWorkflow(claim.WorkflowName, claim.Input{ClaimID: id})
	if code(empty) != "note_required" || code(answer) != "ok:in_review" || code(again) != "no_open_info_request" || code(approve) != "ok:approved" {
		t.Errorf("empty %s, answer %s, again %s, approve %s", code(empty), code(answer), code(again), code(approve))
	}
	var n int
	_ = f.s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM claim_events WHERE claim_id = $1 AND note IN ('review.note.info_reminder', 'review.note.info_expired')`, id).Scan(&n)
	if n != 0 {
		t.Errorf("an answered request was reminded or expired (%d events)", n)
	}
	// The default amount is the computed compensation (estimate ≈ 6.45M won).
	if approve.res.Amount <= 6_000_000 || approve.res.Amount%10 != 0 {
		t.Errorf("approved %d", approve.res.Amount)
	}
}
