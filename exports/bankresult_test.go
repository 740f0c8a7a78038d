package exports

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/korean"
)

func parseAll(t *testing.T, data []byte, format ResultFormat) ([]TransferResult, error) {
	t.Helper()
	var got []TransferResult
	err := ParseBankResults(bytes.NewReader(data), format, func(r TransferResult) error {
		got = append(got, r)
		return nil
	})
	return got, err
}

var wantResults = []TransferResult{
	{2, "PB-001-0001", "0123456789012", 1_290_000, "0000", "정상처리"},
	{3, "PB-001-0002", "110123456789", 762_340, "E101", "계좌번호 오류"},
	{5, "PB-001-0003", "3333012345678", 30_000, "0000", ""},
}

const resultCSV = "이체키,입금계좌번호,이체금액,결과코드,결과메시지\n" +
	"PB-001-0001,012-3456-789012,\"1,290,000\",0000,정상처리\n" +
	"PB-001-0002,110123456789,762340,E101,계좌번호 오류\n" +
	"\n" + // blank lines are skipped but still counted
	"PB-001-0003,3333012345678,30000,0000\n"

func TestParseResultsCSV(t *testing.T) {
	cp949, err := korean.EUCKR.NewEncoder().String(resultCSV)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"utf-8":     resultCSV,
		"utf-8 BOM": "\ufeff" + strings.Replace(resultCSV, "결과코드", "결과 코드", 1),
		"cp949":     cp949,
	} {
		got, err := parseAll(t, []byte(data), CSV)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Equal(got, wantResults) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, wantResults)
		}
	}
}

func TestParseResultsXLSX(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{
		{"거래고유번호", "계좌번호", "금액", "응답코드", "응답메시지"},
		{"PB-001-0001", "0123456789012", 1_290_000, "0000", "정상처리"}, // amount as a number cell
		{"PB-001-0002", "110-123-456789", "762,340", "E101", "계좌번호 오류"},
		{},
		{"PB-001-0003", "3333012345678", int64(30_000), "0000"},
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	// A displayed format must not leak into the parsed amount.
	style, _ := f.NewStyle(&excelize.Style{NumFmt: 3})
	_ = f.SetCellStyle("Sheet1", "C2", "C5", style)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := parseAll(t, buf.Bytes(), XLSX)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, wantResults) {
		t.Errorf("\n got %v\nwant %v", got, wantResults)
	}
}

func TestParseResultsUnknownAndMissingHeaders(t *testing.T) {
	_, err := parseAll(t, []byte("이체키,계좌,금액,결과코드,수수료,이체키\nK,1234567890,1,0000,0,K\n"), CSV)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	want := []RowError{
		{1, "계좌", "알 수 없는 열입니다 (허용: 이체키/거래고유번호, 계좌번호/입금계좌번호, 금액/이체금액, 결과코드, 결과메시지)"},
		{1, "수수료", "알 수 없는 열입니다 (허용: 이체키/거래고유번호, 계좌번호/입금계좌번호, 금액/이체금액, 결과코드, 결과메시지)"},
		{1, "이체키", "\"이체키\" 열과 같은 항목이 두 번 있습니다"},
		{1, "계좌번호", "필수 열이 없습니다"},
	}
	if !slices.Equal(verr.Errors, want) {
		t.Errorf("\n got %v\nwant %v", verr.Errors, want)
	}
	for _, data := range []string{"", "\n\n"} {
		if _, err := parseAll(t, []byte(data), CSV); !errors.As(err, &verr) {
			t.Errorf("empty file %q: err = %v", data, err)
		}
	}
}

func TestParseResultsReportsEveryBadRow(t *testing.T) {
	data := "이체키,계좌번호,금액,결과코드,결과메시지\n" +
		"PB-1,1234567890,1000,0000,ok\n" +
		"PB-2,12-34,12.5,,x\n" +
		"PB-1,1234567890,-100,0000,dup\n" +
		"PB-3,1234567890,,0000,x,extra\n" +
		"PB-4,1234567890,99999999999999999999,0000,x\n" +
		"PB-5,1234567890,0,0000,x\n"
	var yielded []string
	err := ParseBankResults(strings.NewReader(data), CSV, func(r TransferResult) error {
		yielded = append(yielded, r.Key)
		return nil
	})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v", err)
	}
	want := []RowError{
		{3, "계좌번호", "계좌번호는 숫자 10~16자리여야 합니다"},
		{3, "금액", "금액은 원 단위 양의 정수여야 합니다"},
		{3, "결과코드", "결과코드가 비어 있습니다"},
		{4, "이체키", "이체키 중복 (2행과 같음)"},
		{4, "금액", "금액은 원 단위 양의 정수여야 합니다"},
		{5, "F열", "머리글 없는 열에 값이 있습니다"},
		{5, "금액", "금액이 비어 있습니다"},
		{6, "금액", "금액이 너무 큽니다"},
		{7, "금액", "금액은 0보다 커야 합니다"},
	}
	if !slices.Equal(verr.Errors, want) {
		t.Errorf("\n got %v\nwant %v", verr.Errors, want)
	}
	if !slices.Equal(yielded, []string{"PB-1"}) {
		t.Errorf("yielded %q; nothing after the first bad row may be yielded", yielded)
	}

	if _, err := parseAll(t, []byte("이체키,계좌번호,금액,결과코드\n\"PB-1,1234567890\n"), CSV); !errors.As(err, &verr) || verr.Errors[0].Row != 2 {
		t.Errorf("broken quote: err = %v", err)
	}
	stop := errors.New("stop")
	if err := ParseBankResults(strings.NewReader(resultCSV), CSV, func(TransferResult) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("yield error not returned: %v", err)
	}
}

func TestParseResultsLimits(t *testing.T) {
	huge := io.LimitReader(zeroReader{}, MaxResultFileBytes+1)
	if err := ParseBankResults(huge, XLSX, func(TransferResult) error { return nil }); !errors.Is(err, errTooLarge) {
		t.Errorf("oversized xlsx: err = %v", err)
	}
	if err := ParseBankResults(strings.NewReader("not a zip"), XLSX, func(TransferResult) error { return nil }); err == nil {
		t.Error("garbage accepted as xlsx")
	}
	for name, want := range map[string]ResultFormat{"결과.XLSX": XLSX, "r.csv": CSV} {
		if got, err := ResultFormatOf(name); err != nil || got != want {
			t.Errorf("ResultFormatOf(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ResultFormatOf("r.xls"); err == nil {
		t.Error(".xls accepted")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
