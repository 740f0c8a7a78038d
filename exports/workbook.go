package exports

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// KST is Korea Standard Time. Korea has kept UTC+9 without daylight saving
// since 1988, so a fixed zone is exact and does not depend on host tzdata.
var KST = time.FixedZone("KST", 9*60*60)

// InfoSheet is the name of the metadata sheet Save appends to every workbook.
const InfoSheet = "정보"

// maxSheetRow is Excel's row limit; a sheet that would exceed it fails
// loudly instead of producing a file Excel truncates.
const maxSheetRow = 1_048_576

// Kind says how a column's values are typed, formatted and totalled.
type Kind uint8

const (
	Text     Kind = iota // free text: neutralised, string cell
	Amount               // int64 won: number cell, #,##0, summed in the control row
	Integer              // int64 count, quantity, unit price or rate: #,##0, not summed
	Date                 // time.Time shown as its KST calendar date, yyyy-mm-dd
	DateTime             // time.Time shown in KST, yyyy-mm-dd hh:mm:ss
	Account              // identifier (account, BRN, bank code): neutralised, string cell, "@" format, leading zeros kept
)

func (k Kind) String() string {
	switch k {
	case Text:
		return "Text"
	case Amount:
		return "Amount"
	case Integer:
		return "Integer"
	case Date:
		return "Date"
	case DateTime:
		return "DateTime"
	case Account:
		return "Account"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Column defines one column of a sheet.
type Column struct {
	Header string  // Korean header text
	Kind   Kind    // value type and format
	Width  float64 // in Excel character units; 0 picks a default for the kind
}

// Program identifies the relief program an export belongs to.
type Program struct {
	Code string // e.g. KPOST-2025-NIRS
	Name string
}

// Meta describes who produced an export, from what and when; it fills the
// "정보" sheet and the document properties.
type Meta struct {
	Title       string
	Program     Program
	GeneratedAt time.Time
	GeneratedBy string
	RuleVersion string
}

// SheetSpec defines a streamed sheet.
type SheetSpec struct {
	Name    string
	Columns []Column
	// Preamble rows go above the column headers (a bank file's control
	// block). Cells may be string, int64 (#,##0) or time.Time (date); strings
	// are neutralised like any other text.
	Preamble [][]any
	// NoTotalRow leaves out the "합계" row, for files a machine reads to the
	// last row (bank uploads would take it for a transfer); such files carry
	// their control totals in the Preamble instead.
	NoTotalRow bool
}

// Workbook is one export file under construction. It is not safe for
// concurrent use. Close it when done to remove excelize's temporary files.
type Workbook struct {
	f      *excelize.File
	meta   Meta
	st     styles
	sheets []sheetRecord // data sheets in order, for the 정보 sheet
	info   []infoLine    // export-specific facts added with AddInfo
	open   *Sheet
	err    error // first failure; a failed workbook cannot be saved
	saved  bool
}

type sheetRecord struct {
	name string
	rows int
}

type infoLine struct {
	label string
	value any
}

type styles struct {
	header, text, amount, integer, date, dateTime int
	totalLabel, totalCount, totalAmount           int
	title, label                                  int
}

// NewWorkbook starts an export. Every Meta field is required: a file without
// provenance is no use to an auditor.
func NewWorkbook(meta Meta) (*Workbook, error) {
	switch {
	case meta.Title == "", meta.Program.Code == "", meta.Program.Name == "",
		meta.GeneratedBy == "", meta.RuleVersion == "", meta.GeneratedAt.IsZero():
		return nil, errors.New("exports: Meta needs Title, Program code and name, GeneratedAt, GeneratedBy and RuleVersion")
	}
	f := excelize.NewFile()
	wb := &Workbook{f: f, meta: meta}
	if err := wb.init(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return wb, nil
}

func (wb *Workbook) init() error {
	// Korean Windows ships 맑은 고딕; Calibri has no Hangul and falls back unevenly.
	if err := wb.f.SetDefaultFont("맑은 고딕"); err != nil {
		return err
	}
	if err := wb.f.SetDocProps(&excelize.DocProperties{
		Title:       Neutralize(wb.meta.Title),
		Subject:     Neutralize(wb.meta.Program.Code + " " + wb.meta.Program.Name),
		Creator:     Neutralize(wb.meta.GeneratedBy),
		Created:     wb.meta.GeneratedAt.UTC().Format(time.RFC3339),
		Modified:    wb.meta.GeneratedAt.UTC().Format(time.RFC3339),
		Description: "rule version " + Neutralize(wb.meta.RuleVersion),
		Language:    "ko-KR",
	}); err != nil {
		return err
	}
	dateFmt, dateTimeFmt, countFmt := "yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss", `#,##0"건"`
	bold := &excelize.Font{Bold: true}
	topBorder := []excelize.Border{{Type: "top", Color: "000000", Style: 1}}
	defs := []struct {
		id *int
		s  excelize.Style
	}{
		{&wb.st.header, excelize.Style{
			Font:      bold,
			Fill:      excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"D9E1F2"}},
			Border:    []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}},
			Alignment: &excelize.Alignment{Horizontal: "center", Vertical: "center", WrapText: true},
		}},
		{&wb.st.text, excelize.Style{NumFmt: 49}},  // "@": Excel keeps edits as text too
		{&wb.st.amount, excelize.Style{NumFmt: 3}}, // #,##0
		{&wb.st.integer, excelize.Style{NumFmt: 3}},
		{&wb.st.date, excelize.Style{CustomNumFmt: &dateFmt}},
		{&wb.st.dateTime, excelize.Style{CustomNumFmt: &dateTimeFmt}},
		{&wb.st.totalLabel, excelize.Style{Font: bold, Border: topBorder}},
		{&wb.st.totalCount, excelize.Style{Font: bold, Border: topBorder, CustomNumFmt: &countFmt}},
		{&wb.st.totalAmount, excelize.Style{Font: bold, Border: topBorder, NumFmt: 3}},
		{&wb.st.title, excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}}},
		{&wb.st.label, excelize.Style{Font: bold}},
	}
	for _, d := range defs {
		id, err := wb.f.NewStyle(&d.s)
		if err != nil {
			return err
		}
		*d.id = id
	}
	return nil
}

// AddInfo adds a line to the "정보" sheet (e.g. a tranche budget). The value
// may be a string, int64 (shown #,##0) or time.Time (shown in KST).
func (wb *Workbook) AddInfo(label string, value any) {
	wb.info = append(wb.info, infoLine{label, value})
}

// NewSheet starts a streamed sheet. Only one sheet may be open at a time;
// Close it before starting the next.
func (wb *Workbook) NewSheet(spec SheetSpec) (*Sheet, error) {
	if err := wb.usable(); err != nil {
		return nil, err
	}
	if err := wb.checkSpec(spec); err != nil {
		return nil, err
	}
	if err := wb.addSheet(spec.Name); err != nil {
		return nil, err
	}
	sw, err := wb.f.NewStreamWriter(spec.Name)
	if err != nil {
		return nil, wb.fail(err)
	}
	s := &Sheet{
		wb:     wb,
		sw:     sw,
		spec:   spec,
		header: len(spec.Preamble) + 1,
		kinds:  make([]Kind, len(spec.Columns)),
		sums:   make([]int64, len(spec.Columns)),
		cells:  make([]any, len(spec.Columns)),
	}
	s.next = s.header + 1
	for i, c := range spec.Columns {
		s.kinds[i] = c.Kind
	}
	if err := s.start(); err != nil {
		return nil, wb.fail(err)
	}
	wb.open = s
	return s, nil
}

func (wb *Workbook) checkSpec(spec SheetSpec) error {
	if spec.Name == InfoSheet {
		return fmt.Errorf("exports: sheet name %q is reserved for metadata", InfoSheet)
	}
	if len(spec.Columns) == 0 {
		return fmt.Errorf("exports: sheet %q has no columns", spec.Name)
	}
	for _, c := range spec.Columns {
		if c.Kind > Account {
			return fmt.Errorf("exports: sheet %q column %q: unknown kind %d", spec.Name, c.Header, c.Kind)
		}
	}
	// The control row puts "합계" in column A and the row count in column B,
	// so neither may be an Amount column whose sum belongs there.
	if !spec.NoTotalRow && (len(spec.Columns) < 2 || spec.Columns[0].Kind == Amount || spec.Columns[1].Kind == Amount) {
		return fmt.Errorf("exports: sheet %q: a control-total row needs two leading non-Amount columns", spec.Name)
	}
	return nil
}

// addSheet creates the sheet, reusing excelize's default "Sheet1" for the
// first one so the file has no empty stray sheet.
func (wb *Workbook) addSheet(name string) error {
	for _, s := range wb.sheets {
		if strings.EqualFold(s.name, name) { // Excel compares sheet names case-insensitively
			return fmt.Errorf("exports: duplicate sheet name %q", name)
		}
	}
	var err error
	switch {
	case len(wb.sheets) > 0:
		_, err = wb.f.NewSheet(name)
	case name != "Sheet1":
		err = wb.f.SetSheetName("Sheet1", name)
	}
	if err != nil {
		return fmt.Errorf("exports: sheet %q: %w", name, err)
	}
	wb.sheets = append(wb.sheets, sheetRecord{name: name})
	return nil
}

func (wb *Workbook) usable() error {
	switch {
	case wb.err != nil:
		return wb.err
	case wb.saved:
		return errors.New("exports: workbook already saved")
	case wb.open != nil:
		return fmt.Errorf("exports: sheet %q is still open", wb.open.spec.Name)
	}
	return nil
}

// fail records the first error; after it the workbook refuses to save, so a
// half-written export can never reach a bank.
func (wb *Workbook) fail(err error) error {
	if wb.err == nil {
		wb.err = err
	}
	return err
}

// Save appends the "정보" sheet and writes the .xlsx to w, returning the byte
// count and the hex SHA-256 of exactly those bytes, for the audit log. The
// hash cannot be stored inside the file it covers, so it is returned only.
func (wb *Workbook) Save(w io.Writer) (n int64, sha256hex string, err error) {
	if err := wb.usable(); err != nil {
		return 0, "", err
	}
	if err := wb.writeInfo(); err != nil {
		return 0, "", wb.fail(err)
	}
	wb.f.SetActiveSheet(0)
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	// excelize's WriteTo assembles the whole archive in a bytes.Buffer first;
	// handing it a zip writer on the destination streams the archive instead,
	// so memory stays flat however big the sheets are. (Its ZIP64 header fix-up
	// then sees an empty buffer; it only matters for sheets over 4 GiB, which
	// Excel's row limit keeps us far from.)
	wb.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(cw) })
	if _, err := wb.f.WriteToBuffer(); err != nil {
		return cw.n, "", wb.fail(err)
	}
	wb.saved = true
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

// Close releases excelize's temporary files. It is safe to call after Save
// or after a failure.
func (wb *Workbook) Close() error { return wb.f.Close() }

func (wb *Workbook) writeInfo() error {
	const sheet = InfoSheet
	if len(wb.sheets) == 0 {
		if err := wb.f.SetSheetName("Sheet1", sheet); err != nil {
			return err
		}
	} else if _, err := wb.f.NewSheet(sheet); err != nil {
		return err
	}
	m := wb.meta
	lines := []infoLine{
		{"제목", m.Title},
		{"사업코드", m.Program.Code},
		{"사업명", m.Program.Name},
		{"생성일시 (KST)", m.GeneratedAt},
		{"생성자", m.GeneratedBy},
		{"규칙 버전", m.RuleVersion},
	}
	for _, s := range wb.sheets {
		lines = append(lines, infoLine{s.name + " 행 수", int64(s.rows)})
	}
	lines = append(lines, wb.info...)
	lines = append(lines, infoLine{"무결성", "파일 전체의 SHA-256은 내보내기 시 감사 로그에 기록됩니다."})
	for i, l := range lines {
		row := strconv.Itoa(i + 1)
		if err := wb.f.SetCellStr(sheet, "A"+row, Neutralize(l.label)); err != nil {
			return err
		}
		if err := wb.f.SetCellStyle(sheet, "A"+row, "A"+row, wb.st.label); err != nil {
			return err
		}
		if err := wb.setInfoValue(sheet, "B"+row, l.value); err != nil {
			return fmt.Errorf("exports: info %q: %w", l.label, err)
		}
	}
	if err := wb.f.SetColWidth(sheet, "A", "A", 24); err != nil {
		return err
	}
	return wb.f.SetColWidth(sheet, "B", "B", 60)
}

func (wb *Workbook) setInfoValue(sheet, cell string, v any) error {
	switch v := v.(type) {
	case string:
		return wb.f.SetCellStr(sheet, cell, Neutralize(v))
	case int64:
		if err := wb.f.SetCellInt(sheet, cell, v); err != nil {
			return err
		}
		return wb.f.SetCellStyle(sheet, cell, cell, wb.st.integer)
	case time.Time:
		if err := wb.f.SetCellValue(sheet, cell, v.In(KST)); err != nil {
			return err
		}
		return wb.f.SetCellStyle(sheet, cell, cell, wb.st.dateTime)
	}
	return fmt.Errorf("unsupported value type %T", v)
}

// Sheet is a streamed sheet being written row by row.
type Sheet struct {
	wb     *Workbook
	sw     *excelize.StreamWriter
	spec   SheetSpec
	kinds  []Kind
	header int     // row number of the column headers
	next   int     // row number the next data row goes to
	rows   int     // data rows written
	sums   []int64 // per column; only Amount columns accumulate
	cells  []any   // reused for every row to keep the hot path allocation-light
	ref    []byte  // reused buffer for the row's first cell reference
	err    error
	closed bool
}

func (s *Sheet) start() error {
	st := s.wb.st
	for i, c := range s.spec.Columns {
		col := i + 1
		// Column styles give every data cell its format without wrapping each
		// value in an excelize.Cell, which would allocate per cell. Free text
		// gets none: its cells are strings anyway, and a style attribute on
		// every text cell costs ~5% of the write in XML and compression.
		// Identifiers keep "@" so that an edit in Excel stays text too.
		if c.Kind != Text {
			if err := s.sw.SetColStyle(col, col, st.forKind(c.Kind)); err != nil {
				return err
			}
		}
		width := c.Width
		if width == 0 {
			width = defaultWidth(c.Kind)
		}
		if err := s.sw.SetColWidth(col, col, width); err != nil {
			return err
		}
	}
	top := "A" + strconv.Itoa(s.header+1)
	if err := s.sw.SetPanes(&excelize.Panes{
		Freeze: true, YSplit: s.header, TopLeftCell: top, ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: top, ActiveCell: top, Pane: "bottomLeft"}},
	}); err != nil {
		return err
	}
	for i, row := range s.spec.Preamble {
		cells := make([]any, len(row))
		for j, v := range row {
			c, err := st.preambleCell(v)
			if err != nil {
				return fmt.Errorf("exports: sheet %q preamble row %d: %w", s.spec.Name, i+1, err)
			}
			cells[j] = c
		}
		if err := s.sw.SetRow("A"+strconv.Itoa(i+1), cells); err != nil {
			return err
		}
	}
	header := make([]any, len(s.spec.Columns))
	for i, c := range s.spec.Columns {
		header[i] = excelize.Cell{StyleID: st.header, Value: c.Header}
	}
	return s.sw.SetRow("A"+strconv.Itoa(s.header), header, excelize.RowOpts{Height: 30})
}

func (st styles) forKind(k Kind) int {
	switch k {
	case Amount:
		return st.amount
	case Integer:
		return st.integer
	case Date:
		return st.date
	case DateTime:
		return st.dateTime
	}
	return st.text
}

func (st styles) preambleCell(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return excelize.Cell{StyleID: st.label, Value: Neutralize(v)}, nil
	case int64:
		return excelize.Cell{StyleID: st.amount, Value: v}, nil
	case time.Time:
		return excelize.Cell{StyleID: st.date, Value: v.In(KST)}, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func defaultWidth(k Kind) float64 {
	switch k {
	case Amount:
		return 15
	case Integer:
		return 10
	case Date:
		return 12
	case DateTime:
		return 20
	case Account:
		return 18
	}
	return 16
}

// WriteRow writes one data row. values must match the columns: string (or
// nil) for Text and Account, int64 for Amount and Integer, time.Time (zero or
// nil for an empty cell) for Date and DateTime. The slice is not retained,
// so callers should reuse it across rows. Any error poisons the sheet and the
// workbook: a partial export must not be saved.
func (s *Sheet) WriteRow(values []any) error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return fmt.Errorf("exports: sheet %q is closed", s.spec.Name)
	}
	if len(values) != len(s.kinds) {
		return s.fail(fmt.Errorf("exports: sheet %q row %d: %d values for %d columns", s.spec.Name, s.next, len(values), len(s.kinds)))
	}
	// Leave room for the blank separator and the control-total row.
	if s.next > maxSheetRow-2 {
		return s.fail(fmt.Errorf("exports: sheet %q exceeds Excel's %d rows", s.spec.Name, maxSheetRow))
	}
	for i, v := range values {
		c, err := s.cell(i, v)
		if err != nil {
			return s.fail(fmt.Errorf("exports: sheet %q row %d column %q: %w", s.spec.Name, s.next, s.spec.Columns[i].Header, err))
		}
		s.cells[i] = c
	}
	s.ref = strconv.AppendInt(append(s.ref[:0], 'A'), int64(s.next), 10)
	if err := s.sw.SetRow(string(s.ref), s.cells); err != nil {
		return s.fail(err)
	}
	s.next++
	s.rows++
	return nil
}

// cell checks v against column i and returns what to hand excelize. It
// returns the caller's interface value unchanged whenever it can, so a row
// costs no boxing beyond what the caller already did.
func (s *Sheet) cell(i int, v any) (any, error) {
	k := s.kinds[i]
	switch k {
	case Text, Account:
		switch x := v.(type) {
		case nil:
			return nil, nil
		case string:
			if isFormulaLike(x) {
				return "'" + x, nil
			}
			return v, nil
		}
	case Amount, Integer:
		if x, ok := v.(int64); ok {
			if k == Amount {
				sum, ok := addInt64(s.sums[i], x)
				if !ok {
					return nil, errors.New("column total overflows int64")
				}
				s.sums[i] = sum
			}
			return v, nil
		}
	case Date, DateTime:
		switch x := v.(type) {
		case nil:
			return nil, nil
		case time.Time:
			if x.IsZero() {
				return nil, nil
			}
			// excelize writes the wall clock of the value's zone, so the
			// zone decides what the reader sees: always KST.
			x = x.In(KST)
			if k == Date {
				y, m, d := x.Date()
				x = time.Date(y, m, d, 0, 0, 0, 0, KST)
			}
			return x, nil
		}
	}
	return nil, fmt.Errorf("%T value in a %s column", v, k)
}

func addInt64(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}

// Rows reports how many data rows have been written.
func (s *Sheet) Rows() int { return s.rows }

// Sum reports the running total of Amount column i (0-based).
func (s *Sheet) Sum(i int) int64 { return s.sums[i] }

// Close writes the control-total row, sets the autofilter and finishes the
// sheet. A sheet that failed cannot be closed.
func (s *Sheet) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return nil
	}
	if err := s.finish(); err != nil {
		return s.fail(err)
	}
	s.closed = true
	s.wb.open = nil
	s.wb.sheets[len(s.wb.sheets)-1].rows = s.rows
	return nil
}

func (s *Sheet) finish() error {
	last := s.header + s.rows
	if !s.spec.NoTotalRow {
		st := s.wb.st
		total := make([]any, len(s.kinds))
		total[0] = excelize.Cell{StyleID: st.totalLabel, Value: "합계"}
		total[1] = excelize.Cell{StyleID: st.totalCount, Value: int64(s.rows)}
		for i, k := range s.kinds[2:] {
			if k == Amount {
				total[i+2] = excelize.Cell{StyleID: st.totalAmount, Value: s.sums[i+2]}
			} else {
				total[i+2] = excelize.Cell{StyleID: st.totalLabel}
			}
		}
		// One blank row keeps the total outside the region Excel's filter and
		// sort treat as data.
		if err := s.sw.SetRow("A"+strconv.Itoa(last+2), total); err != nil {
			return err
		}
	}
	lastCol, err := excelize.ColumnNumberToName(len(s.kinds))
	if err != nil {
		return err
	}
	// The stream writer has no autofilter call; File.AutoFilter edits the
	// same in-memory worksheet the stream writer serialises on Flush, so it
	// must run after the rows (when the range is known) and before Flush.
	ref := "A" + strconv.Itoa(s.header) + ":" + lastCol + strconv.Itoa(last)
	if err := s.wb.f.AutoFilter(s.spec.Name, ref, nil); err != nil {
		return err
	}
	return s.sw.Flush()
}

func (s *Sheet) fail(err error) error {
	s.err = err
	return s.wb.fail(err)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
