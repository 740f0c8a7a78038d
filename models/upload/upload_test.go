package upload

import (
	"archive/zip"
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/models"
)

func workbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	_ = f.SetSheetRow("Sheet1", "A1", &[]any{"seller_brn", "date", "gross_sales", "commission", "category"})
	_ = f.SetSheetRow("Sheet1", "A2", &[]any{"1208147521", "2025-09-01", 120000, 7200, "food"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rezip copies a workbook's entries, letting edit change or add entries.
func rezip(t testing.TB, src []byte, edit func(name string, data []byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(src), int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		rc.Close()
		data := b.Bytes()
		if edit != nil {
			data = edit(f.Name, data)
		}
		w, _ := zw.Create(f.Name)
		_, _ = w.Write(data)
	}
	for name, data := range extra {
		w, _ := zw.Create(name)
		_, _ = w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func check(p Policy, data []byte, name string) (Kind, error) {
	return p.Check(bytes.NewReader(data), int64(len(data)), name)
}

func code(err error) string {
	var e *models.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestAcceptsPlainWorkbookAndCSV(t *testing.T) {
	if k, err := check(Spreadsheet, workbook(t), "ledger.xlsx"); err != nil || k != XLSX {
		t.Fatalf("xlsx: %v %v", k, err)
	}
	if k, err := check(Spreadsheet, []byte("\ufeffseller_brn,date\n1208147521,2025-09-01\n"), "ledger.CSV"); err != nil || k != CSV {
		t.Fatalf("csv: %v %v", k, err)
	}
	if k, err := check(Document, []byte("%PDF-1.7\n..."), "scan.pdf"); err != nil || k != PDF {
		t.Fatalf("pdf: %v %v", k, err)
	}
	if k, err := check(Document, []byte("\xff\xd8\xff\xe0JFIF"), "photo.JPG"); err != nil || k != JPEG {
		t.Fatalf("jpeg: %v %v", k, err)
	}
}

func TestRefusals(t *testing.T) {
	wb := workbook(t)
	macroCT := rezip(t, wb, func(name string, d []byte) []byte {
		if name == "[Content_Types].xml" {
			return bytes.Replace(d, []byte(workbookMain), []byte("application/vnd.ms-excel.sheet.macroEnabled.main+xml"), 1)
		}
		return d
	}, nil)
	vba := rezip(t, wb, nil, map[string][]byte{"xl/vbaProject.bin": []byte("\xd0\xcf\x11\xe0 vba")})
	xlm := rezip(t, wb, nil, map[string][]byte{"xl/macrosheets/sheet1.xml": []byte("<xm:macrosheet/>")})
	ole := rezip(t, wb, nil, map[string][]byte{"xl/embeddings/oleObject1.bin": []byte("MZ")})
	vbaCT := rezip(t, wb, func(name string, d []byte) []byte {
		if name == "[Content_Types].xml" {
			return bytes.Replace(d, []byte("</Types>"), []byte(`<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>`), 1)
		}
		return d
	}, nil)
	noCT := rezip(t, wb, func(name string, d []byte) []byte {
		if name == "[Content_Types].xml" {
			return []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"></Types>`)
		}
		return d
	}, nil)
	bomb := rezip(t, wb, nil, map[string][]byte{"xl/media/zeros.xml": make([]byte, 8<<20)})
	many := map[string][]byte{}
	for i := range 1001 {
		many["xl/media/e"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strconv.Itoa(i)] = []byte("x")
	}
	manyEntries := rezip(t, wb, nil, many)
	traversal := rezip(t, wb, nil, map[string][]byte{"../../etc/passwd": []byte("x")})

	cases := []struct {
		name, file string
		data       []byte
		p          Policy
		want       string
	}{
		{"macro-enabled name", "ledger.xlsm", wb, Spreadsheet, "macro_not_allowed"},
		{"legacy xls name", "ledger.xls", wb, Spreadsheet, "macro_not_allowed"},
		{"macro-enabled content type", "ledger.xlsx", macroCT, Spreadsheet, "macro_not_allowed"},
		{"vbaProject.bin", "ledger.xlsx", vba, Spreadsheet, "macro_not_allowed"},
		{"vba content type", "ledger.xlsx", vbaCT, Spreadsheet, "macro_not_allowed"},
		{"Excel 4.0 macro sheet", "ledger.xlsx", xlm, Spreadsheet, "macro_not_allowed"},
		{"embedded OLE object", "ledger.xlsx", ole, Spreadsheet, "macro_not_allowed"},
		{"no workbook content type", "ledger.xlsx", noCT, Spreadsheet, "malformed_file"},
		{"compression ratio (zip bomb)", "ledger.xlsx", bomb, Spreadsheet, "zip_bomb"},
		{"unpacked size (zip bomb)", "ledger.xlsx", wb, Policy{MaxBytes: 1 << 20, Kinds: []Kind{XLSX}, MaxEntries: 100, MaxUnpacked: 2000, MaxRatio: 1000, MaxContentTypes: 1 << 20}, "zip_bomb"},
		{"too many entries", "ledger.xlsx", manyEntries, Spreadsheet, "zip_bomb"},
		{"path traversal entry", "ledger.xlsx", traversal, Spreadsheet, "malformed_file"},
		{"too large", "ledger.csv", []byte("a,b\n"), Policy{MaxBytes: 3, Kinds: []Kind{CSV}}, "file_too_large"},
		{"empty", "ledger.csv", nil, Spreadsheet, "file_required"},
		{"zip named csv", "ledger.csv", wb, Spreadsheet, "file_type_mismatch"},
		{"text named xlsx", "ledger.xlsx", []byte("a,b\n"), Spreadsheet, "file_type_mismatch"},
		{"binary named csv", "ledger.csv", append([]byte("a,b\n"), 0, 1, 2), Spreadsheet, "file_type_mismatch"},
		{"legacy OLE workbook named xlsx", "ledger.xlsx", append(append([]byte{}, magicOLE...), make([]byte, 600)...), Spreadsheet, "file_type_mismatch"},
		{"truncated zip", "ledger.xlsx", wb[:len(wb)/2], Spreadsheet, "malformed_file"},
		{"executable", "tool.exe", []byte("MZ\x90\x00"), Spreadsheet, "unsupported_file_type"},
		{"pdf where spreadsheets go", "scan.pdf", []byte("%PDF-1.7"), Spreadsheet, "unsupported_file_type"},
		{"html named pdf", "scan.pdf", []byte("<html><script>alert(1)</script>"), Document, "file_type_mismatch"},
	}
	for _, c := range cases {
		_, err := check(c.p, c.data, c.file)
		if got := code(err); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// Headers that understate an entry's size are not trusted: the entry is
// inflated with a budget.
func TestLyingSizesAreCaught(t *testing.T) {
	wb := workbook(t)
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	zr, _ := zip.NewReader(bytes.NewReader(wb), int64(len(wb)))
	for _, f := range zr.File {
		raw, _ := f.OpenRaw()
		w, _ := zw.CreateRaw(&f.FileHeader)
		var b bytes.Buffer
		_, _ = b.ReadFrom(raw)
		_, _ = w.Write(b.Bytes())
	}
	// a 4 MiB entry whose header claims 10 bytes
	comp := deflate(t, make([]byte, 4<<20))
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "xl/media/big.xml", Method: zip.Deflate, CompressedSize64: uint64(len(comp)), UncompressedSize64: 10, CRC32: 0})
	_, _ = w.Write(comp)
	_ = zw.Close()
	if _, err := check(Spreadsheet, out.Bytes(), "ledger.xlsx"); code(err) != "zip_bomb" && code(err) != "malformed_file" {
		t.Fatalf("got %v", err)
	}
}

func TestFromRequest(t *testing.T) {
	wb := workbook(t)
	req := func(name string, data []byte) *http.Request {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(data)
		_ = mw.Close()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/programs/X/ledger", &body)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		return r
	}
	f, err := Spreadsheet.FromRequest(httptest.NewRecorder(), req(`C:\Users\kim\ledger.xlsx`, wb), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Kind != XLSX || f.Size != int64(len(wb)) || len(f.SHA256) != 64 || f.Name != "ledger.xlsx" {
		t.Fatalf("%+v", f)
	}
	var back bytes.Buffer
	_, _ = back.ReadFrom(f)
	if !bytes.Equal(back.Bytes(), wb) {
		t.Fatal("file not readable from the start after checking")
	}
	small := Policy{MaxBytes: 100, Kinds: []Kind{CSV}}
	if _, err := small.FromRequest(httptest.NewRecorder(), req("a.csv", bytes.Repeat([]byte("a,b\n"), 1<<19)), "file"); code(err) != "file_too_large" {
		t.Fatalf("oversized body: %v", err)
	}
	if _, err := Spreadsheet.FromRequest(httptest.NewRecorder(), req("a.csv", []byte("x")), "other"); code(err) != "file_required" {
		t.Fatalf("missing field: %v", err)
	}
	var e *models.Error
	_, err = Spreadsheet.FromRequest(httptest.NewRecorder(), req("a.xlsm", wb), "file")
	if !errors.As(err, &e) || e.Kind != models.EINVALID || e.Fields["file"] != "macro_not_allowed" {
		t.Fatalf("macro file: %v", err)
	}
}
