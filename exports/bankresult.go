package exports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/transform"
)

// RowError is one problem in an imported or exported file, located by
// 1-based row number and column header as the user sees them.
type RowError struct {
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Message string `json:"message"`
}

// ValidationError lists every invalid cell of a file (up to
// MaxReportedErrors). Its presence means the whole file is rejected.
type ValidationError struct {
	Errors    []RowError
	Truncated bool // more problems existed than were kept
}

// MaxReportedErrors bounds the memory a hostile file can make us spend on
// error reports.
const MaxReportedErrors = 1000

func (e *ValidationError) add(row int, column, msg string) {
	if len(e.Errors) >= MaxReportedErrors {
		e.Truncated = true
		return
	}
	e.Errors = append(e.Errors, RowError{row, column, msg})
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exports: %d problem(s)", len(e.Errors))
	if e.Truncated {
		b.WriteString(" (truncated)")
	}
	for i, r := range e.Errors {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		fmt.Fprintf(&b, "; row %d %s: %s", r.Row, r.Column, r.Message)
	}
	return b.String()
}

// ResultFormat is the container of a bank result file.
type ResultFormat uint8

const (
	XLSX ResultFormat = iota + 1
	CSV
)

// ResultFormatOf picks the format from a file name's extension.
func ResultFormatOf(filename string) (ResultFormat, error) {
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".xlsx":
		return XLSX, nil
	case ".csv":
		return CSV, nil
	}
	return 0, fmt.Errorf("exports: result file %q: only .xlsx and .csv are accepted", filename)
}

// MaxResultFileBytes bounds an uploaded result file. An .xlsx is a zip whose
// directory sits at its end, so it has to be held in memory to be opened.
const MaxResultFileBytes = 32 << 20

// TransferResult is one validated line of a bank result file.
type TransferResult struct {
	Row     int    // 1-based row in the file; the header is row 1
	Key     string // the transfer key we sent
	Account string // digits only
	Amount  int64
	Code    string // the bank's result code, interpreted by the caller
	Message string
}

type resultField uint8

const (
	resKey resultField = iota
	resAccount
	resAmount
	resCode
	resMessage
	resFields
)

var resultFieldNames = [resFields]string{"이체키", "계좌번호", "금액", "결과코드", "결과메시지"}

// resultHeaders maps normalised header names (no spaces, lower case) from the
// banks' result files to fields.
var resultHeaders = map[string]resultField{
	"이체키": resKey, "거래고유번호": resKey, "이체고유번호": resKey, "비고(이체키)": resKey, "transfer_key": resKey,
	"계좌번호": resAccount, "입금계좌번호": resAccount, "입금계좌": resAccount, "account": resAccount, "account_number": resAccount,
	"금액": resAmount, "이체금액": resAmount, "입금액": resAmount, "amount": resAmount,
	"결과코드": resCode, "처리결과코드": resCode, "응답코드": resCode, "result_code": resCode,
	"결과메시지": resMessage, "처리결과메시지": resMessage, "응답메시지": resMessage, "메시지": resMessage, "message": resMessage,
}

// ParseBankResults streams a bank result file (.xlsx: first sheet; .csv:
// UTF-8, with or without BOM, or CP949 as Korean banks often send), and calls
// yield for each valid row. The first row must be the header; an unknown,
// duplicated or missing header rejects the file. Every row is validated and
// every problem reported as a *ValidationError. Once any problem is found,
// yield is no longer called, but rows already yielded are not taken back: the
// caller stages them (e.g. in a transaction) and discards them on error, so
// nothing is written when any row is invalid.
func ParseBankResults(r io.Reader, format ResultFormat, yield func(TransferResult) error) error {
	var (
		src rowSource
		err error
	)
	switch format {
	case XLSX:
		src, err = openXLSXRows(r)
	case CSV:
		src = newCSVRows(r)
	default:
		return fmt.Errorf("exports: unknown result format %d", format)
	}
	if err != nil {
		return err
	}
	defer src.Close()

	var verr ValidationError
	header, headerRow, err := src.Next()
	if err == io.EOF {
		verr.add(1, "", "빈 파일입니다")
		return &verr
	}
	if err != nil {
		return err
	}
	p, ok := newResultParser(header, headerRow, &verr)
	if !ok {
		return &verr
	}
	rows := 0
	for {
		rec, n, err := src.Next()
		if err == io.EOF {
			break
		}
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			verr.add(pe.StartLine, "", "CSV 형식 오류: "+pe.Err.Error())
			return &verr // a broken quote makes every later row unreliable
		}
		if err != nil {
			return err
		}
		if isBlank(rec) {
			continue
		}
		rows++
		res, ok := p.parse(n, rec)
		if ok && len(verr.Errors) == 0 {
			if err := yield(res); err != nil {
				return err
			}
		}
	}
	if rows == 0 {
		verr.add(headerRow+1, "", "결과 행이 없습니다")
	}
	if len(verr.Errors) > 0 {
		return &verr
	}
	return nil
}

type resultParser struct {
	col    [resFields]int // field → column index, -1 if absent
	header []string       // headers as written in the file, for error reports
	seen   map[string]int // transfer key → first row
	verr   *ValidationError
}

func newResultParser(header []string, row int, verr *ValidationError) (*resultParser, bool) {
	p := &resultParser{header: append([]string(nil), header...), seen: make(map[string]int), verr: verr}
	for i := range p.col {
		p.col[i] = -1
	}
	for i, h := range header {
		name := strings.ToLower(strings.Join(strings.Fields(strings.TrimPrefix(h, "\ufeff")), ""))
		if name == "" {
			continue
		}
		f, ok := resultHeaders[name]
		switch {
		case !ok:
			verr.add(row, h, "알 수 없는 열입니다 (허용: 이체키/거래고유번호, 계좌번호/입금계좌번호, 금액/이체금액, 결과코드, 결과메시지)")
		case p.col[f] >= 0:
			verr.add(row, h, fmt.Sprintf("%q 열과 같은 항목이 두 번 있습니다", header[p.col[f]]))
		default:
			p.col[f] = i
		}
	}
	for f, i := range p.col {
		if i < 0 && resultField(f) != resMessage {
			verr.add(row, resultFieldNames[f], "필수 열이 없습니다")
		}
	}
	return p, len(verr.Errors) == 0
}

func (p *resultParser) parse(row int, rec []string) (TransferResult, bool) {
	before := len(p.verr.Errors)
	bad := func(f resultField, msg string) { p.verr.add(row, p.header[p.col[f]], msg) }
	get := func(f resultField) string {
		if i := p.col[f]; i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for i := len(p.header); i < len(rec); i++ {
		if strings.TrimSpace(rec[i]) != "" {
			name, _ := excelize.ColumnNumberToName(i + 1)
			p.verr.add(row, name+"열", "머리글 없는 열에 값이 있습니다")
		}
	}
	res := TransferResult{Row: row, Key: get(resKey), Code: get(resCode), Message: get(resMessage)}
	if msg := checkKey(res.Key); msg != "" {
		bad(resKey, msg)
	} else if first, dup := p.seen[res.Key]; dup {
		bad(resKey, fmt.Sprintf("이체키 중복 (%d행과 같음)", first))
	} else {
		p.seen[res.Key] = row
	}
	res.Account = accountSeparators.Replace(get(resAccount))
	if msg := checkAccount(res.Account); msg != "" {
		bad(resAccount, msg)
	}
	var msg string
	if res.Amount, msg = parseWon(get(resAmount)); msg != "" {
		bad(resAmount, msg)
	}
	switch {
	case res.Code == "":
		bad(resCode, "결과코드가 비어 있습니다")
	case len(res.Code) > 16 || strings.ContainsFunc(res.Code, func(r rune) bool { return r < 0x20 }):
		bad(resCode, "결과코드 형식이 올바르지 않습니다")
	}
	if r := []rune(res.Message); len(r) > 500 {
		res.Message = string(r[:500]) // display text only; no reason to reject the file
	}
	return res, len(p.verr.Errors) == before
}

// parseWon accepts a positive whole number of won, with or without thousands
// separators. Decimals, signs and exponents are refused, not rounded.
func parseWon(s string) (int64, string) {
	if s == "" {
		return 0, "금액이 비어 있습니다"
	}
	d := strings.ReplaceAll(s, ",", "")
	if !isDigits(d) {
		return 0, "금액은 원 단위 양의 정수여야 합니다"
	}
	n, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return 0, "금액이 너무 큽니다"
	}
	if n == 0 {
		return 0, "금액은 0보다 커야 합니다"
	}
	return n, ""
}

func isBlank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// rowSource yields the rows of a file as strings with the 1-based row
// number a user would look for; io.EOF ends it.
type rowSource interface {
	Next() (rec []string, row int, err error)
	Close() error
}

type xlsxRows struct {
	f    *excelize.File
	rows *excelize.Rows
	n    int
}

func openXLSXRows(r io.Reader) (*xlsxRows, error) {
	f, err := excelize.OpenReader(&capReader{r: r, left: MaxResultFileBytes}, excelize.Options{
		RawCellValue:      true,      // amounts as stored, not as displayed with #,##0
		UnzipSizeLimit:    256 << 20, // zip-bomb guard on the unpacked size
		UnzipXMLSizeLimit: 16 << 20,  // larger sheets are unpacked to a temp file and streamed
	})
	if err != nil {
		return nil, fmt.Errorf("exports: result file is not a readable .xlsx: %w", err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		_ = f.Close()
		return nil, errors.New("exports: result file has no sheet")
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &xlsxRows{f: f, rows: rows}, nil
}

func (x *xlsxRows) Next() ([]string, int, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, 0, err
		}
		return nil, 0, io.EOF
	}
	x.n++ // excelize's Next also steps through rows absent from the XML
	rec, err := x.rows.Columns()
	return rec, x.n, err
}

func (x *xlsxRows) Close() error {
	_ = x.rows.Close()
	return x.f.Close()
}

var errTooLarge = fmt.Errorf("exports: result file exceeds %d bytes", MaxResultFileBytes)

// capReader fails once more than left bytes are read, rather than silently
// truncating as io.LimitReader would.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var probe [1]byte
		if n, _ := c.r.Read(probe[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

type csvRows struct{ r *csv.Reader }

func newCSVRows(r io.Reader) *csvRows {
	const peekSize = 64 << 10
	br := bufio.NewReaderSize(r, peekSize)
	head, _ := br.Peek(peekSize)
	var src io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte("\ufeff")):
		_, _ = br.Discard(3)
	case !looksUTF8(head):
		// Korean banks' CSV exports are often CP949; x/text's EUC-KR decoder
		// covers CP949's extensions.
		src = transform.NewReader(br, korean.EUCKR.NewDecoder())
	}
	cr := csv.NewReader(src)
	cr.FieldsPerRecord = -1 // ragged rows are reported per row, not as a parse failure
	cr.ReuseRecord = true
	return &csvRows{cr}
}

// Next numbers records by the line they start on, as a text editor or
// Excel shows them (encoding/csv silently skips empty lines).
func (c *csvRows) Next() ([]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	return rec, line, nil
}

func (c *csvRows) Close() error { return nil }

// looksUTF8 reports whether a prefix of a file is valid UTF-8, ignoring a
// character cut in half at the end of the prefix.
func looksUTF8(p []byte) bool {
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				p = p[:i]
			}
			break
		}
	}
	return utf8.Valid(p)
}
