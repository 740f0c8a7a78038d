package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

func newStaff(t *testing.T, s *models.Store, email, agency string, roles ...string) *models.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), models.NewUser{Email: email, Name: "직원 " + email, Password: "correct horse", Roles: roles, Agency: agency})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// seedSales gives brn daily sales of daily won for the 4 weeks before the
// demo outage and nothing during it: an estimated loss of about 12.9 × daily.
func seedSales(t *testing.T, s *models.Store, brn string, daily int64) {
	t.Helper()
	var rows [][]any
	for d := (rules.Date{Year: 2025, Month: 8, Day: 29}); d.Compare(rules.Date{Year: 2025, Month: 9, Day: 25}) <= 0; d = d.AddDays(1) {
		rows = append(rows, []any{models.DemoProgram, brn, time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC), "food", daily, daily * 6 / 100})
	}
	if _, err := s.Pool.CopyFrom(context.Background(), pgx.Identifier{"sales_ledger"},
		[]string{"program_code", "brn", "day", "category", "gross_sales", "commission"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
}

// verify is the workflow's verification step: the checks, then the status.
func verify(t *testing.T, s *models.Store, id uuid.UUID) *models.ReviewContext {
	t.Helper()
	ctx := context.Background()
	rc, err := s.VerifyClaim(ctx, nil, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetClaimStatus(ctx, id, rc.Status, rc.Status, "system", rc.Note); err != nil {
		t.Fatal(err)
	}
	return rc
}

func fileFor(t *testing.T, s *models.Store, u *models.User, brn string, mutate func(*models.ClaimInput)) uuid.UUID {
	t.Helper()
	in := validClaim(brn)
	if mutate != nil {
		mutate(in)
	}
	_, f, err := file(t, s, u, uuid.NewString(), in)
	if err != nil {
		t.Fatal(err)
	}
	return f.ID
}

func TestVerifyClaimFlagsAndFastTrack(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m := newMerchant(t, s, "m@example.kr")
	fast := rules.ValidBRNFromSeed(1).String()
	seedSales(t, s, fast, 100_000) // loss ≈ 1.29M: within the 3M fast-track limit
	big := rules.ValidBRNFromSeed(2).String()
	seedSales(t, s, big, 100_000)
	var closed string
	for n := 0; ; n++ {
		if n%97 == 13 {
			closed = rules.ValidBRNFromSeed(n).String()
			break
		}
	}
	seedSales(t, s, closed, 100_000)

	cases := []struct {
		name   string
		brn    string
		mutate func(*models.ClaimInput)
		status string
		flags  []string
	}{
		{"accepted offer, small, clean", fast, func(in *models.ClaimInput) { in.AcceptOffer, in.ClaimedLoss = true, 0 }, models.StatusAutoApproved, nil},
		{"claimed far above the estimate", big, func(in *models.ClaimInput) { in.ClaimedLoss = 9_000_000; in.Bank.AccountNumber = "222233334444" },
			models.StatusInReview, []string{models.FlagClaimAboveEstimate}},
		{"closed business", closed, func(in *models.ClaimInput) { in.AcceptOffer = true; in.Bank.AccountNumber = "333344445555" },
			models.StatusInReview, []string{models.FlagBusinessClosed}},
		{"not in the ledger, account shared", rules.ValidBRNFromSeed(4).String(), nil, // same account as the first claim
			models.StatusInReview, []string{models.FlagNotInLedger, models.FlagSharedAccount}},
	}
	for _, c := range cases {
		id := fileFor(t, s, m, c.brn, c.mutate)
		rc := verify(t, s, id)
		again, err := s.VerifyClaim(ctx, nil, id) // idempotent
		if err != nil || again.Status != rc.Status {
			t.Fatalf("%s: second verify %v %v", c.name, again, err)
		}
		cl, err := s.ClaimForViewer(ctx, m, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range cl.RiskFlags {
			got = append(got, f.Code)
			if f.Reason == "" {
				t.Errorf("%s: flag %s without a reason", c.name, f.Code)
			}
		}
		if cl.Status != c.status || fmt.Sprint(got) != fmt.Sprint(c.flags) && !(len(got) == 0 && len(c.flags) == 0) {
			t.Errorf("%s: status %s flags %v; want %s %v", c.name, cl.Status, got, c.status, c.flags)
		}
		if c.status == models.StatusAutoApproved {
			if cl.Amounts.EstimatedLoss == nil || cl.Amounts.ApprovedCompensation != rc.Compensation || rc.Compensation <= 0 || rc.Compensation%10 != 0 {
				t.Errorf("%s: amounts %+v, compensation %d", c.name, cl.Amounts, rc.Compensation)
			}
		} else if cl.Amounts.ApprovedCompensation != 0 {
			t.Errorf("%s: approved %d without review", c.name, cl.Amounts.ApprovedCompensation)
		}
	}
	if n, _ := models.BRNSeedIndex(rules.ValidBRNFromSeed(123_456).String()); n != 123_456 {
		t.Errorf("seed index round trip: %d", n)
	}
	if st, _ := (models.NTSSandbox{}).BusinessStatus(ctx, models.DemoBRN); st != models.BusinessActive {
		t.Errorf("the demo business is %s", st)
	}
}

func TestDecisionSegregationOfDutiesInTheDatabase(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	// A staff member who is also a merchant files a claim, then tries to decide it.
	dual := newStaff(t, s, "dual@example.kr", "KPOST", models.RoleMerchant, models.RoleReviewer)
	reviewer := newStaff(t, s, "r@example.kr", "KPOST", models.RoleReviewer)
	approver := newStaff(t, s, "a@example.kr", "KPOST", models.RoleApprover)
	id := fileFor(t, s, dual, rules.ValidBRNFromSeed(7).String(), nil)
	verify(t, s, id)
	at := time.Now()
	dec := func(req, action string, by *models.User, amount int64, status string) error {
		_, err := s.RecordDecision(ctx, models.DecisionRecord{RequestID: req, ClaimID: id, Action: action, ActorID: by.ID,
			ActorRole: "reviewer", Amount: amount, StatusAfter: status, At: at})
		return err
	}
	if err := dec("own", models.ActionApprove, dual, 1_000, models.StatusApproved); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("deciding one's own claim: %v", err)
	}
	if err := dec("first", models.ActionApprove, reviewer, 20_000_000, models.StatusPendingSecondApproval); err != nil {
		t.Fatal(err)
	}
	if err := dec("first", models.ActionApprove, reviewer, 20_000_000, models.StatusPendingSecondApproval); err != nil {
		t.Fatalf("replaying a decision: %v", err)
	}
	if err := dec("twice", models.ActionSecondApprove, reviewer, 20_000_000, models.StatusApproved); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("approving one's own first approval: %v", err)
	}
	if err := dec("second", models.ActionSecondApprove, approver, 20_000_000, models.StatusApproved); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM review_decisions WHERE claim_id = $1`, id); n != 2 {
		t.Fatalf("%d decisions", n)
	}
	var approved int64
	var first uuid.UUID
	if err := s.Pool.QueryRow(ctx, `SELECT c.approved_compensation, d.first_by FROM claims c JOIN review_decisions d ON d.claim_id = c.id
		WHERE c.id = $1 AND d.action = 'second_approve'`, id).Scan(&approved, &first); err != nil || approved != 20_000_000 || first != reviewer.ID {
		t.Fatalf("approved %d by %v (%v)", approved, first, err)
	}
	// Decisions are append-only, and audited.
	if _, err := s.Pool.Exec(ctx, `UPDATE review_decisions SET amount = 10 WHERE claim_id = $1`, id); err == nil {
		t.Error("a decision was edited")
	}
	if n := count(t, s, `SELECT count(*) FROM audit_log WHERE subject = $1 AND action LIKE 'claim.decision.%'`, "claim:"+id.String()); n != 2 {
		t.Errorf("%d audit entries", n)
	}
	if broken, _, err := s.VerifyAudit(ctx); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d (%v)", broken, err)
	}
}

func TestReviewQueueFiltersPagesAndScope(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	reviewer := newStaff(t, s, "r@example.kr", "KPOST", models.RoleReviewer)
	outsider := newStaff(t, s, "o@example.kr", "MSS", models.RoleReviewer)
	m := newMerchant(t, s, "m@example.kr")
	regions := []string{"대전", "서울", "부산"}
	var ids []uuid.UUID
	for i := range 23 {
		id := fileFor(t, s, m, rules.ValidBRNFromSeed(100+i).String(), func(in *models.ClaimInput) {
			in.Region = regions[i%3]
			in.ClaimedLoss = int64(1_000_000 + i*100_000)
			in.Bank.AccountNumber = fmt.Sprintf("1000%08d", i)
		})
		ids = append(ids, id)
		verify(t, s, id) // none is in the ledger: all flagged, in review
	}
	// All of them, oldest first, 5 per page: every claim once, in order.
	var seen []uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Status: models.StatusInReview, Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			seen = append(seen, it.ID)
		}
		if p.Counts[models.StatusInReview] != 23 || p.Counts[models.StatusApproved] != 0 {
			t.Fatalf("counts %v", p.Counts)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("pages gave %d claims out of order", len(seen))
	}
	// Largest first with an amount range and a region.
	lo, hi := int64(1_500_000), int64(2_500_000)
	p, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Region: "대전", MinAmount: &lo, MaxAmount: &hi,
		Sort: models.SortAmountDesc, Flag: models.FlagNotInLedger, Category: "food", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var amounts []int64
	for ; ; p, err = s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Region: "대전", MinAmount: &lo, MaxAmount: &hi,
		Sort: models.SortAmountDesc, Flag: models.FlagNotInLedger, Category: "food", Limit: 2, Cursor: p.NextCursor}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			amounts = append(amounts, it.ClaimedLoss)
			if it.Region != "대전" {
				t.Fatalf("region %s", it.Region)
			}
		}
		if p.NextCursor == "" {
			break
		}
	}
	if fmt.Sprint(amounts) != "[2500000 2200000 1900000 1600000]" {
		t.Errorf("amounts %v", amounts)
	}
	// Seed 110 ≡ 13 (mod 97): the NTS sandbox's one closed business here.
	if p, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Flag: models.FlagBusinessClosed}); err != nil || len(p.Items) != 1 || p.Items[0].ID != ids[10] {
		t.Errorf("business_closed: %v %v", p, err)
	}
	if _, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Status: "nope", Sort: "sideways"}); !models.IsKind(err, models.EINVALID) {
		t.Errorf("bad filters: %v", err)
	}
	if _, err := s.ReviewQueue(ctx, reviewer, models.QueueFilter{Program: models.DemoProgram, Cursor: "garbage"}); !models.IsKind(err, models.EINVALID) {
		t.Errorf("bad cursor: %v", err)
	}
	if _, err := s.ReviewQueue(ctx, outsider, models.QueueFilter{Program: models.DemoProgram}); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("another agency's queue: %v", err)
	}
	if _, err := s.ReviewFileFor(ctx, outsider, ids[0], "127.0.0.1"); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("another agency's claim: %v", err)
	}
	if _, err := s.ReviewQueue(ctx, m, models.QueueFilter{Program: models.DemoProgram}); !models.IsKind(err, models.EFORBIDDEN) {
		t.Errorf("a merchant's queue: %v", err)
	}
	// The claim file is audited as a view of personal data.
	rf, err := s.ReviewFileFor(ctx, reviewer, ids[0], "127.0.0.1")
	if err != nil || rf.Claim.ID != ids[0] || len(rf.Sales) == 0 {
		t.Fatalf("%v %v", rf, err)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_log WHERE action = 'claim.view_personal_data' AND subject = $1`, "claim:"+ids[0].String()); n != 1 {
		t.Errorf("%d view audits", n)
	}
}

func TestDocuments(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m := newMerchant(t, s, "m@example.kr")
	other := newMerchant(t, s, "o@example.kr")
	id := fileFor(t, s, m, rules.ValidBRNFromSeed(9).String(), nil)
	pdf := []byte("%PDF-1.4\n%…evidence…\n")
	d, created, err := s.AddDocument(ctx, m, id, "../../영수증.pdf", pdf)
	if err != nil || !created || d.ContentType != "application/pdf" || d.Filename != "영수증.pdf" || len(d.SHA256) != 64 {
		t.Fatalf("%+v %v %v", d, created, err)
	}
	again, created, err := s.AddDocument(ctx, m, id, "copy.pdf", pdf)
	if err != nil || created || again.ID != d.ID {
		t.Fatalf("same bytes twice: %+v %v %v", again, created, err)
	}
	if _, _, err := s.AddDocument(ctx, m, id, "x.pdf", []byte("MZ\x90\x00 not a pdf")); !models.IsKind(err, models.EINVALID) {
		t.Errorf("an executable: %v", err)
	}
	if _, _, err := s.AddDocument(ctx, other, id, "x.pdf", pdf); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("someone else's claim: %v", err)
	}
	got, data, err := s.DocumentFor(ctx, m, id, d.ID, "")
	if err != nil || string(data) != string(pdf) || got.SHA256 != d.SHA256 {
		t.Fatalf("%v %v", got, err)
	}
}
