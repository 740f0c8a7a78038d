package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t testing.TB) *models.Store {
	t.Helper()
	ctx := context.Background()
	v, err := vault.Parse(vault.NewKeySpec("t1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(ctx, pgtest.NewDB(t), 16, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// copyDemoProgram adds a program named code with the demo program's
// agency, window and limits.
func copyDemoProgram(t *testing.T, s *models.Store, code string) {
	t.Helper()
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO programs (code, agency_code, name, platform, outage_starts_at, outage_ends_at,
			window_opens_at, window_closes_at, compensation_cap, four_eyes_threshold)
		SELECT $2, agency_code, name || ' (' || $2 || ')', platform, outage_starts_at, outage_ends_at, window_opens_at, window_closes_at,
			compensation_cap, four_eyes_threshold FROM programs WHERE code = $1`, models.DemoProgram, code); err != nil {
		t.Fatal(err)
	}
}

func newMerchant(t testing.TB, s *models.Store, email string) *models.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), models.NewUser{Email: email, Name: "김상인", Phone: "010-1111-2222", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func validClaim(brn string) *models.ClaimInput {
	return &models.ClaimInput{Program: models.DemoProgram, BRN: brn, BusinessName: "대전상회", Representative: "김대전",
		Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_500_000,
		Bank:  models.BankInput{BankCode: "004", AccountNumber: "123-4567-8901-23", Holder: "김대전"},
		Goods: []models.GoodsItem{{SKU: "A-1", Name: "사과", UnitPrice: 25000, Quantity: 120, Perishable: true}}}
}

// fileRaw files in as POST /api/v1/claims would (the request hash of its
// JSON body) and returns the answer as FileClaim gives it; safe to call from
// several goroutines.
func fileRaw(s *models.Store, u *models.User, key string, in *models.ClaimInput) (int, []byte, error) {
	body, _ := json.Marshal(in)
	return s.FileClaim(context.Background(), u, key, models.RequestHash("POST", "/api/v1/claims", body), in)
}

// atOnce runs f(0) … f(n-1) in n goroutines released together, so that the
// intake writers see them arrive at once, and waits for all of them.
func atOnce(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func file(t *testing.T, s *models.Store, u *models.User, key string, in *models.ClaimInput) (int, models.Filed, error) {
	t.Helper()
	status, resp, err := fileRaw(s, u, key, in)
	var f models.Filed
	if err == nil {
		if jerr := json.Unmarshal(resp, &f); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return status, f, err
}

// execBehind runs one statement on its own connection and delivers its
// error, for tests that race it against an open transaction.
func execBehind(s *models.Store, sql string, args ...any) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := s.Pool.Exec(context.Background(), sql, args...)
		done <- err
	}()
	return done
}

// stillWaiting fails the test if the statement behind done has finished
// within 300 ms: it should be waiting for a lock.
func stillWaiting(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s did not wait: %v", what, err)
	case <-time.After(300 * time.Millisecond):
	}
}

// finished returns the error of the statement behind done once the lock it
// waited for is gone, and fails the test if it is still waiting after 10 s.
func finished(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s is still waiting 10 s after the lock was released", what)
		return nil
	}
}

func count(t *testing.T, s *models.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFileClaimWritesClaimTimelineAndOutboxTogether(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	status, f, err := file(t, s, u, "key-1", validClaim("120-81-47521"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("status %d err %v", status, err)
	}
	if f.Status != models.StatusReceived || len(f.ReceiptNo) < 10 || f.ReceiptNo[0] != 'R' {
		t.Fatalf("filed = %+v", f)
	}
	if n := count(t, s, `SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND topic = $2 AND dispatched_at IS NULL`, f.ID, models.OutboxClaimFiled); n != 1 {
		t.Fatalf("outbox rows = %d", n)
	}
	c, err := s.ClaimForViewer(context.Background(), u, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.BRN != "1208147521" || c.Bank.AccountMasked != "******0123" || len(c.Goods) != 1 || len(c.Timeline) != 1 || c.Timeline[0].Status != "received" {
		t.Fatalf("claim = %+v", c)
	}
}

func TestAccountNumberIsCiphertextAtRest(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	_, f, err := file(t, s, u, "k", validClaim("1208147521"))
	if err != nil {
		t.Fatal(err)
	}
	var raw, bidx []byte
	var keyID string
	if err := s.Pool.QueryRow(context.Background(), `SELECT account_ciphertext, account_key_id, account_blind_index FROM claims WHERE id = $1`, f.ID).Scan(&raw, &keyID, &bidx); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("12345678901")) || bytes.Contains(raw, []byte("0123")) && len(raw) < 20 {
		t.Fatalf("raw column holds plaintext: %x", raw)
	}
	pt, err := s.Vault.Open(raw, keyID, []byte(f.ID.String()))
	if err != nil || string(pt) != "12345678901230"[:13] {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	if !bytes.Equal(bidx, s.Vault.BlindIndex("004:"+string(pt))) {
		t.Fatal("blind index does not match the account")
	}
}

func TestIdempotencyReplayMismatchAndDuplicate(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	_, first, err := file(t, s, u, "same", validClaim("1208147521"))
	if err != nil {
		t.Fatal(err)
	}
	status, again, err := file(t, s, u, "same", validClaim("1208147521"))
	if err != nil || status != http.StatusAccepted || again != first {
		t.Fatalf("replay: %d %+v %v, want %+v", status, again, err, first)
	}
	other := validClaim("1208147521")
	other.ClaimedLoss++
	if _, _, err := file(t, s, u, "same", other); !isCode(err, "idempotency_mismatch") {
		t.Fatalf("same key, other body: %v", err)
	}
	_, _, err = file(t, s, u, "new-key", validClaim("120-81-47521"))
	if !isCode(err, "duplicate_claim") {
		t.Fatalf("duplicate: %v", err)
	}
	if id := err.(*models.Error).Data["id"]; id != first.ID {
		t.Fatalf("duplicate names %v, want %v", id, first.ID)
	}
	if n := count(t, s, `SELECT count(*) FROM claims`); n != 1 {
		t.Fatalf("claims = %d", n)
	}
}

func TestConcurrentSameKeyAndSameBRNMakeOneClaim(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := "shared"
			if i%2 == 1 {
				key = uuid.NewString() // different keys, same BRN: the unique constraint decides
			}
			if _, f, err := file(t, s, u, key, validClaim("1208147521")); err == nil {
				ids <- f.ID
			} else if !isCode(err, "duplicate_claim") {
				t.Errorf("unexpected error: %v", err)
			}
		}(i)
	}
	wg.Wait()
	close(ids)
	seen := map[uuid.UUID]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 || count(t, s, `SELECT count(*) FROM claims`) != 1 || count(t, s, `SELECT count(*) FROM outbox`) != 1 {
		t.Fatalf("want exactly one claim and one outbox row, got ids %v", seen)
	}
}

func TestValidationNamesFieldsAndWritesNothing(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	bad := validClaim("1208147522")
	bad.Bank.AccountNumber = "12"
	bad.Goods[0].Quantity = 0
	_, _, err := file(t, s, u, "k", bad)
	e, ok := err.(*models.Error)
	if !ok || e.Code != "invalid_brn" || e.Fields["brn"] != "invalid_brn" || e.Fields["bank.account_number"] != "invalid_account" || e.Fields["goods[0].quantity"] != "out_of_range" {
		t.Fatalf("got %#v", err)
	}
	in := validClaim("1208147521")
	in.Program = "NOPE"
	if _, _, err := file(t, s, u, "k2", in); !isCode(err, "program_not_found") {
		t.Fatalf("unknown program: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM claims`) + count(t, s, `SELECT count(*) FROM idempotency_keys`); n != 0 {
		t.Fatalf("rows written on bad input: %d", n)
	}
}

func TestWindowClosedAndStaffCannotFile(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	s.Now = func() time.Time { return time.Now().AddDate(0, 0, 91) }
	if _, _, err := file(t, s, u, "k", validClaim("1208147521")); !isCode(err, "window_closed") {
		t.Fatalf("after the window: %v", err)
	}
	s.Now = time.Now
	staff, err := s.CreateUser(context.Background(), models.NewUser{Email: "r@kpost.kr", Name: "심사", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := file(t, s, staff, "k", validClaim("1208147521")); models.ErrorKind(err) != models.EFORBIDDEN {
		t.Fatalf("staff filing: %v", err)
	}
}

func TestVisibilityOtherMerchantsAndAgencies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	owner := newMerchant(t, s, "owner@example.kr")
	stranger := newMerchant(t, s, "stranger@example.kr")
	_, f, err := file(t, s, owner, "k", validClaim("1208147521"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimForViewer(ctx, stranger, f.ID); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("stranger sees claim: %v", err)
	}
	kpost, _ := s.CreateUser(ctx, models.NewUser{Email: "r@kpost.kr", Name: "심사", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	mss, _ := s.CreateUser(ctx, models.NewUser{Email: "r@mss.kr", Name: "심사", Password: "correct horse", Roles: []string{models.RoleReviewer}, Agency: "MSS"})
	if _, err := s.ClaimForViewer(ctx, kpost, f.ID); err != nil {
		t.Fatalf("agency staff: %v", err)
	}
	if _, err := s.ClaimForViewer(ctx, mss, f.ID); !models.IsKind(err, models.ENOTFOUND) {
		t.Fatalf("other agency sees claim: %v", err)
	}
	for _, v := range []*models.User{stranger, mss} {
		list, _, err := s.ListClaims(ctx, v, models.ClaimFilter{})
		if err != nil || len(list) != 0 {
			t.Fatalf("%s lists %d foreign claims (%v)", v.Email, len(list), err)
		}
	}
}

func TestListClaimsKeysetPagination(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	var brns []string
	for i := 0; i < 5; i++ {
		brns = append(brns, rules.ValidBRNFromSeed(i).String())
	}
	for i, b := range brns {
		if _, _, err := file(t, s, u, "k"+b, validClaim(b)); err != nil {
			t.Fatalf("claim %d (%s): %v", i, b, err)
		}
	}
	seen := map[uuid.UUID]bool{}
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		list, next, err := s.ListClaims(context.Background(), u, models.ClaimFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if seen[c.ID] {
				t.Fatalf("claim %s on two pages", c.ID)
			}
			seen[c.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(brns) {
		t.Fatalf("paged through %d of %d", len(seen), len(brns))
	}
	if _, _, err := s.ListClaims(context.Background(), u, models.ClaimFilter{Cursor: "garbage"}); !models.IsKind(err, models.EINVALID) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestSetClaimStatusIsIdempotent(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "a@example.kr")
	_, f, _ := file(t, s, u, "k", validClaim("1208147521"))
	for i := 0; i < 3; i++ {
		if err := s.SetClaimStatus(context.Background(), f.ID, "verifying", models.StatusVerifying, "system", ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE claim_id = $1 AND status = 'verifying'`, f.ID); n != 1 {
		t.Fatalf("timeline rows = %d", n)
	}
}

func TestAuditChainDetectsTampering(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := s.Audit(ctx, nil, models.AuditEntry{Actor: "a@x", Action: "login", Subject: "user", IP: "127.0.0.1", Details: map[string]any{"n": i, "z": "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	broken, checked, err := s.VerifyAudit(ctx)
	if err != nil || broken != 0 || checked != 5 {
		t.Fatalf("intact chain: broken=%d checked=%d err=%v", broken, checked, err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE audit_log SET action = 'x'`); err == nil {
		t.Fatal("audit_log accepted an UPDATE")
	}
	// A superuser bypassing the trigger is still caught by the chain.
	if _, err := s.Pool.Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update; UPDATE audit_log SET subject = 'forged' WHERE id = (SELECT min(id) + 2 FROM audit_log)`); err != nil {
		t.Fatal(err)
	}
	var third int64
	_ = s.Pool.QueryRow(ctx, `SELECT min(id) + 2 FROM audit_log`).Scan(&third)
	if broken, _, err := s.VerifyAudit(ctx); err != nil || broken != third {
		t.Fatalf("tampered entry %d not found: broken=%d err=%v", third, broken, err)
	}
}

func TestSessionsExpireAndRotate(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := newMerchant(t, s, "a@example.kr")
	if _, err := s.Authenticate(ctx, "A@example.kr", "correct horse"); err != nil {
		t.Fatalf("login is case-insensitive on email: %v", err)
	}
	if _, err := s.Authenticate(ctx, "a@example.kr", "wrong"); !isCode(err, "invalid_credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "nobody@example.kr", "wrong"); !isCode(err, "invalid_credentials") {
		t.Fatalf("unknown user: %v", err)
	}
	old := models.NewSessionToken()
	if err := s.CreateSession(ctx, u.ID, old, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh := models.NewSessionToken()
	if err := s.CreateSession(ctx, u.ID, fresh, old, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, old, time.Hour); err == nil {
		t.Fatal("rotated-out token still valid")
	}
	if got, err := s.SessionUser(ctx, fresh, time.Hour); err != nil || got.ID != u.ID {
		t.Fatalf("fresh token: %v", err)
	}
	s.Now = func() time.Time { return time.Now().Add(31 * time.Minute) }
	if _, err := s.SessionUser(ctx, fresh, 30*time.Minute); err == nil {
		t.Fatal("idle session still valid")
	}
	s.Now = time.Now
	if err := s.DeleteSession(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, fresh, time.Hour); err == nil {
		t.Fatal("logged-out token still valid")
	}
}

func TestSignupValidationAndEmailTaken(t *testing.T) {
	s := newStore(t)
	newMerchant(t, s, "a@example.kr")
	_, err := s.CreateUser(context.Background(), models.NewUser{Email: "A@EXAMPLE.kr", Name: "x", Password: "correct horse", Roles: []string{models.RoleMerchant}})
	if !isCode(err, "email_taken") {
		t.Fatalf("email taken: %v", err)
	}
	_, err = s.CreateUser(context.Background(), models.NewUser{Email: "bad", Name: "", Password: "short", Phone: "12", Roles: []string{models.RoleMerchant}})
	e, ok := err.(*models.Error)
	if !ok || e.Fields["email"] == "" || e.Fields["name"] == "" || e.Fields["password"] == "" || e.Fields["phone"] == "" {
		t.Fatalf("got %#v", err)
	}
}

func isCode(err error, code string) bool {
	e, ok := err.(*models.Error)
	return ok && e.Code == code
}
