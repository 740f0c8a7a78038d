// Package upload is the one gate every uploaded file passes before a parser
// sees it (sales ledgers, bank result files, claim evidence): a size limit,
// the file's kind decided from its content (magic bytes) and required to
// agree with its name, and for .xlsx the zip container checked against zip
// bombs (entry count, unpacked size, compression ratio — measured by actually
// inflating, not trusted from the headers) and against macros (vbaProject.bin,
// macro-enabled content types, Excel 4.0 macro sheets, ActiveX, embedded OLE
// objects).
//
// In a handler:
//
//	f, err := upload.Spreadsheet.FromRequest(c.Writer, c.Request, "file")
//	if err != nil { s.fail(c, err); return }   // 413 / 422 with a stable code
//	defer f.Close()
//	// f.Kind is upload.XLSX or upload.CSV; f.SHA256 is hex; f is an io.ReadSeeker
//	err = exports.ParseBankResults(f, ..., yield)
//
// Or, for bytes already read: kind, err := policy.Check(bytes.NewReader(b), int64(len(b)), name).
//
// Errors are *models.Error: 413 file_too_large; 422 file_required,
// unsupported_file_type, file_type_mismatch, macro_not_allowed, zip_bomb,
// malformed_file — each with Fields{"file": code}.
package upload

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"path"
	"path/filepath"
	"strings"

	"github.com/relief/relief/models"
)

// Kind is what a file is, decided from its content.
type Kind string

// Accepted kinds.
const (
	XLSX Kind = "xlsx"
	CSV  Kind = "csv"
	PDF  Kind = "pdf"
	PNG  Kind = "png"
	JPEG Kind = "jpeg"
)

// extensions maps a lower-case file extension to the kind it must contain.
var extensions = map[string]Kind{".xlsx": XLSX, ".csv": CSV, ".pdf": PDF, ".png": PNG, ".jpg": JPEG, ".jpeg": JPEG}

// macroExtensions are refused by name before anything is read.
var macroExtensions = map[string]bool{".xlsm": true, ".xltm": true, ".xlam": true, ".xlsb": true, ".xls": true, ".docm": true, ".pptm": true}

// Policy is the set of limits for one kind of upload.
type Policy struct {
	MaxBytes int64  // the file itself
	Kinds    []Kind // accepted kinds
	// xlsx only:
	MaxEntries      int   // zip entries
	MaxUnpacked     int64 // total inflated bytes of all entries
	MaxRatio        int64 // inflated/compressed bytes of one entry
	MaxContentTypes int64 // size of [Content_Types].xml
}

// Policies for Relief's uploads. Copy and adjust for a new kind of upload.
var (
	// Spreadsheet: sales ledgers and bank result files (.xlsx or .csv).
	Spreadsheet = Policy{MaxBytes: 32 << 20, Kinds: []Kind{XLSX, CSV},
		MaxEntries: 1000, MaxUnpacked: 256 << 20, MaxRatio: 200, MaxContentTypes: 1 << 20}
	// Document: claim evidence (PDF or a photo).
	Document = Policy{MaxBytes: 10 << 20, Kinds: []Kind{PDF, PNG, JPEG}}
)

func fail(kind, code, message string) *models.Error {
	return &models.Error{Kind: kind, Code: code, Message: message, Fields: map[string]string{"file": code}}
}

// Errors (stable API codes).
var (
	ErrRequired    = fail(models.EINVALID, "file_required", "no file was uploaded")
	ErrTooLarge    = fail(models.ETOOLARGE, "file_too_large", "the file is too large")
	ErrUnsupported = fail(models.EINVALID, "unsupported_file_type", "this kind of file is not accepted")
	ErrMismatch    = fail(models.EINVALID, "file_type_mismatch", "the file's content does not match its name")
	ErrMacro       = fail(models.EINVALID, "macro_not_allowed", "files with macros or embedded objects are not accepted")
	ErrZipBomb     = fail(models.EINVALID, "zip_bomb", "the workbook unpacks to too much data")
	ErrMalformed   = fail(models.EINVALID, "malformed_file", "the file is damaged or not what it claims to be")
)

func (p Policy) accepts(k Kind) bool {
	for _, x := range p.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Check decides the kind of the size bytes in r, named name by the client,
// and checks them against the policy.
func (p Policy) Check(r io.ReaderAt, size int64, name string) (Kind, error) {
	if size > p.MaxBytes {
		return "", ErrTooLarge
	}
	if size == 0 {
		return "", ErrRequired
	}
	ext := strings.ToLower(filepath.Ext(name))
	if macroExtensions[ext] {
		return "", ErrMacro
	}
	want, ok := extensions[ext]
	if !ok || !p.accepts(want) {
		return "", ErrUnsupported
	}
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	head = head[:n]
	got := sniff(head)
	if got != want {
		return "", ErrMismatch
	}
	switch got {
	case XLSX:
		return XLSX, p.checkXLSX(r, size)
	case CSV:
		return CSV, checkText(r, size)
	}
	return got, nil
}

var (
	magicZip  = []byte("PK\x03\x04")
	magicOLE  = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1} // .xls, .doc, encrypted Office files
	magicPDF  = []byte("%PDF-")
	magicPNG  = []byte("\x89PNG\r\n\x1a\n")
	magicJPEG = []byte{0xFF, 0xD8, 0xFF}
)

// sniff names the kind by magic bytes; text without NULs is CSV; anything
// else (including OLE2 containers: legacy .xls, encrypted workbooks) is "".
func sniff(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, magicZip):
		return XLSX // checked further as a workbook
	case bytes.HasPrefix(head, magicOLE):
		return ""
	case bytes.HasPrefix(head, magicPDF):
		return PDF
	case bytes.HasPrefix(head, magicPNG):
		return PNG
	case bytes.HasPrefix(head, magicJPEG):
		return JPEG
	case bytes.IndexByte(head, 0) < 0:
		return CSV
	}
	return ""
}

// checkText refuses NUL bytes anywhere (binary content behind a .csv name).
func checkText(r io.ReaderAt, size int64) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf, off)
		if bytes.IndexByte(buf[:n], 0) >= 0 {
			return ErrMismatch
		}
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Content types of an Office Open XML workbook without macros.
const workbookMain = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"

// forbiddenParts are zip entry names (lower case) a plain workbook never
// needs: VBA projects, Excel 4.0 macro sheets, ActiveX controls and embedded
// OLE objects (which may carry executables).
func forbiddenPart(name string) bool {
	n := strings.ToLower(name)
	base := path.Base(n)
	switch {
	case strings.HasPrefix(base, "vbaproject"), strings.HasPrefix(base, "vbadata"):
		return true
	case strings.Contains(n, "macrosheets/"), strings.Contains(n, "activex/"), strings.Contains(n, "embeddings/"):
		return true
	case strings.HasSuffix(n, ".bin"):
		// the only binary part a plain workbook has is its printer settings
		return !strings.Contains(n, "printersettings/")
	}
	return false
}

func forbiddenContentType(ct string) bool {
	c := strings.ToLower(ct)
	return strings.Contains(c, "macroenabled") || strings.Contains(c, "vbaproject") || strings.Contains(c, "activex") ||
		strings.Contains(c, "ms-excel.intlmacrosheet") || strings.Contains(c, "ms-excel.macrosheet") ||
		strings.Contains(c, "sheet.binary") || strings.Contains(c, "oleobject")
}

func (p Policy) checkXLSX(r io.ReaderAt, size int64) error {
	// Count entries from the end-of-central-directory record before letting
	// archive/zip allocate one header per entry.
	entries, err := zipEntryCount(r, size)
	if err != nil {
		return ErrMalformed
	}
	if entries > p.MaxEntries {
		return ErrZipBomb
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return ErrMalformed
	}
	if len(zr.File) > p.MaxEntries {
		return ErrZipBomb
	}
	var declared uint64
	var contentTypes *zip.File
	hasWorkbook := false
	for _, f := range zr.File {
		name := f.Name
		if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.Contains(name, "..") {
			return ErrMalformed
		}
		if forbiddenPart(name) {
			return ErrMacro
		}
		if f.Flags&0x1 != 0 {
			return ErrMalformed // encrypted entries
		}
		declared += f.UncompressedSize64
		if declared > uint64(p.MaxUnpacked) {
			return ErrZipBomb
		}
		if name == "[Content_Types].xml" {
			contentTypes = f
		}
		if strings.EqualFold(name, "xl/workbook.xml") {
			hasWorkbook = true
		}
	}
	if contentTypes == nil || !hasWorkbook {
		return ErrMalformed
	}
	// Inflate every entry with a budget: headers may lie about sizes.
	budget := p.MaxUnpacked
	for _, f := range zr.File {
		if f.Mode().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return ErrMalformed
		}
		limit := p.MaxRatio*int64(f.CompressedSize64) + 4096 // small entries compress badly; allow a floor
		if limit > budget {
			limit = budget
		}
		n, err := io.Copy(io.Discard, io.LimitReader(rc, limit+1))
		rc.Close()
		if n > limit {
			return ErrZipBomb
		}
		if err != nil {
			return ErrMalformed
		}
		budget -= n
	}
	return checkContentTypes(contentTypes, p.MaxContentTypes)
}

func checkContentTypes(f *zip.File, max int64) error {
	rc, err := f.Open()
	if err != nil {
		return ErrMalformed
	}
	defer rc.Close()
	dec := xml.NewDecoder(io.LimitReader(rc, max))
	mainFound := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ErrMalformed
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "ContentType":
				if forbiddenContentType(a.Value) {
					return ErrMacro
				}
				if a.Value == workbookMain {
					mainFound = true
				}
			case "PartName":
				if forbiddenPart(strings.TrimPrefix(a.Value, "/")) {
					return ErrMacro
				}
			}
		}
	}
	if !mainFound {
		return ErrMalformed
	}
	return nil
}

// zipEntryCount reads the entry count from the end-of-central-directory
// record (or its zip64 form).
func zipEntryCount(r io.ReaderAt, size int64) (int, error) {
	const eocdLen, maxComment = 22, 65535
	tail := int64(eocdLen + maxComment)
	if tail > size {
		tail = size
	}
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < eocdLen {
		return 0, errors.New("no end of central directory")
	}
	count := int(binary.LittleEndian.Uint16(buf[i+10:]))
	if count != 0xFFFF {
		return count, nil
	}
	// zip64: the locator sits just before the EOCD and points at the zip64 record.
	if i < 20 || !bytes.Equal(buf[i-20:i-16], []byte("PK\x06\x07")) {
		return 0, errors.New("zip64 locator missing")
	}
	off := int64(binary.LittleEndian.Uint64(buf[i-20+8:]))
	rec := make([]byte, 56)
	if off < 0 || off+56 > size {
		return 0, errors.New("zip64 record out of range")
	}
	if _, err := r.ReadAt(rec, off); err != nil {
		return 0, err
	}
	if !bytes.Equal(rec[:4], []byte("PK\x06\x06")) {
		return 0, errors.New("bad zip64 record")
	}
	n := binary.LittleEndian.Uint64(rec[32:])
	if n > 1<<31 {
		return 1 << 31, nil
	}
	return int(n), nil
}

// File is an uploaded file that passed the policy.
type File struct {
	Name   string // the client's base name, for display only
	Kind   Kind
	Size   int64
	SHA256 string // hex
	f      multipart.File
	io.ReadSeeker
}

// Close releases the file.
func (f *File) Close() error { return f.f.Close() }

// FromRequest reads multipart field from r (bounding the whole body by the
// policy's limit plus room for the form), checks the file and hashes it.
// The returned File is positioned at its start.
func (p Policy) FromRequest(w http.ResponseWriter, r *http.Request, field string) (*File, error) {
	r.Body = http.MaxBytesReader(w, r.Body, p.MaxBytes+1<<20)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, ErrTooLarge
		}
		if errors.Is(err, http.ErrNotMultipart) || errors.Is(err, multipart.ErrMessageTooLarge) {
			return nil, ErrRequired
		}
		return nil, ErrMalformed
	}
	mf, fh, err := r.FormFile(field)
	if err != nil {
		return nil, ErrRequired
	}
	kind, err := p.Check(mf, fh.Size, fh.Filename)
	if err != nil {
		mf.Close()
		return nil, err
	}
	h := sha256.New()
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		mf.Close()
		return nil, err
	}
	if _, err := io.Copy(h, mf); err != nil {
		mf.Close()
		return nil, err
	}
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		mf.Close()
		return nil, err
	}
	return &File{Name: path.Base(strings.ReplaceAll(fh.Filename, "\\", "/")), Kind: kind, Size: fh.Size,
		SHA256: hex.EncodeToString(h.Sum(nil)), f: mf, ReadSeeker: mf}, nil
}
