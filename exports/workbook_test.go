package exports

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// seq turns test rows into the row stream the exports take.
func seq[T any](rows ...T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func testMeta() Meta {
	return Meta{
		Title:       "시험 내보내기",
		Program:     Program{Code: "KPOST-2025-NIRS", Name: "우체국쇼핑 국가정보자원관리원 화재 피해 지원"},
		GeneratedAt: time.Date(2025, 10, 21, 0, 30, 0, 0, time.UTC), // 09:30 KST
		GeneratedBy: "finance@demo.relief",
		RuleVersion: "rules-2025.10.1",
	}
}

func newWorkbook(t *testing.T) *Workbook {
	t.Helper()
	wb, err := NewWorkbook(testMeta())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wb.Close() })
	return wb
}

// file is a saved workbook opened twice: as excelize sees it and as a zip.
type file struct {
	raw []byte
	x   *excelize.File
	zip *zip.Reader
}

func saveAndOpen(t *testing.T, wb *Workbook) *file {
	t.Helper()
	var buf bytes.Buffer
	n, sum, err := wb.Save(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Save reported %d bytes, wrote %d", n, buf.Len())
	}
	if want := sha256.Sum256(buf.Bytes()); sum != hex.EncodeToString(want[:]) {
		t.Fatalf("Save reported SHA-256 %s, bytes hash to %x", sum, want)
	}
	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return &file{raw: buf.Bytes(), x: x, zip: z}
}

func (f *file) part(t *testing.T, name string) string {
	t.Helper()
	r, err := f.zip.Open(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *file) rows(t *testing.T, sheet string) [][]string {
	t.Helper()
	rows, err := f.x.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (f *file) raw1(t *testing.T, sheet, cell string) string {
	t.Helper()
	v, err := f.x.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *file) cellType(t *testing.T, sheet, cell string) excelize.CellType {
	t.Helper()
	ct, err := f.x.GetCellType(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func (f *file) style(t *testing.T, sheet, cell string) *excelize.Style {
	t.Helper()
	id, err := f.x.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.x.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// info returns the 정보 sheet as label → displayed value.
func (f *file) info(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, r := range f.rows(t, InfoSheet) {
		if len(r) == 2 {
			m[r[0]] = r[1]
		}
	}
	return m
}

// checkTable checks the layout rules every streamed sheet follows: frozen
// header row, autofilter over header and data exactly, headers as given.
func (f *file) checkTable(t *testing.T, sheet string, sheetIndex, headerRow int, headers []string, dataRows int) {
	t.Helper()
	rows := f.rows(t, sheet)
	if len(rows) < headerRow || !slices.Equal(rows[headerRow-1], headers) {
		t.Fatalf("%s: header row %d = %q, want %q", sheet, headerRow, rows[headerRow-1], headers)
	}
	panes, err := f.x.GetPanes(sheet)
	if err != nil {
		t.Fatal(err)
	}
	if !panes.Freeze || panes.YSplit != headerRow || panes.TopLeftCell != "A"+strconv.Itoa(headerRow+1) {
		t.Errorf("%s: panes %+v, want frozen above row %d", sheet, panes, headerRow+1)
	}
	lastCol, _ := excelize.ColumnNumberToName(len(headers))
	ref := "$A$" + strconv.Itoa(headerRow) + ":$" + lastCol + "$" + strconv.Itoa(headerRow+dataRows)
	xml := f.part(t, "xl/worksheets/sheet"+strconv.Itoa(sheetIndex+1)+".xml")
	if !strings.Contains(xml, `<autoFilter ref="`+ref+`"`) {
		t.Errorf("%s: no autoFilter over %s in worksheet XML", sheet, ref)
	}
	found := false
	for _, d := range f.x.GetDefinedName() {
		if d.Name == "_xlnm._FilterDatabase" && strings.HasSuffix(d.RefersTo, "!"+ref) && strings.Contains(d.RefersTo, sheet) {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: no _FilterDatabase name for %s", sheet, ref)
	}
}

var allKinds = []Column{
	{"번호", Text, 0}, {"계좌번호", Account, 0}, {"금액", Amount, 0},
	{"수량", Integer, 0}, {"일자", Date, 0}, {"일시", DateTime, 0},
}

func TestSheetTypesFormatsAndControlTotal(t *testing.T) {
	wb := newWorkbook(t)
	s, err := wb.NewSheet(SheetSpec{Name: "시험", Columns: allKinds})
	if err != nil {
		t.Fatal(err)
	}
	outage := time.Date(2025, 9, 26, 11, 15, 0, 0, time.UTC) // 20:15 KST
	lateUTC := time.Date(2025, 10, 8, 16, 0, 0, 0, time.UTC) // already 10-09 in Korea
	rows := [][]any{
		{"A-1", "0012345678901", int64(1_500_000), int64(3), outage, outage},
		{"A-2", "0987654321", int64(250_000), int64(10), lateUTC, lateUTC},
		{"A-3", nil, int64(7), int64(0), nil, time.Time{}},
	}
	for _, r := range rows {
		if err := s.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)

	if got := f.x.GetSheetList(); !slices.Equal(got, []string{"시험", InfoSheet}) {
		t.Fatalf("sheets %q", got)
	}
	f.checkTable(t, "시험", 0, 1, []string{"번호", "계좌번호", "금액", "수량", "일자", "일시"}, 3)

	got := f.rows(t, "시험")
	want := [][]string{
		{"A-1", "0012345678901", "1,500,000", "3", "2025-09-26", "2025-09-26 20:15:00"},
		{"A-2", "0987654321", "250,000", "10", "2025-10-09", "2025-10-09 01:00:00"},
		{"A-3", "", "7", "0"},
		nil,
		{"합계", "3건", "1,750,007"},
	}
	for i, w := range want {
		if !slices.Equal(got[i+1], w) {
			t.Errorf("row %d = %q, want %q", i+2, got[i+1], w)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d rows, want header + 3 + blank + total", len(got))
	}

	// Account numbers are strings that keep their leading zeros; money and
	// counts are numbers; dates are real serial dates.
	if ct := f.cellType(t, "시험", "B2"); ct != excelize.CellTypeInlineString {
		t.Errorf("account cell type %v, want inline string", ct)
	}
	for _, c := range []string{"C2", "D2", "E2", "F2", "B6", "C6"} {
		if ct := f.cellType(t, "시험", c); ct != excelize.CellTypeUnset && ct != excelize.CellTypeNumber {
			t.Errorf("%s cell type %v, want number", c, ct)
		}
	}
	for cell, raw := range map[string]string{"C2": "1500000", "C6": "1750007", "B6": "3", "E2": "45926", "E3": "45939"} {
		if v := f.raw1(t, "시험", cell); v != raw {
			t.Errorf("%s raw = %q, want %q", cell, v, raw)
		}
	}
	if st := f.style(t, "시험", "C2"); st.NumFmt != 3 {
		t.Errorf("amount NumFmt %d, want 3 (#,##0)", st.NumFmt)
	}
	if st := f.style(t, "시험", "B2"); st.NumFmt != 49 {
		t.Errorf("account NumFmt %d, want 49 (@)", st.NumFmt)
	}
	if st := f.style(t, "시험", "E2"); st.CustomNumFmt == nil || *st.CustomNumFmt != "yyyy-mm-dd" {
		t.Errorf("date format %v, want yyyy-mm-dd", st.CustomNumFmt)
	}
	if st := f.style(t, "시험", "C6"); st.NumFmt != 3 || st.Font == nil || !st.Font.Bold {
		t.Errorf("total style %+v, want bold #,##0", st)
	}

	info := f.info(t)
	for k, v := range map[string]string{
		"제목": "시험 내보내기", "사업코드": "KPOST-2025-NIRS", "사업명": testMeta().Program.Name,
		"생성일시 (KST)": "2025-10-21 09:30:00", "생성자": "finance@demo.relief",
		"규칙 버전": "rules-2025.10.1", "시험 행 수": "3",
	} {
		if info[k] != v {
			t.Errorf("정보 %s = %q, want %q", k, info[k], v)
		}
	}
	props, err := f.x.GetDocProps()
	if err != nil || props.Creator != "finance@demo.relief" || props.Title != "시험 내보내기" {
		t.Errorf("doc props %+v, %v", props, err)
	}
}

// The trigger list of OWASP's CSV-injection guidance plus the full-width
// forms a Korean IME types.
var injections = []string{
	"=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1",
	"＝1+1", "＋1", "－1", "＠SUM(1)",
	`=cmd|' /C calc'!A0`, `=HYPERLINK("http://evil.example","보상금 확인")`, "-2+3+cmd|' /C calc'!A0",
}

func TestNeutralize(t *testing.T) {
	for _, s := range injections {
		if got := Neutralize(s); got != "'"+s {
			t.Errorf("Neutralize(%q) = %q", s, got)
		}
		if twice := Neutralize(Neutralize(s)); twice != "'"+s {
			t.Errorf("Neutralize not idempotent on %q: %q", s, twice)
		}
	}
	for _, s := range []string{"", "정상 상호", "a=b", "'=1", "1-2", " 공백", "０"} {
		if got := Neutralize(s); got != s {
			t.Errorf("Neutralize(%q) = %q, want unchanged", s, got)
		}
	}
}

var formulaElement = regexp.MustCompile(`<(\w+:)?f[ >/]`)

// TestFormulaInjection writes every trigger through the writer (generic
// sheet, claims register, summary labels, metadata), then checks the archive
// itself: no worksheet holds a formula element, and every value reads back
// as the quoted string.
func TestFormulaInjection(t *testing.T) {
	meta := testMeta()
	meta.GeneratedBy = "=HYPERLINK(\"http://evil.example\")"
	wb, err := NewWorkbook(meta)
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()

	s, err := wb.NewSheet(SheetSpec{Name: "주입", Columns: []Column{{"텍스트", Text, 0}, {"계좌", Account, 0}, {"금액", Amount, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range injections {
		if err := s.WriteRow([]any{v, v, int64(1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var claims []ClaimRow
	for i, v := range injections {
		claims = append(claims, ClaimRow{ReceiptNo: v, BRN: v, BusinessName: v, Representative: v,
			Category: v, Region: v, Status: v, ClaimedLoss: int64(i)})
	}
	if err := WriteClaims(wb, seq(claims...)); err != nil {
		t.Fatal(err)
	}
	var tallies []Tally
	for _, v := range injections {
		tallies = append(tallies, Tally{Label: v, Count: 1, Amount: 10})
	}
	if err := WriteSummary(wb, Summary{ByRegion: tallies}); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)

	sheets := 0
	for _, zf := range f.zip.File {
		if !strings.HasPrefix(zf.Name, "xl/worksheets/") || !strings.HasSuffix(zf.Name, ".xml") {
			continue
		}
		sheets++
		if loc := formulaElement.FindStringIndex(f.part(t, zf.Name)); loc != nil {
			t.Errorf("%s contains a formula element at %d", zf.Name, loc[0])
		}
	}
	if sheets != 4 {
		t.Fatalf("checked %d worksheets, want 4", sheets)
	}

	rows := f.rows(t, "주입")
	for i, v := range injections {
		if got := rows[i+1]; got[0] != "'"+v || got[1] != "'"+v {
			t.Errorf("row %d read back %q, want %q", i+2, got[:2], "'"+v)
		}
		cell := "A" + strconv.Itoa(i+2)
		if ct := f.cellType(t, "주입", cell); ct != excelize.CellTypeInlineString {
			t.Errorf("%s type %v, want inline string", cell, ct)
		}
		if formula, _ := f.x.GetCellFormula("주입", cell); formula != "" {
			t.Errorf("%s has formula %q", cell, formula)
		}
	}
	reg := f.rows(t, "피해접수대장")
	for i, v := range injections {
		for col := range 7 {
			if got := reg[i+1][col]; got != "'"+v {
				t.Errorf("register row %d col %d = %q, want %q", i+2, col+1, got, "'"+v)
			}
		}
	}
	sum := f.rows(t, SummarySheet)
	var labels []string
	for _, r := range sum {
		if len(r) > 0 && strings.HasPrefix(r[0], "'") {
			labels = append(labels, r[0])
		}
	}
	if len(labels) != len(injections) {
		t.Errorf("summary has %d neutralised labels, want %d: %q", len(labels), len(injections), labels)
	}
	if got := f.info(t)["생성자"]; got != "'"+meta.GeneratedBy {
		t.Errorf("정보 생성자 = %q", got)
	}
}

func TestWriterRefusesBadInput(t *testing.T) {
	if _, err := NewWorkbook(Meta{Title: "x"}); err == nil {
		t.Error("NewWorkbook accepted meta without provenance")
	}
	cases := map[string]any{
		"float amount":  1.5,
		"string amount": "1000",
		"int amount":    1000, // only int64: money has one type
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			wb := newWorkbook(t)
			s, err := wb.NewSheet(SheetSpec{Name: "시험", Columns: allKinds})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WriteRow([]any{"A", "1", v, int64(1), nil, nil}); err == nil {
				t.Fatal("WriteRow accepted", v)
			}
			if err := s.Close(); err == nil {
				t.Error("Close succeeded after a failed row")
			}
			if _, _, err := wb.Save(io.Discard); err == nil {
				t.Error("Save succeeded after a failed row")
			}
		})
	}

	wb := newWorkbook(t)
	if _, err := wb.NewSheet(SheetSpec{Name: InfoSheet, Columns: allKinds}); err == nil {
		t.Error("reserved sheet name accepted")
	}
	if _, err := wb.NewSheet(SheetSpec{Name: "금액먼저", Columns: []Column{{"구분", Text, 0}, {"금액", Amount, 0}}}); err == nil {
		t.Error("Amount in column B accepted with a total row")
	}
	s, err := wb.NewSheet(SheetSpec{Name: "시험", Columns: allKinds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wb.NewSheet(SheetSpec{Name: "둘째", Columns: allKinds}); err == nil {
		t.Error("second sheet opened while the first is open")
	}
	if _, _, err := wb.Save(io.Discard); err == nil {
		t.Error("Save succeeded with an open sheet")
	}
	if err := s.WriteRow([]any{"A"}); err == nil {
		t.Error("short row accepted")
	}
}

func TestDuplicateSheetAndDoubleSave(t *testing.T) {
	wb := newWorkbook(t)
	if err := WriteClaims(wb, seq[ClaimRow]()); err != nil {
		t.Fatal(err)
	}
	if err := WriteClaims(wb, seq[ClaimRow]()); err == nil || !strings.Contains(err.Error(), "duplicate sheet") {
		t.Errorf("second register: err = %v", err)
	}
	if _, _, err := wb.Save(io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, _, err := wb.Save(io.Discard); err == nil {
		t.Error("saved twice")
	}
}

func TestEmptyWorkbookHasOnlyInfo(t *testing.T) {
	f := saveAndOpen(t, newWorkbook(t))
	if got := f.x.GetSheetList(); !slices.Equal(got, []string{InfoSheet}) {
		t.Errorf("sheets %q", got)
	}
}
