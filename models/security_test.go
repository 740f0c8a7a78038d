package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

// secClock is a settable clock for Store.Now.
type secClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *secClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *secClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func secOpen(t *testing.T, url, keySpec string) *models.Store {
	t.Helper()
	v, err := vault.Parse(keySpec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(context.Background(), url, 8, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// secStore is a seeded store plus a second program, MSS-TEST, of agency MSS.
func secStore(t *testing.T, keySpec string) (*models.Store, string) {
	t.Helper()
	url := pgtest.NewDB(t)
	s := secOpen(t, url, keySpec)
	ctx := context.Background()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO programs (code, agency_code, name, platform, outage_starts_at, outage_ends_at,
			window_opens_at, window_closes_at, compensation_cap, four_eyes_threshold)
		SELECT 'MSS-TEST', 'MSS', 'MSS 시험 사업', platform, outage_starts_at, outage_ends_at, window_opens_at, window_closes_at,
			compensation_cap, four_eyes_threshold FROM programs WHERE code = $1`, models.DemoProgram); err != nil {
		t.Fatal(err)
	}
	return s, url
}

func secUser(t *testing.T, s *models.Store, email, agency string, roles ...string) *models.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), models.NewUser{Email: email, Name: "이름-" + email, Phone: "010-7000-0000",
		Password: "correct horse battery", Roles: roles, Agency: agency})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// secPII is the personal data of one claim, unique per n so a scan can tell claims apart.
type secPII struct {
	BRN, Business, Rep, Phone, Account, AccountDigits, Holder string
}

func secPIIFor(n int) secPII {
	brn := rules.ValidBRNFromSeed(700_000 + n*37).Formatted()
	digits := fmt.Sprintf("3%02d%09d", n, 456789000+n)
	return secPII{BRN: brn, Business: fmt.Sprintf("비밀상회%03d", n), Rep: fmt.Sprintf("홍대표%03d", n),
		Phone: fmt.Sprintf("010-8%03d-%04d", n, 4321+n), Account: digits[:3] + "-" + digits[3:7] + "-" + digits[7:],
		AccountDigits: digits, Holder: fmt.Sprintf("예금주%03d", n)}
}

func (p secPII) values() []string {
	brnDigits := strings.ReplaceAll(p.BRN, "-", "")
	phoneDigits := strings.ReplaceAll(p.Phone, "-", "")
	return []string{p.BRN, brnDigits, p.Business, p.Rep, p.Phone, phoneDigits, p.Account, p.AccountDigits, p.Holder}
}

func secFile(t *testing.T, s *models.Store, u *models.User, program string, p secPII) uuid.UUID {
	t.Helper()
	in := &models.ClaimInput{Program: program, BRN: p.BRN, BusinessName: p.Business, Representative: p.Rep, Phone: p.Phone,
		Category: "food", Region: "대전", ClaimedLoss: 2_000_000,
		Bank:  models.BankInput{BankCode: "004", AccountNumber: p.Account, Holder: p.Holder},
		Goods: []models.GoodsItem{{SKU: "G-1", Name: "사과", UnitPrice: 10000, Quantity: 10}}}
	body, _ := json.Marshal(in)
	status, resp, err := s.FileClaim(context.Background(), u, uuid.NewString(), models.RequestHash("POST", "/api/v1/claims", body), in)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("file claim: %d %v", status, err)
	}
	var f models.Filed
	if err := json.Unmarshal(resp, &f); err != nil {
		t.Fatal(err)
	}
	return f.ID
}

// secDump renders every row of every table as text, for personal-data scans.
func secDump(t *testing.T, s *models.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tbl := range tables {
		var text *string
		// bytea columns render as hex in row_to_json; decode them too by
		// casting to text with escape encoding.
		if err := s.Pool.QueryRow(ctx, `SELECT string_agg(row_to_json(t)::text, E'\n') FROM `+pgx.Identifier{tbl}.Sanitize()+` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if text != nil {
			out[tbl] = *text
		}
	}
	return out
}

func secFind(dump map[string]string, values []string) []string {
	var hits []string
	for tbl, text := range dump {
		for _, v := range values {
			if v != "" && strings.Contains(text, v) {
				hits = append(hits, tbl+": "+v)
			}
		}
	}
	return hits
}

// Role changes end every session of the user (the application does it, and
// a trigger does it for any other writer); the change is audit-logged.
func TestRoleChangeEndsSessions(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	staff := secUser(t, s, "rev@kpost.kr", "KPOST", models.RoleReviewer)
	admin := secUser(t, s, "admin@kpost.kr", "KPOST", models.RoleProgramAdmin)
	login := func() string {
		tok := models.NewSessionToken()
		if err := s.CreateSession(ctx, staff.ID, tok, "", time.Hour); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alive := func(tok string) bool {
		_, err := s.SessionUser(ctx, tok, time.Hour)
		return err == nil
	}
	laptop, phone := login(), login()
	u, err := s.ChangeUserRoles(ctx, admin, staff.ID, []string{models.RoleReviewer, models.RoleApprover}, "KPOST")
	if err != nil || !u.HasRole(models.RoleApprover) {
		t.Fatalf("change roles: %v %v", u, err)
	}
	if alive(laptop) || alive(phone) {
		t.Fatal("sessions survived a role change")
	}
	var actor, subject string
	if err := s.Pool.QueryRow(ctx, `SELECT actor, subject FROM audit_log WHERE action = 'roles_changed'`).Scan(&actor, &subject); err != nil ||
		actor != admin.Email || subject != "user:"+staff.ID.String() {
		t.Fatalf("audit: %q %q %v", actor, subject, err)
	}

	// Any other writer: the trigger ends the sessions too.
	tok := login()
	if _, err := s.Pool.Exec(ctx, `UPDATE users SET roles = ARRAY['reviewer'] WHERE id = $1`, staff.ID); err != nil {
		t.Fatal(err)
	}
	if alive(tok) {
		t.Fatal("a role change by SQL left the session alive")
	}
	tok = login()
	if _, err := s.Pool.Exec(ctx, `UPDATE users SET agency_code = 'MSS' WHERE id = $1`, staff.ID); err != nil {
		t.Fatal(err)
	}
	if alive(tok) {
		t.Fatal("an agency change left the session alive")
	}
	tok = login()
	if _, err := s.Pool.Exec(ctx, `UPDATE users SET password_hash = 'x' WHERE id = $1`, staff.ID); err != nil {
		t.Fatal(err)
	}
	if alive(tok) {
		t.Fatal("a password change left the session alive")
	}
	tok = login()
	if _, err := s.Pool.Exec(ctx, `UPDATE users SET name = '새이름', phone = '010-1234-0000' WHERE id = $1`, staff.ID); err != nil {
		t.Fatal(err)
	}
	if !alive(tok) {
		t.Fatal("a name change must not end sessions")
	}

	for _, c := range []struct {
		roles  []string
		agency string
	}{{nil, "KPOST"}, {[]string{"root"}, "KPOST"}, {[]string{models.RoleReviewer}, ""}, {[]string{models.RoleMerchant}, "KPOST"}} {
		if _, err := s.ChangeUserRoles(ctx, nil, staff.ID, c.roles, c.agency); !models.IsKind(err, models.EINVALID) {
			t.Errorf("roles %v agency %q: want 422, got %v", c.roles, c.agency, err)
		}
	}
	if _, err := s.ChangeUserRoles(ctx, nil, staff.ID, []string{models.RoleReviewer}, "NOPE"); !models.IsKind(err, models.EINVALID) {
		t.Errorf("unknown agency: %v", err)
	}
	if _, err := s.ChangeUserRoles(ctx, nil, uuid.New(), []string{models.RoleReviewer}, "KPOST"); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("unknown user: %v", err)
	}
	if !alive(tok) {
		t.Fatal("a refused role change ended sessions")
	}
	if n, err := s.EndUserSessions(ctx, staff.ID); err != nil || n != 1 || alive(tok) {
		t.Fatalf("end sessions: %d %v", n, err)
	}
}

// Idle and absolute timeouts are enforced server-side.
func TestSessionTimeouts(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	clock := &secClock{t: time.Date(2025, 10, 1, 9, 0, 0, 0, time.UTC)}
	s.Now = clock.Now
	u := secUser(t, s, "m@example.kr", "", models.RoleMerchant)
	const idle, absolute = 30 * time.Minute, 2 * time.Hour
	idleTok, busyTok := models.NewSessionToken(), models.NewSessionToken()
	for _, tok := range []string{idleTok, busyTok} {
		if err := s.CreateSession(ctx, u.ID, tok, "", absolute); err != nil {
			t.Fatal(err)
		}
	}
	// busy is used every 20 minutes; idle is not.
	for i := 0; i < 5; i++ {
		clock.Add(20 * time.Minute)
		if _, err := s.SessionUser(ctx, busyTok, idle); err != nil {
			t.Fatalf("active session ended after %d×20 min: %v", i+1, err)
		}
		if i == 1 {
			if _, err := s.SessionUser(ctx, idleTok, idle); err == nil {
				t.Fatal("a session idle for 40 minutes still works")
			}
		}
	}
	clock.Add(20 * time.Minute) // 2 h since login: absolute lifetime over, however busy
	if _, err := s.SessionUser(ctx, busyTok, idle); err == nil {
		t.Fatal("session outlived its absolute lifetime")
	}
	if n, err := s.DeleteDeadSessions(ctx, idle); err != nil || n != 2 {
		t.Fatalf("dead sessions removed: %d %v", n, err)
	}
}

// Bank account numbers are ciphertext at rest: no column of any table holds
// the number, and the database refuses a plaintext write.
func TestAccountNumbersAreCiphertextAtRest(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	u := secUser(t, s, "m@example.kr", "", models.RoleMerchant)
	p := secPIIFor(1)
	id := secFile(t, s, u, models.DemoProgram, p)

	var ct, bidx []byte
	var keyID, last4 string
	if err := s.Pool.QueryRow(ctx, `SELECT account_ciphertext, account_key_id, account_last4, account_blind_index FROM claims WHERE id = $1`, id).
		Scan(&ct, &keyID, &last4, &bidx); err != nil {
		t.Fatal(err)
	}
	if keyID != "k1" || last4 != p.AccountDigits[len(p.AccountDigits)-4:] || len(ct) != 12+len(p.AccountDigits)+16 || len(bidx) != 32 {
		t.Fatalf("key %q last4 %q ciphertext %d bytes index %d bytes", keyID, last4, len(ct), len(bidx))
	}
	for _, v := range []string{p.AccountDigits, p.Account, p.AccountDigits[:len(p.AccountDigits)-4]} {
		if strings.Contains(string(ct), v) || strings.Contains(string(bidx), v) {
			t.Fatalf("ciphertext contains %q", v)
		}
	}
	// The whole database, rendered as text (bytea as hex, so check the hex
	// form of the digits too): the number appears nowhere.
	hexDigits := fmt.Sprintf("%x", p.AccountDigits)
	dump := secDump(t, s)
	if hits := secFind(dump, []string{p.AccountDigits, p.Account, hexDigits, p.AccountDigits[:8]}); len(hits) > 0 {
		t.Fatalf("account number stored in the clear: %v", hits)
	}
	if hits := secFind(dump, []string{p.Business, p.Holder}); len(hits) != 2 {
		t.Fatalf("the scan must see the claim's other columns (control): %v", hits)
	}
	if got, err := s.ClaimAccountNumber(ctx, nil, id); err != nil || got != p.AccountDigits {
		t.Fatalf("decrypt: %q %v", got, err)
	}
	// A writer that skips the vault is refused by the database.
	_, err := s.Pool.Exec(ctx, `UPDATE claims SET account_ciphertext = convert_to($2, 'UTF8') WHERE id = $1`, id, p.AccountDigits)
	if err == nil || !strings.Contains(err.Error(), "claims_account_sealed_check") {
		t.Fatalf("plaintext account write: %v", err)
	}
	// A sealed value moved to another claim does not open (bound to its row).
	other := secFile(t, s, u, models.DemoProgram, secPIIFor(2))
	if _, err := s.Pool.Exec(ctx, `UPDATE claims SET account_ciphertext = $2 WHERE id = $1`, other, ct); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimAccountNumber(ctx, nil, other); err == nil {
		t.Fatal("a ciphertext copied to another claim decrypted")
	}
}

// relief rekey: batched, resumable, idempotent, concurrent-safe; the blind
// index does not move; a lost original key or a missing old key stops it.
func TestRekeyAccounts(t *testing.T) {
	k1 := vault.NewKeySpec("k1")
	s1, url := secStore(t, k1)
	ctx := context.Background()
	u := secUser(t, s1, "m@example.kr", "", models.RoleMerchant)
	const n = 7
	type before struct {
		ct, bidx []byte
		digits   string
	}
	rows := map[uuid.UUID]before{}
	for i := 0; i < n; i++ {
		p := secPIIFor(10 + i)
		id := secFile(t, s1, u, models.DemoProgram, p)
		var b before
		b.digits = p.AccountDigits
		if err := s1.Pool.QueryRow(ctx, `SELECT account_ciphertext, account_blind_index FROM claims WHERE id = $1`, id).Scan(&b.ct, &b.bidx); err != nil {
			t.Fatal(err)
		}
		rows[id] = b
	}
	// The first run under k1 records the blind-index key and has nothing to do.
	if res, err := s1.RekeyAccounts(ctx, 3, nil); err != nil || res.Rekeyed != 0 || res.ByKey["k1"] != n {
		t.Fatalf("rekey under the same key: %+v %v", res, err)
	}

	k2 := vault.NewKeySpec("k2")
	s2 := secOpen(t, url, k2+","+k1)
	// Interrupted after the first batch of 3: what committed stays, the rerun resumes.
	runCtx, cancel := context.WithCancel(ctx)
	res, err := s2.RekeyAccounts(runCtx, 3, func(done int64) { cancel() })
	cancel()
	if !errors.Is(err, context.Canceled) || res.Rekeyed != 3 {
		t.Fatalf("interrupted run: %+v %v", res, err)
	}
	var underK2 int
	_ = s2.Pool.QueryRow(ctx, `SELECT count(*) FROM claims WHERE account_key_id = 'k2'`).Scan(&underK2)
	if underK2 != 3 {
		t.Fatalf("%d rows under k2 after one batch, want 3", underK2)
	}
	// Two runs at once (a second operator, a retry) share the rest without errors.
	var wg sync.WaitGroup
	var total int64
	var mu sync.Mutex
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s2.RekeyAccounts(ctx, 1, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			total += r.Rekeyed
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != n-3 {
		t.Fatalf("concurrent runs re-encrypted %d rows, want %d", total, n-3)
	}
	res, err = s2.RekeyAccounts(ctx, 3, nil)
	if err != nil || res.Rekeyed != 0 || res.ByKey["k2"] != n || len(res.ByKey) != 1 {
		t.Fatalf("idempotent rerun: %+v %v", res, err)
	}
	for id, b := range rows {
		var ct, bidx []byte
		var kid string
		if err := s2.Pool.QueryRow(ctx, `SELECT account_ciphertext, account_key_id, account_blind_index FROM claims WHERE id = $1`, id).Scan(&ct, &kid, &bidx); err != nil {
			t.Fatal(err)
		}
		if kid != "k2" || string(ct) == string(b.ct) || string(bidx) != string(b.bidx) {
			t.Fatalf("claim %s: key %s, ciphertext changed %v, blind index stable %v", id, kid, string(ct) != string(b.ct), string(bidx) == string(b.bidx))
		}
		if got, err := s2.ClaimAccountNumber(ctx, nil, id); err != nil || got != b.digits {
			t.Fatalf("decrypt after rekey: %q %v", got, err)
		}
	}
	// Once every row is under k2, k1 is needed only for the blind index; an
	// env that drops it (or puts it first) is refused before anything is written.
	for _, spec := range []string{k2, k1 + "," + k2} {
		bad := secOpen(t, url, spec)
		if _, err := bad.RekeyAccounts(ctx, 3, nil); !errors.Is(err, models.ErrIndexKeyChanged) {
			t.Fatalf("rekey with %s first: %v", strings.SplitN(spec, ":", 2)[0], err)
		}
	}
	// A row under a key that is no longer listed stops the run naming the
	// claim, never the number.
	k3 := vault.NewKeySpec("k3")
	s3 := secOpen(t, url, k3+","+k1)
	_, err = s3.RekeyAccounts(ctx, 3, nil)
	if err == nil || !strings.Contains(err.Error(), `key "k2"`) {
		t.Fatalf("missing old key: %v", err)
	}
	for _, b := range rows {
		if strings.Contains(err.Error(), b.digits) {
			t.Fatal("error message leaks an account number")
		}
	}
}

// Views of personal data are logged for staff and reviewed by the auditor of
// the same agency only.
func TestPersonalDataViews(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	m := secUser(t, s, "m@example.kr", "", models.RoleMerchant)
	kpostClaim := secFile(t, s, m, models.DemoProgram, secPIIFor(30))
	mssClaim := secFile(t, s, m, "MSS-TEST", secPIIFor(31))
	rev := secUser(t, s, "rev@kpost.kr", "KPOST", models.RoleReviewer)
	fin := secUser(t, s, "fin@kpost.kr", "KPOST", models.RoleFinance)
	mssRev := secUser(t, s, "rev@mss.kr", "MSS", models.RoleReviewer)
	auditor := secUser(t, s, "audit@kpost.kr", "KPOST", models.RoleAuditor)
	for _, v := range []struct {
		u  *models.User
		id uuid.UUID
	}{{rev, kpostClaim}, {fin, kpostClaim}, {mssRev, mssClaim}, {m, kpostClaim}, {rev, kpostClaim}} {
		if err := s.AuditPersonalDataView(ctx, v.u, v.id, "192.0.2.7", "brn", "phone"); err != nil {
			t.Fatal(err)
		}
	}
	views, next, err := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{})
	if err != nil || next != "" || len(views) != 3 {
		t.Fatalf("views = %+v next %q err %v: want the 3 staff views of KPOST claims", views, next, err)
	}
	for _, v := range views {
		if v.ClaimID != kpostClaim || v.Program != models.DemoProgram || v.IP != "192.0.2.7" || len(v.Fields) != 2 || v.Actor == m.Email {
			t.Fatalf("view %+v", v)
		}
	}
	if views[0].Actor != rev.Email || views[1].Actor != fin.Email { // newest first
		t.Fatalf("order: %s, %s", views[0].Actor, views[1].Actor)
	}
	if v, _, _ := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Actor: "FIN@kpost.kr"}); len(v) != 1 {
		t.Fatalf("by actor: %d", len(v))
	}
	var receipt string
	_ = s.Pool.QueryRow(ctx, `SELECT receipt_no FROM claims WHERE id = $1`, kpostClaim).Scan(&receipt)
	if v, _, _ := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Claim: receipt}); len(v) != 3 {
		t.Fatalf("by receipt: %d", len(v))
	}
	if v, _, _ := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Claim: mssClaim.String()}); len(v) != 0 {
		t.Fatalf("another agency's claim: %d views visible", len(v))
	}
	page1, cursor, err := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Limit: 2})
	if err != nil || len(page1) != 2 || cursor == "" {
		t.Fatalf("page 1: %d %q %v", len(page1), cursor, err)
	}
	page2, cursor2, err := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Limit: 2, Cursor: cursor})
	if err != nil || len(page2) != 1 || cursor2 != "" || page2[0].At.After(page1[1].At) {
		t.Fatalf("page 2: %d %q %v", len(page2), cursor2, err)
	}
	if _, _, err := s.ListPersonalDataViews(ctx, auditor, models.ViewFilter{Cursor: "!!"}); !models.IsKind(err, models.EINVALID) {
		t.Fatalf("bad cursor: %v", err)
	}
	for _, u := range []*models.User{rev, fin, m, mssRev} {
		if _, _, err := s.ListPersonalDataViews(ctx, u, models.ViewFilter{}); !models.IsKind(err, models.EFORBIDDEN) {
			t.Fatalf("%v lists views: %v", u.Roles, err)
		}
	}
	if broken, _, err := s.VerifyAudit(ctx); err != nil || broken != 0 {
		t.Fatalf("audit chain: %d %v", broken, err)
	}
}
