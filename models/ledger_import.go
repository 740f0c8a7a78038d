package models

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/models/rules"
)

// Sales-ledger import (DESIGN.md "Excel": imports stream rows, validate every
// row, report errors by row and column, and write nothing when any row is
// invalid). The file is parsed as a stream (encoding/csv, or excelize's row
// iterator for .xlsx), every row is validated, and valid rows are COPYed into a
// session-local staging table; when the whole file is valid, one transaction
// replaces the program's ledger with the staging rows. Progress is written to
// ledger_imports as it goes.

// Import statuses.
const (
	ImportQueued  = "queued"
	ImportRunning = "running"
	ImportDone    = "done"
	ImportFailed  = "failed"
)

// Ledger file formats.
const (
	FormatCSV  = "csv"
	FormatXLSX = "xlsx"
)

// Limits on uploaded ledger files.
const (
	MaxLedgerUpload   = 256 << 20 // bytes on the wire
	maxXLSXUnzipped   = 2 << 30   // total uncompressed size of an .xlsx
	maxXLSXEntries    = 2000      // zip entries
	maxXLSXRatio      = 200       // uncompressed / compressed per entry (a zip bomb is far above)
	maxImportErrors   = 200       // errors kept and shown; the count goes on
	importStaleAfter  = 2 * time.Minute
	importHeartbeat   = 500 * time.Millisecond
	maxLedgerRowBytes = 4096
)

// LedgerColumns are the required header names, in the documented order.
var LedgerColumns = []string{"seller_brn", "date", "gross_sales", "commission", "category"}

// RowError is one problem in an imported file: row 1 is the header.
type RowError struct {
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Message string `json:"message"`
}

// LedgerImport is an import as GET /api/v1/imports/{id} shows it.
type LedgerImport struct {
	ID         uuid.UUID  `json:"id"`
	Program    string     `json:"program"`
	Filename   string     `json:"filename"`
	Format     string     `json:"format"`
	SizeBytes  int64      `json:"size_bytes"`
	Status     string     `json:"status"`
	RowsTotal  int64      `json:"rows_total"`
	RowsDone   int64      `json:"rows_done"`
	ErrorCount int        `json:"error_count"`
	Errors     []RowError `json:"errors"`
	Message    string     `json:"message,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	UploadedBy uuid.UUID  `json:"-"`
	Agency     string     `json:"-"`
}

// Percent is rows_done of rows_total, 0..100 (100 when done).
func (li *LedgerImport) Percent() int {
	switch {
	case li.Status == ImportDone:
		return 100
	case li.RowsTotal <= 0:
		return 0
	}
	return int(min(100, li.RowsDone*100/li.RowsTotal))
}

// Finished reports whether the import will change no more.
func (li *LedgerImport) Finished() bool { return li.Status == ImportDone || li.Status == ImportFailed }

// SniffLedger decides a file's format from its first bytes (never from the
// name or the client's content type): a zip is .xlsx, UTF-8 text without NUL
// bytes is CSV. The file name's extension must agree.
func SniffLedger(head []byte, filename string) (string, error) {
	ext := strings.ToLower(filename)
	var format string
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		format = FormatXLSX
	case len(head) > 0 && looksLikeText(head):
		format = FormatCSV
	default:
		return "", FieldError("unsupported_file_type", "file", "unsupported_file_type", "the file is neither an .xlsx workbook nor a UTF-8 CSV")
	}
	if !strings.HasSuffix(ext, "."+format) {
		return "", FieldError("file_type_mismatch", "file", "file_type_mismatch", "the file's content does not match its extension (.csv or .xlsx)")
	}
	return format, nil
}

func looksLikeText(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	// A multi-byte rune may be cut at the end of the sniffed prefix.
	for i := 0; i < 3 && len(b) > 0 && !utf8.Valid(b); i++ {
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

// CheckXLSX refuses zip bombs before excelize opens the file: too many
// entries, too much uncompressed data, or an entry compressed beyond any real
// spreadsheet's ratio.
func CheckXLSX(path string) error {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return FieldError("invalid_xlsx", "file", "invalid_xlsx", "the file is not a valid .xlsx workbook")
	}
	defer zr.Close()
	if len(zr.File) > maxXLSXEntries {
		return FieldError("xlsx_too_complex", "file", "too_many_entries", "the workbook has too many parts")
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > maxXLSXUnzipped {
			return Coded(ETOOLARGE, "xlsx_too_large", "the workbook unpacks to more than 2 GiB")
		}
		if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64 > maxXLSXRatio*max(f.CompressedSize64, 1) {
			return FieldError("xlsx_zip_bomb", "file", "compression_ratio", "the workbook is compressed suspiciously well (zip bomb?)")
		}
	}
	return nil
}

// rowReader yields raw records of a ledger file.
type rowReader interface {
	next() ([]string, error) // io.EOF at the end
	close() error
}

type csvRows struct {
	f *os.File
	r *csv.Reader
}

func (c *csvRows) next() ([]string, error) { return c.r.Read() }
func (c *csvRows) close() error            { return c.f.Close() }

type xlsxRows struct {
	f    *excelize.File
	rows *excelize.Rows
}

func (x *xlsxRows) next() ([]string, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	return x.rows.Columns(excelize.Options{RawCellValue: true})
}

func (x *xlsxRows) close() error { return errors.Join(x.rows.Close(), x.f.Close()) }

// openLedgerRows opens path for streaming and estimates the number of data rows
// (for the progress bar): newlines for CSV, the sheet's dimension for .xlsx.
func openLedgerRows(path, format string) (rowReader, int64, error) {
	switch format {
	case FormatCSV:
		total, err := countLines(path)
		if err != nil {
			return nil, 0, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		br := bufio.NewReaderSize(f, 256<<10)
		if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
			_, _ = br.Discard(3)
		}
		r := csv.NewReader(br)
		r.FieldsPerRecord = -1
		r.ReuseRecord = true
		r.TrimLeadingSpace = true
		return &csvRows{f: f, r: r}, max(0, total-1), nil
	case FormatXLSX:
		if err := CheckXLSX(path); err != nil {
			return nil, 0, err
		}
		f, err := excelize.OpenFile(path, excelize.Options{UnzipSizeLimit: maxXLSXUnzipped, UnzipXMLSizeLimit: 16 << 20})
		if err != nil {
			return nil, 0, FieldError("invalid_xlsx", "file", "invalid_xlsx", "the file is not a valid .xlsx workbook")
		}
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			_ = f.Close()
			return nil, 0, FieldError("invalid_xlsx", "file", "no_sheet", "the workbook has no sheet")
		}
		var total int64
		if dim, err := f.GetSheetDimension(sheets[0]); err == nil {
			if _, last, ok := strings.Cut(dim, ":"); ok {
				if _, row, err := excelize.CellNameToCoordinates(last); err == nil {
					total = int64(row) - 1
				}
			}
		}
		rows, err := f.Rows(sheets[0])
		if err != nil {
			_ = f.Close()
			return nil, 0, FieldError("invalid_xlsx", "file", "invalid_xlsx", "the first sheet cannot be read")
		}
		return &xlsxRows{f: f, rows: rows}, max(0, total), nil
	}
	return nil, 0, fmt.Errorf("ledger import: unknown format %q", format)
}

func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var n int64
	var last byte = '\n'
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++
	}
	return n, nil
}

// LedgerRow is one validated ledger row.
type LedgerRow struct {
	BRN        string
	Day        rules.Date
	Category   string
	GrossSales int64
	Commission int64
}

// LedgerHeader maps the required columns to their positions.
type LedgerHeader [5]int

// ParseLedgerHeader finds the required columns in a header row (any order,
// case-insensitive, extra columns ignored); a missing one is an error on row 1.
func ParseLedgerHeader(rec []string) (LedgerHeader, []RowError) {
	var h LedgerHeader
	for i := range h {
		h[i] = -1
	}
	for i, name := range rec {
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		for k, want := range LedgerColumns {
			if name == want && h[k] < 0 {
				h[k] = i
			}
		}
	}
	var errs []RowError
	for k, pos := range h {
		if pos < 0 {
			errs = append(errs, RowError{Row: 1, Column: LedgerColumns[k], Message: "missing column"})
		}
	}
	return h, errs
}

var categoryIndex = func() map[string]uint64 {
	m := map[string]uint64{}
	for i, c := range Categories {
		m[c] = uint64(i)
	}
	return m
}()

// excelEpoch is day 0 of Excel's 1900 date system (serial 1 = 1900-01-01, with
// Lotus's phantom 29 February 1900 accounted for).
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, rules.KST)

// parseLedgerDate reads YYYY-MM-DD, or an Excel date serial (a date-formatted
// .xlsx cell read raw).
func parseLedgerDate(s string) (rules.Date, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 10 && s[4] == '-' && s[7] == '-' {
		y, e1 := strconv.Atoi(s[:4])
		m, e2 := strconv.Atoi(s[5:7])
		d, e3 := strconv.Atoi(s[8:])
		if e1 != nil || e2 != nil || e3 != nil || m < 1 || m > 12 || d < 1 || d > 31 {
			return rules.Date{}, false
		}
		date := rules.Date{Year: y, Month: time.Month(m), Day: d}
		if date.AddDays(0) != date { // 2025-02-30 normalises to March: invalid
			return rules.Date{}, false
		}
		return date, y >= 2000 && y <= 2100
	}
	if n, err := strconv.Atoi(s); err == nil && n > 36526 && n < 73051 { // 2000-01-01 .. 2100-01-01
		return rules.DateOf(excelEpoch.AddDate(0, 0, n)), true
	}
	return rules.Date{}, false
}

// ValidateLedgerRow checks one data row: the BRN's check digit, the date, whole
// non-negative won amounts (commission not above gross sales) and a known
// category. It returns every problem of the row, one per column.
func ValidateLedgerRow(h LedgerHeader, rec []string, row int) (LedgerRow, []RowError) {
	var errs []RowError
	field := func(k int) string {
		if p := h[k]; p < len(rec) {
			return rec[p]
		}
		return ""
	}
	bad := func(k int, msg string) {
		errs = append(errs, RowError{Row: row, Column: LedgerColumns[k], Message: msg})
	}
	var r LedgerRow
	if brn, err := rules.ParseBRN(field(0)); err != nil {
		if errors.Is(err, rules.ErrBRNChecksum) {
			bad(0, "business registration number check digit is wrong")
		} else {
			bad(0, "business registration number must be 10 digits (123-45-67890)")
		}
	} else {
		r.BRN = brn.String()
	}
	if d, ok := parseLedgerDate(field(1)); ok {
		r.Day = d
	} else {
		bad(1, "date must be YYYY-MM-DD between 2000 and 2100")
	}
	var grossOK bool
	for k, dst := range []*int64{&r.GrossSales, &r.Commission} {
		v, err := rules.ParseWon(field(2 + k))
		if err != nil {
			bad(2+k, "must be a whole, non-negative number of won")
			continue
		}
		*dst = v
		grossOK = grossOK || k == 0
	}
	if grossOK && r.Commission > r.GrossSales {
		bad(3, "commission is above gross sales")
	}
	r.Category = strings.TrimSpace(field(4))
	if _, ok := categoryIndex[r.Category]; !ok {
		bad(4, "unknown category (one of "+strings.Join(Categories, ", ")+")")
	}
	return r, errs
}

// rowKey packs (brn, day, category) into 64 bits for duplicate detection
// without keeping a million strings: BRN < 2^34, days since 2000 < 2^16,
// category < 2^4.
func rowKey(r LedgerRow) uint64 {
	brn, _ := strconv.ParseUint(r.BRN, 10, 64)
	days := uint64(r.Day.Start().Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, rules.KST)).Hours() / 24)
	return brn<<20 | days<<4 | categoryIndex[r.Category]
}

// NewLedgerImport records an uploaded file as a queued import. Only one import
// per program may be queued or running (409 import_in_progress).
func (s *Store) NewLedgerImport(ctx context.Context, by *User, program, filename, format string, size int64, sum []byte) (*LedgerImport, error) {
	if !by.HasRole(RoleProgramAdmin) {
		return nil, Coded(EFORBIDDEN, "forbidden", "only program administrators import ledgers")
	}
	p, err := s.ProgramByCode(ctx, program)
	if err != nil {
		return nil, err
	}
	if p.Agency != by.Agency {
		return nil, Coded(ENOTFOUND, "program_not_found", "no such program")
	}
	s.FailStaleImports(ctx)
	if sum == nil {
		sum = []byte{}
	}
	li := &LedgerImport{ID: uuid.New(), Program: p.Code, Filename: truncate(filename, 200), Format: format, SizeBytes: size,
		Status: ImportQueued, Errors: []RowError{}, CreatedAt: s.Now(), UploadedBy: by.ID, Agency: p.Agency}
	_, err = s.Pool.Exec(ctx, `INSERT INTO ledger_imports (id, program_code, uploaded_by, filename, format, size_bytes, sha256, status, created_at, heartbeat_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,'queued',$8,$8)`, li.ID, li.Program, by.ID, li.Filename, format, size, sum, li.CreatedAt)
	if isUniqueViolation(err, "ledger_imports_active_key") {
		return nil, Coded(ECONFLICT, "import_in_progress", "another ledger import for this program is still running")
	}
	if err != nil {
		return nil, err
	}
	return li, nil
}

// FailStaleImports marks failed every import whose process stopped reporting
// (a crash or restart): a queued or running import whose heartbeat is older
// than importStaleAfter. Imports run in the web process that received the
// file, which writes a heartbeat every half second.
func (s *Store) FailStaleImports(ctx context.Context) {
	_, _ = s.Pool.Exec(ctx, `UPDATE ledger_imports SET status = 'failed', finished_at = $1,
			message = 'the import stopped (the server restarted); upload the file again'
		WHERE status IN ('queued','running') AND heartbeat_at < $2`, s.Now(), s.Now().Add(-importStaleAfter))
}

const importColumns = `i.id, i.program_code, i.filename, i.format, i.size_bytes, i.status, i.rows_total, i.rows_done,
	i.error_count, i.errors, i.message, i.created_at, i.finished_at, i.uploaded_by, p.agency_code`

func scanImport(row pgx.Row) (*LedgerImport, error) {
	li := &LedgerImport{}
	var errs []byte
	err := row.Scan(&li.ID, &li.Program, &li.Filename, &li.Format, &li.SizeBytes, &li.Status, &li.RowsTotal, &li.RowsDone,
		&li.ErrorCount, &errs, &li.Message, &li.CreatedAt, &li.FinishedAt, &li.UploadedBy, &li.Agency)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	li.Errors = []RowError{}
	return li, json.Unmarshal(errs, &li.Errors)
}

// LedgerImportFor loads an import visible to v: program administrators and
// auditors of the program's agency. Anyone else gets 404.
func (s *Store) LedgerImportFor(ctx context.Context, v *Viewer, id uuid.UUID) (*LedgerImport, error) {
	if !v.IsStaff() || !(v.HasRole(RoleProgramAdmin) || v.HasRole(RoleAuditor)) {
		return nil, ErrNotFound
	}
	li, err := scanImport(s.Pool.QueryRow(ctx, `SELECT `+importColumns+` FROM ledger_imports i JOIN programs p ON p.code = i.program_code
		WHERE i.id = $1 AND p.agency_code = $2`, id, v.Agency))
	if err == nil && !li.Finished() {
		s.FailStaleImports(ctx)
		li, err = scanImport(s.Pool.QueryRow(ctx, `SELECT `+importColumns+` FROM ledger_imports i JOIN programs p ON p.code = i.program_code
			WHERE i.id = $1`, id))
	}
	return li, err
}

// RecentLedgerImports lists a program's last imports (admin page).
func (s *Store) RecentLedgerImports(ctx context.Context, program string, limit int) ([]*LedgerImport, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+importColumns+` FROM ledger_imports i JOIN programs p ON p.code = i.program_code
		WHERE i.program_code = $1 ORDER BY i.created_at DESC LIMIT $2`, program, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*LedgerImport, error) { return scanImport(r) })
}

// ImportResult is how an import ended.
type ImportResult struct {
	Rows       int64
	ErrorCount int
	Errors     []RowError
}

// RunLedgerImport parses path and, when every row is valid, replaces the
// program's ledger in one transaction. It always leaves the import done or
// failed (unless the database itself is gone, when the stale sweep fails it
// later). It never returns the file's problems as an error: they are the
// import's result.
func (s *Store) RunLedgerImport(ctx context.Context, id uuid.UUID, path, format string) (*ImportResult, error) {
	var program string
	if err := s.Pool.QueryRow(ctx, `UPDATE ledger_imports SET status = 'running', started_at = $2, heartbeat_at = $2
		WHERE id = $1 AND status = 'queued' RETURNING program_code`, id, s.Now()).Scan(&program); err != nil {
		return nil, fmt.Errorf("ledger import %s: not queued: %w", id, err)
	}
	var done atomic.Int64
	var total atomic.Int64
	hbCtx, stopHB := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { // progress and heartbeat, on its own pooled connection
		defer hb.Done()
		t := time.NewTicker(importHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				_, _ = s.Pool.Exec(hbCtx, `UPDATE ledger_imports SET rows_done = $2, rows_total = greatest($3, $2), heartbeat_at = $4
					WHERE id = $1 AND status = 'running'`, id, done.Load(), total.Load(), s.Now())
			}
		}
	}()
	res, err := s.importLedger(ctx, id, program, path, format, &done, &total)
	stopHB()
	hb.Wait()
	if err != nil {
		var e *Error
		if errors.As(err, &e) { // the file itself is unusable (not a workbook, zip bomb)
			res = &ImportResult{ErrorCount: 1, Errors: []RowError{{Row: 0, Column: "file", Message: e.Message}}}
		} else {
			msg := "the import failed: " + truncate(err.Error(), 300)
			_, _ = s.Pool.Exec(context.WithoutCancel(ctx), `UPDATE ledger_imports SET status = 'failed', finished_at = $2, message = $3
				WHERE id = $1 AND status = 'running'`, id, s.Now(), msg)
			return nil, err
		}
	}
	if res.ErrorCount > 0 {
		errs, _ := json.Marshal(res.Errors)
		_, err = s.Pool.Exec(context.WithoutCancel(ctx), `UPDATE ledger_imports SET status = 'failed', finished_at = $2, rows_done = $3,
				rows_total = greatest(rows_total, $3), error_count = $4, errors = $5, message = 'no rows were imported: fix the errors and upload again'
			WHERE id = $1`, id, s.Now(), res.Rows, res.ErrorCount, errs)
	}
	return res, err
}

// copySource feeds validated rows to COPY. On the first invalid row it ends
// the COPY (nothing will be kept) and the caller goes on validating only.
type copySource struct {
	rr      rowReader
	h       LedgerHeader
	program string
	row     int // file row of the last record read (1 = header)
	seen    map[uint64]int32
	res     *ImportResult
	done    *atomic.Int64
	values  []any
	err     error
	failed  bool
}

func (c *copySource) addErrors(errs ...RowError) {
	for _, e := range errs {
		c.res.ErrorCount++
		if len(c.res.Errors) < maxImportErrors {
			c.res.Errors = append(c.res.Errors, e)
		}
	}
	c.failed = true
}

// read returns the next valid row, or ok=false at the end or on a read error.
func (c *copySource) read() (LedgerRow, bool) {
	for {
		rec, err := c.rr.next()
		if err == io.EOF {
			return LedgerRow{}, false
		}
		c.row++
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			c.addErrors(RowError{Row: perr.StartLine, Column: "", Message: "malformed CSV: " + perr.Err.Error()})
			if c.res.ErrorCount >= maxImportErrors*10 {
				return LedgerRow{}, false
			}
			continue
		}
		if err != nil {
			c.err = err
			return LedgerRow{}, false
		}
		c.done.Add(1)
		if isBlank(rec) {
			continue
		}
		n := 0
		for _, f := range rec {
			n += len(f)
		}
		if n > maxLedgerRowBytes {
			c.addErrors(RowError{Row: c.row, Message: "row too long"})
			continue
		}
		r, errs := ValidateLedgerRow(c.h, rec, c.row)
		if len(errs) > 0 {
			c.addErrors(errs...)
			continue
		}
		k := rowKey(r)
		if first, dup := c.seen[k]; dup {
			c.addErrors(RowError{Row: c.row, Column: "seller_brn", Message: fmt.Sprintf("duplicate of row %d (same seller, date and category)", first)})
			continue
		}
		c.seen[k] = int32(c.row)
		c.res.Rows++
		return r, true
	}
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func (c *copySource) Next() bool {
	if c.failed {
		return false
	}
	r, ok := c.read()
	if !ok || c.failed {
		return false
	}
	c.values[0], c.values[1], c.values[2], c.values[3], c.values[4], c.values[5] =
		c.program, r.BRN, time.Date(r.Day.Year, r.Day.Month, r.Day.Day, 0, 0, 0, 0, time.UTC), r.Category, r.GrossSales, r.Commission
	return true
}

func (c *copySource) Values() ([]any, error) { return c.values, nil }
func (c *copySource) Err() error             { return c.err }

func (s *Store) importLedger(ctx context.Context, id uuid.UUID, program, path, format string, done, total *atomic.Int64) (*ImportResult, error) {
	rr, n, err := openLedgerRows(path, format)
	if err != nil {
		return nil, err
	}
	defer rr.close()
	total.Store(n)
	res := &ImportResult{Errors: []RowError{}}
	header, err := rr.next()
	if err == io.EOF {
		return &ImportResult{ErrorCount: 1, Errors: []RowError{{Row: 1, Message: "the file is empty"}}}, nil
	}
	if err != nil {
		return &ImportResult{ErrorCount: 1, Errors: []RowError{{Row: 1, Message: "the header row cannot be read"}}}, nil
	}
	h, herrs := ParseLedgerHeader(header)
	if len(herrs) > 0 {
		return &ImportResult{ErrorCount: len(herrs), Errors: herrs}, nil
	}
	src := &copySource{rr: rr, h: h, program: program, row: 1, seen: make(map[uint64]int32, min(n, 4_000_000)),
		res: res, done: done, values: make([]any, 6)}

	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE ledger_staging (LIKE sales_ledger) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_staging"},
			[]string{"program_code", "brn", "day", "category", "gross_sales", "commission"}, src); err != nil {
			return err
		}
		if src.failed {
			// Keep validating the rest so the report lists every problem.
			for {
				if _, ok := src.read(); !ok {
					break
				}
			}
			if src.err != nil {
				return src.err
			}
			return errRollback
		}
		if res.Rows == 0 {
			src.addErrors(RowError{Row: 2, Message: "the file has no data rows"})
			return errRollback
		}
		// The swap: the program's ledger is replaced as a whole, atomically.
		if _, err := tx.Exec(ctx, `DELETE FROM sales_ledger WHERE program_code = $1`, program); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sales_ledger SELECT * FROM ledger_staging`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE ledger_imports SET status = 'done', finished_at = $2, rows_done = $3, rows_total = $3, heartbeat_at = $2,
			message = '' WHERE id = $1`, id, s.Now(), res.Rows)
		return err
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, err
}

var errRollback = errors.New("rollback")

// parseLedgerHeader is ParseLedgerHeader under its earlier name (the fuzz test uses it).
func parseLedgerHeader(rec []string) (LedgerHeader, []RowError) { return ParseLedgerHeader(rec) }
