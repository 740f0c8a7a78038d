package exports

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

var payDate = time.Date(2025, 11, 3, 0, 0, 0, 0, KST)

func transfers() []Transfer {
	return []Transfer{
		{"004", "012-3456-789012", "김대전", 1_290_000, "우체국쇼핑피해지원금", "=우체국 지원", "PB-001-0001"},
		{"088", "110123456789", "이강원", 762_340, "피해지원", "피해지원", "PB-001-0002"},
		{"090", "3333012345678", "박제주", 30_000, "", "", "PB-001-0003"},
	}
}

func batchOf(ts []Transfer) BankBatch {
	b := BankBatch{ID: "PB-001", PayDate: payDate, Count: len(ts)}
	for _, t := range ts {
		b.Total += t.Amount
	}
	return b
}

func TestBankTemplates(t *testing.T) {
	want := []string{"004", "088", "020", "081", "011"}
	if got := SupportedBanks(); !slices.Equal(got, want) {
		t.Fatalf("SupportedBanks = %q, want %q", got, want)
	}
	layouts := map[string]bool{}
	for _, code := range want {
		m, err := BankFileFor(code)
		if err != nil {
			t.Fatal(err)
		}
		if m.BankCode != code || m.BankName != BankName(code) || m.Version == "" || m.Sheet == "" {
			t.Errorf("%s: incomplete template %+v", code, m)
		}
		fields := map[BankField]int{}
		for _, c := range m.Columns {
			fields[c.Field]++
		}
		for _, f := range []BankField{FieldBankCode, FieldAccount, FieldHolder, FieldAmount, FieldRecipientMemo, FieldSenderMemo, FieldKey} {
			if fields[f] != 1 {
				t.Errorf("%s: field %d appears %d times", code, f, fields[f])
			}
		}
		layouts[strings.Join(headers(bankColumns(m)), "|")] = true
		m.Columns[0].Header = "changed"
		if again, _ := BankFileFor(code); again.Columns[0].Header == "changed" {
			t.Errorf("%s: BankFileFor hands out shared state", code)
		}
	}
	if len(layouts) != len(want) {
		t.Errorf("%d distinct layouts for %d banks", len(layouts), len(want))
	}
	_, err := BankFileFor("090")
	if err == nil || !strings.Contains(err.Error(), "카카오뱅크") || !strings.Contains(err.Error(), "004, 088") {
		t.Errorf("unsupported bank error = %v", err)
	}
	if _, err := BankFileFor("999"); err == nil || !strings.Contains(err.Error(), "알 수 없는 은행") {
		t.Errorf("unknown bank error = %v", err)
	}
}

func bankColumns(m ColumnMap) []Column {
	cols := make([]Column, len(m.Columns))
	for i, c := range m.Columns {
		cols[i] = Column{Header: c.Header, Kind: bankFieldKind(c.Field)}
	}
	return cols
}

func TestBankFileEveryBank(t *testing.T) {
	ts := transfers()
	for _, code := range SupportedBanks() {
		t.Run(code, func(t *testing.T) {
			m, _ := BankFileFor(code)
			wb := newWorkbook(t)
			if err := WriteBankFile(wb, m, batchOf(ts), seq(ts...)); err != nil {
				t.Fatal(err)
			}
			f := saveAndOpen(t, wb)
			if got := f.x.GetSheetList(); got[0] != m.Sheet {
				t.Fatalf("first sheet %q, want %q", got[0], m.Sheet)
			}
			const headerRow = 5
			f.checkTable(t, m.Sheet, 0, headerRow, headers(bankColumns(m)), len(ts))
			rows := f.rows(t, m.Sheet)
			if len(rows) != headerRow+len(ts) {
				t.Errorf("%d rows, want control block + header + %d lines and no total row", len(rows), len(ts))
			}
			control := [][]string{
				{"은행", m.BankName + " (" + code + ")", "양식 버전", m.Version},
				{"배치번호", "PB-001", "이체일", "2025-11-03"},
				{m.CountLabel, "3", m.TotalLabel, "2,082,340"},
			}
			for i, w := range control {
				if !slices.Equal(rows[i], w) {
					t.Errorf("control row %d = %q, want %q", i+1, rows[i], w)
				}
			}
			if v := f.raw1(t, m.Sheet, "D3"); v != "2082340" {
				t.Errorf("control total raw = %q", v)
			}
			for i, tr := range ts {
				line := headerRow + 1 + i
				for j, c := range m.Columns {
					cell, _ := excelize.CoordinatesToCellName(j+1, line)
					got := f.raw1(t, m.Sheet, cell)
					var want string
					switch c.Field {
					case FieldSeq:
						want = strconv.Itoa(i + 1)
					case FieldBankCode:
						want = tr.BankCode
					case FieldAccount:
						want = strings.ReplaceAll(tr.Account, "-", "")
					case FieldHolder:
						want = tr.Holder
					case FieldAmount:
						want = strconv.FormatInt(tr.Amount, 10)
					case FieldRecipientMemo:
						want = memo(tr.RecipientMemo, c.MaxRunes)
					case FieldSenderMemo:
						want = memo(tr.SenderMemo, c.MaxRunes)
					case FieldKey:
						want = tr.Key
					}
					if got != want {
						t.Errorf("%s (%s) = %q, want %q", cell, c.Header, got, want)
					}
					ct := f.cellType(t, m.Sheet, cell)
					isNumber := c.Field == FieldAmount || c.Field == FieldSeq
					if isNumber != (ct == excelize.CellTypeUnset) || (c.Field == FieldAccount || c.Field == FieldBankCode) && ct != excelize.CellTypeInlineString {
						t.Errorf("%s (%s) cell type %v", cell, c.Header, ct)
					}
					if c.MaxRunes > 0 && len([]rune(got)) > c.MaxRunes {
						t.Errorf("%s (%s) = %q exceeds %d characters", cell, c.Header, got, c.MaxRunes)
					}
				}
			}
			info := f.info(t)
			if info["이체 양식"] != m.BankName+" "+m.Version || info["이체 총액"] != "2,082,340" || info[m.Sheet+" 행 수"] != "3" {
				t.Errorf("정보 %v", info)
			}
		})
	}
}

func TestBankFileMemoNeutralisedWithinLimit(t *testing.T) {
	if got := memo("=우체국 지원", 7); got != "'=우체국 지" {
		t.Errorf("memo = %q", got)
	}
	if got := memo("=우체국쇼핑피해지원금", 7); got != "'=우체국쇼핑" {
		t.Errorf("memo = %q", got)
	}
}

func TestBankFileRefusesMismatchAndBadLines(t *testing.T) {
	m, _ := BankFileFor("004")
	ts := transfers()

	for name, b := range map[string]BankBatch{
		"count": {ID: "PB-001", PayDate: payDate, Count: 4, Total: batchOf(ts).Total},
		"total": {ID: "PB-001", PayDate: payDate, Count: 3, Total: batchOf(ts).Total + 10},
	} {
		wb := newWorkbook(t)
		err := WriteBankFile(wb, m, b, seq(ts...))
		if err == nil || !strings.Contains(err.Error(), "does not match batch") {
			t.Errorf("%s mismatch: err = %v", name, err)
		}
		if _, _, err := wb.Save(io.Discard); err == nil {
			t.Errorf("%s mismatch: workbook saved", name)
		}
	}

	bad := append(transfers(),
		Transfer{"4", "12345", "", 0, "", "", "PB-001-0001"},
		Transfer{"004", "1234567890", "정상", 10, "", "", "has space"},
	)
	wb := newWorkbook(t)
	err := WriteBankFile(wb, m, batchOf(bad), seq(bad...))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	want := []RowError{
		{9, "입금은행코드", "은행코드는 숫자 3자리여야 합니다"},
		{9, "입금계좌번호", "계좌번호는 숫자 10~16자리여야 합니다"},
		{9, "예금주", "예금주가 비어 있습니다"},
		{9, "이체금액", "이체금액은 0보다 커야 합니다"},
		{9, "이체키", "이체키 중복 (6행과 같음)"},
		{10, "이체키", "이체키에 공백이나 제어문자가 있습니다"},
	}
	if !slices.Equal(verr.Errors, want) {
		t.Errorf("errors\n got %v\nwant %v", verr.Errors, want)
	}
	if _, _, err := wb.Save(io.Discard); err == nil {
		t.Error("workbook with invalid lines saved")
	}
}
