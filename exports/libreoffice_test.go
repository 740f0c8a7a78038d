package exports

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// soffice finds LibreOffice: RELIEF_SOFFICE, else soffice or libreoffice on PATH.
func soffice(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RELIEF_SOFFICE"); p != "" {
		return p
	}
	for _, name := range []string{"soffice", "libreoffice"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no LibreOffice found: install libreoffice-calc-nogui (.ci/run does) or set RELIEF_SOFFICE; -short leaves this test out")
	return ""
}

// libreofficeCSV saves wb, has LibreOffice convert its first sheet to CSV
// headless (comma, double quote, UTF-8, cells as shown) and returns the rows.
func libreofficeCSV(t *testing.T, wb *Workbook) [][]string {
	t.Helper()
	bin := soffice(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "book.xlsx")
	out, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wb.Save(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--norestore", "--nologo",
		"-env:UserInstallation=file://"+filepath.Join(dir, "profile"),
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76",
		"--outdir", dir, in)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("LibreOffice conversion: %v\n%s", err, b)
	}
	f, err := os.Open(filepath.Join(dir, "book.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// TestLibreOfficeReadsTheClaimsRegister: the BRN shown formatted, a formula
// in user text left as text, the Korean status label, the amount.
func TestLibreOfficeReadsTheClaimsRegister(t *testing.T) {
	if testing.Short() {
		t.Skip("starts LibreOffice")
	}
	wb := newWorkbook(t)
	if err := WriteClaims(wb, seq(ClaimRow{ReceiptNo: "R-1", BRN: "0208147521", BusinessName: "=1+1",
		Status: "paid", ClaimedLoss: 3_500_000, ReceivedAt: time.Date(2025, 10, 1, 0, 0, 0, 0, KST)})); err != nil {
		t.Fatal(err)
	}
	recs := libreofficeCSV(t, wb)
	if got, want := strings.Join(recs[0], "|"), strings.Join(headers(claimColumns), "|"); got != want {
		t.Fatalf("headers as LibreOffice reads them:\n%s\nwant\n%s", got, want)
	}
	row := strings.Join(recs[1], "|")
	for _, want := range []string{"020-81-47521", "=1+1", "지급 완료", "3,500,000"} {
		if !strings.Contains(row, want) {
			t.Errorf("LibreOffice reads the claim row as %q: %q missing", row, want)
		}
	}
	if slices.Contains(recs[1], "2") {
		t.Errorf("=1+1 was evaluated: %q", recs[1])
	}
}

// TestLibreOfficeReadsThePayoutSheet hands a payout workbook to a second,
// independent reader: LibreOffice converts it to CSV headless, and the sheet
// must come back with its Korean headers, account numbers as text (leading
// zeros kept), user text that looks like a formula left as text, and the
// control row's count and total.
func TestLibreOfficeReadsThePayoutSheet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts LibreOffice")
	}
	rows := []PayoutRow{
		{"PB-001", "R-1", "1208147521", "=1+1", "004", "012345678901", "김대전", 1_290_000, "지급 완료", "", "PB-001-0001", time.Date(2025, 11, 3, 5, 0, 0, 0, time.UTC)},
		{"PB-001", "R-2", "2208147529", "강원 수산", "090", "3333-01-2345678", "@SUM(A1)", 762_340, "실패", "계좌 오류", "PB-001-0002", time.Time{}},
	}
	wb := newWorkbook(t)
	if err := WritePayouts(wb, FullAccounts, seq(rows...)); err != nil {
		t.Fatal(err)
	}
	recs := libreofficeCSV(t, wb)
	if len(recs) < 5 {
		t.Fatalf("LibreOffice read %d rows: %q", len(recs), recs)
	}
	if got, want := strings.Join(recs[0], "|"), strings.Join(headers(payoutColumns), "|"); got != want {
		t.Fatalf("headers as LibreOffice reads them:\n%s\nwant\n%s", got, want)
	}
	if recs[1][6] != "012345678901" {
		t.Errorf("account number read as %q: not kept as text", recs[1][6])
	}
	if !strings.Contains(recs[1][3], "=1+1") || recs[1][3] == "2" {
		t.Errorf("business name =1+1 read as %q: evaluated as a formula", recs[1][3])
	}
	if !strings.Contains(recs[2][7], "@SUM(A1)") {
		t.Errorf("holder @SUM(A1) read as %q", recs[2][7])
	}
	// The control row: after the two data rows and one blank row.
	total := recs[4]
	if total[0] != "합계" || digits(total[1]) != "2" {
		t.Fatalf("control row %q", total)
	}
	if amount := strings.ReplaceAll(total[8], ",", ""); amount != "2052340" {
		t.Errorf("control total read as %q, want 2,052,340", total[8])
	}
	if amount := strings.ReplaceAll(recs[1][8], ",", ""); amount != "1290000" {
		t.Errorf("first amount read as %q", recs[1][8])
	}
}
