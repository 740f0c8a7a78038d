package models_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

func newAdmin(t *testing.T, s *models.Store, email string) *models.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), models.NewUser{Email: email, Name: "한담당", Password: "correct horse",
		Roles: []string{models.RoleProgramAdmin}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runImport records and runs an import of path as the admin.
func runImport(t *testing.T, s *models.Store, admin *models.User, path, format string) (*models.ImportResult, *models.LedgerImport) {
	t.Helper()
	ctx := context.Background()
	li, err := s.NewLedgerImport(ctx, admin, models.DemoProgram, filepath.Base(path), format, 1, []byte("sum"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RunLedgerImport(ctx, li.ID, path, format)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LedgerImportFor(ctx, admin, li.ID)
	if err != nil {
		t.Fatal(err)
	}
	return res, got
}

func TestValidateLedgerRowTable(t *testing.T) {
	h := []string{"seller_brn", "date", "gross_sales", "commission", "category"}
	tests := []struct {
		rec     []string
		columns string // the columns reported, in order
	}{
		{[]string{"120-81-47521", "2025-09-01", "1,000,000", "60000", "food"}, ""},
		{[]string{"1208147521", "45901", "1000", "0", "agri"}, ""}, // Excel date serial
		{[]string{"1208147522", "2025-09-01", "1000", "60", "food"}, "seller_brn"},
		{[]string{"12081475", "2025-09-01", "1000", "60", "food"}, "seller_brn"},
		{[]string{"1208147521", "2025-02-30", "1000", "60", "food"}, "date"},
		{[]string{"1208147521", "01/09/2025", "1000", "60", "food"}, "date"},
		{[]string{"1208147521", "2025-09-01", "-5", "0", "food"}, "gross_sales"},
		{[]string{"1208147521", "2025-09-01", "10.5", "0", "food"}, "gross_sales"},
		{[]string{"1208147521", "2025-09-01", "100", "200", "food"}, "commission"},
		{[]string{"1208147521", "2025-09-01", "100", "x", "food"}, "commission"},
		{[]string{"1208147521", "2025-09-01", "100", "6", "weapons"}, "category"},
		{[]string{"bad", "bad", "bad", "bad", "bad"}, "seller_brn,date,gross_sales,commission,category"},
		{[]string{"1208147521"}, "date,gross_sales,commission,category"}, // short row
	}
	hdr, herrs := models.ParseLedgerHeader(h)
	if len(herrs) != 0 {
		t.Fatal(herrs)
	}
	for _, tt := range tests {
		_, errs := models.ValidateLedgerRow(hdr, tt.rec, 7)
		var cols []string
		for _, e := range errs {
			cols = append(cols, e.Column)
			if e.Row != 7 || e.Message == "" {
				t.Errorf("%v: error %+v", tt.rec, e)
			}
		}
		if got := strings.Join(cols, ","); got != tt.columns {
			t.Errorf("%v: columns %q, want %q", tt.rec, got, tt.columns)
		}
	}
	// Property: every BRN from the seed space validates in any of its spellings.
	for n := 0; n < rules.BRNSeedSpace; n += 104_729 {
		b := rules.ValidBRNFromSeed(n)
		for _, spelled := range []string{b.String(), b.Formatted()} {
			if r, errs := models.ValidateLedgerRow(hdr, []string{spelled, "2025-09-01", "0", "0", "other"}, 2); len(errs) != 0 || r.BRN != b.String() {
				t.Fatalf("%s: %v", spelled, errs)
			}
		}
	}
}

func TestSniffLedger(t *testing.T) {
	cases := []struct {
		head, name, format, code string
	}{
		{"seller_brn,date\n", "a.csv", models.FormatCSV, ""},
		{"\xef\xbb\xbfseller_brn,date\n", "a.CSV", models.FormatCSV, ""},
		{"PK\x03\x04rest", "a.xlsx", models.FormatXLSX, ""},
		{"PK\x03\x04rest", "a.csv", "", "file_type_mismatch"},
		{"seller_brn\x00", "a.csv", "", "unsupported_file_type"},
		{"%PDF-1.7", "a.xlsx", "", "file_type_mismatch"}, // text, but named .xlsx
		{"\xff\xfe\x00s", "a.csv", "", "unsupported_file_type"},
	}
	for _, c := range cases {
		f, err := models.SniffLedger([]byte(c.head), c.name)
		code := ""
		if e, ok := err.(*models.Error); ok {
			code = e.Code
		}
		if f != c.format || code != c.code {
			t.Errorf("%q %s: %q %q", c.head, c.name, f, code)
		}
	}
}

func TestLedgerImportCSVAllOrNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	admin := newAdmin(t, s, "admin@example.kr")
	good := "seller_brn,date,gross_sales,commission,category\n" +
		"120-81-47521,2025-09-01,100000,6000,food\n" +
		"1208147521,2025-09-02,\"1,200,000\",72000,food\n" +
		rules.ValidBRNFromSeed(5).String() + ",2025-09-01,5000,300,agri\n"
	res, li := runImport(t, s, admin, writeFile(t, "ledger.csv", good), models.FormatCSV)
	if res.ErrorCount != 0 || li.Status != models.ImportDone || li.RowsDone != 3 || li.RowsTotal != 3 {
		t.Fatalf("good file: %+v %+v", res, li)
	}
	if n := count(t, s, `SELECT count(*) FROM sales_ledger WHERE program_code = $1`, models.DemoProgram); n != 3 {
		t.Fatalf("%d rows", n)
	}

	// One bad cell among good rows: nothing changes, and the report names rows and columns.
	bad := "category,seller_brn,date,gross_sales,commission,extra\n" +
		"food,1208147521,2025-09-03,100,6,x\n" +
		"food,1208147522,2025-09-04,100,6,x\n" + // check digit, row 3
		"toys,1208147521,2025-13-01,-1,6,x\n" + // row 4: category, date, gross
		"food,1208147521,2025-09-03,100,6,x\n" // row 5 duplicates row 2
	res, li = runImport(t, s, admin, writeFile(t, "bad.csv", bad), models.FormatCSV)
	if li.Status != models.ImportFailed || res.ErrorCount != 5 || li.ErrorCount != 5 {
		t.Fatalf("bad file: %+v %+v", res, li)
	}
	var got []string
	for _, e := range li.Errors {
		got = append(got, fmt.Sprintf("%d:%s", e.Row, e.Column))
	}
	if want := "3:seller_brn 4:date 4:gross_sales 4:category 5:seller_brn"; strings.Join(got, " ") != want {
		t.Errorf("errors %q, want %q", strings.Join(got, " "), want)
	}
	if n := count(t, s, `SELECT count(*) FROM sales_ledger WHERE program_code = $1 AND day = '2025-09-03'`, models.DemoProgram); n != 0 {
		t.Fatal("a failed import wrote rows")
	}
	if n := count(t, s, `SELECT count(*) FROM sales_ledger`); n != 3 {
		t.Fatalf("the old ledger changed: %d rows", n)
	}

	// Missing columns are reported on row 1; an empty file is an error too.
	_, li = runImport(t, s, admin, writeFile(t, "cols.csv", "seller_brn,date,gross\n1208147521,2025-09-01,1\n"), models.FormatCSV)
	if li.Status != models.ImportFailed || len(li.Errors) != 3 || li.Errors[0].Row != 1 || li.Errors[0].Column != "gross_sales" {
		t.Errorf("missing columns: %+v", li.Errors)
	}
	_, li = runImport(t, s, admin, writeFile(t, "empty.csv", ""), models.FormatCSV)
	if li.Status != models.ImportFailed || li.ErrorCount != 1 {
		t.Errorf("empty: %+v", li)
	}

	// A second good import replaces the ledger as a whole.
	res, li = runImport(t, s, admin, writeFile(t, "next.csv", "seller_brn,date,gross_sales,commission,category\n1208147521,2025-09-05,1,0,food\n"), models.FormatCSV)
	if li.Status != models.ImportDone || count(t, s, `SELECT count(*) FROM sales_ledger`) != 1 {
		t.Fatalf("replace: %+v %+v", res, li)
	}

	// Only one import at a time per program; other agencies' admins see nothing.
	if _, err := s.NewLedgerImport(ctx, admin, models.DemoProgram, "a.csv", "csv", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewLedgerImport(ctx, admin, models.DemoProgram, "b.csv", "csv", 1, nil); !models.IsKind(err, models.ECONFLICT) {
		t.Errorf("second concurrent import: %v", err)
	}
	other, err := s.CreateUser(ctx, models.NewUser{Email: "mss@example.kr", Name: "중기부", Password: "correct horse", Roles: []string{models.RoleProgramAdmin}, Agency: "MSS"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LedgerImportFor(ctx, other, li.ID); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("other agency sees the import: %v", err)
	}
}

func TestLedgerImportStaleIsFailed(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	admin := newAdmin(t, s, "admin@example.kr")
	li, err := s.NewLedgerImport(ctx, admin, models.DemoProgram, "a.csv", "csv", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The process that took it died: no heartbeat for minutes.
	if _, err := s.Pool.Exec(ctx, `UPDATE ledger_imports SET status = 'running', heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, li.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.LedgerImportFor(ctx, admin, li.ID)
	if err != nil || got.Status != models.ImportFailed || got.Message == "" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := s.NewLedgerImport(ctx, admin, models.DemoProgram, "b.csv", "csv", 1, nil); err != nil {
		t.Fatalf("a new import after the crash: %v", err)
	}
}

func TestLedgerImportXLSX(t *testing.T) {
	s := newStore(t)
	admin := newAdmin(t, s, "admin@example.kr")
	path := filepath.Join(t.TempDir(), "ledger.xlsx")
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]any{{"seller_brn", "date", "gross_sales", "commission", "category"}}
	for i := range 500 {
		rows = append(rows, []any{rules.ValidBRNFromSeed(i).Formatted(), "2025-09-01", 10_000 + i, 600, "food"})
	}
	rows = append(rows, []any{"1208147521", 45901, 5000, 300, "agri"}) // a date typed as an Excel serial: 2025-09-01
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	res, li := runImport(t, s, admin, path, models.FormatXLSX)
	if li.Status != models.ImportDone || res.Rows != 501 {
		t.Fatalf("%+v %+v", res, li)
	}
	if n := count(t, s, `SELECT count(*) FROM sales_ledger WHERE brn = '1208147521' AND day = '2025-09-01' AND category = 'agri'`); n != 1 {
		t.Fatal("the serial date was not read as 2025-09-01")
	}
	// A file that only claims to be a workbook fails cleanly.
	_, li = runImport(t, s, admin, writeFile(t, "fake.xlsx", "PK\x03\x04 not really a zip"), models.FormatXLSX)
	if li.Status != models.ImportFailed || li.ErrorCount != 1 || li.Errors[0].Column != "file" {
		t.Fatalf("fake xlsx: %+v", li)
	}
}

func TestDemoLedgerTotalsAndOffer(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.SeedDemoLedger(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SeedDemoLedger(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	sellers := count(t, s, `SELECT count(DISTINCT brn) FROM sales_ledger WHERE program_code = $1`, models.DemoProgram)
	if sellers != models.DemoSellers {
		t.Fatalf("%d sellers", sellers)
	}
	p, err := s.ProgramByCode(ctx, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Pool.Query(ctx, `SELECT DISTINCT brn FROM sales_ledger WHERE program_code = $1`, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	var brns []string
	for rows.Next() {
		var b string
		_ = rows.Scan(&b)
		brns = append(brns, b)
	}
	rows.Close()
	var loss int64
	for _, b := range brns {
		brn, err := rules.ParseBRN(b)
		if err != nil {
			t.Fatal(err)
		}
		o, err := models.ComputeOffer(ctx, s.Pool, p, brn, "ko")
		if err != nil {
			t.Fatal(err)
		}
		loss += o.EstimatedLoss
	}
	if loss < 12_300_000_000 || loss > 12_900_000_000 {
		t.Errorf("total estimated loss %s, want ≈126억", rules.FormatWon(loss))
	}
	var promo int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(gross_sales) FROM sales_ledger WHERE program_code = $1 AND day BETWEEN '2025-10-21' AND '2025-11-20'`,
		models.DemoProgram).Scan(&promo); err != nil {
		t.Fatal(err)
	}
	if fee := rules.ApplyBP(promo, 600); fee < 780_000_000 || fee > 820_000_000 {
		t.Errorf("6%% of promotion sales %s, want ≈8억", rules.FormatWon(fee))
	}

	// The README's example business is a seller with a fast-track offer.
	o, err := s.OfferFor(ctx, models.DemoProgram, mustBRN(t, "120-81-47521"), "ko")
	if err != nil {
		t.Fatal(err)
	}
	if !o.FastTrack || o.Compensation <= 0 || o.Compensation%10 != 0 || o.EstimatedLoss != o.ExpectedSales-o.ActualSales || len(o.BaselineDaily) != 14 {
		t.Errorf("demo offer %+v", o)
	}
	if !strings.Contains(strings.Join(o.Explanation, "\n"), "추정 손실") {
		t.Errorf("explanation %q", o.Explanation)
	}
	if _, err := s.OfferFor(ctx, models.DemoProgram, rules.ValidBRNFromSeed(3), "ko"); !models.IsKind(err, models.ENOTFOUND) {
		t.Errorf("not a seller: %v", err)
	}
}

func mustBRN(t *testing.T, s string) rules.BRN {
	t.Helper()
	b, err := rules.ParseBRN(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
