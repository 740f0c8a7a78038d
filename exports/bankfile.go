package exports

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// BankField is what a bank-file column carries.
type BankField uint8

const (
	FieldSeq           BankField = iota + 1 // 1-based line number
	FieldBankCode                           // payee's bank, 3 digits
	FieldAccount                            // payee's account, digits only
	FieldHolder                             // account holder
	FieldAmount                             // won
	FieldRecipientMemo                      // text on the payee's statement
	FieldSenderMemo                         // text on our statement
	FieldKey                                // transfer key (idempotency key) echoed in the bank's result file
)

// BankColumn is one column of a bank's bulk-transfer upload.
type BankColumn struct {
	Header   string
	Field    BankField
	MaxRunes int // the bank's display limit for memo text; 0 = none
}

// ColumnMap is a bank's bulk-transfer (대량이체) upload template as we model
// it: header names, column order and memo limits of the agencies' templates,
// versioned so a file can always be traced to the layout it was made for.
// When a bank changes its template, add a new version instead of editing one.
// The layouts must be checked against each bank's current template before a
// live run; the bank's uploader is the authority.
type ColumnMap struct {
	BankCode   string // the bank holding the debit account, whose uploader reads the file
	BankName   string
	Version    string
	Sheet      string // sheet name the uploader looks for
	CountLabel string // control block: number of transfers
	TotalLabel string // control block: total amount
	Columns    []BankColumn
}

var bankMaps = []ColumnMap{
	{
		BankCode: "004", BankName: "KB국민은행", Version: "KB-BULK-2024.1", Sheet: "대량이체",
		CountLabel: "총건수", TotalLabel: "총금액",
		Columns: []BankColumn{
			{"입금은행코드", FieldBankCode, 0}, {"입금계좌번호", FieldAccount, 0}, {"예금주", FieldHolder, 0},
			{"이체금액", FieldAmount, 0}, {"받는분통장표시", FieldRecipientMemo, 7},
			{"보내는분통장표시", FieldSenderMemo, 7}, {"이체키", FieldKey, 0},
		},
	},
	{
		BankCode: "088", BankName: "신한은행", Version: "SHB-MASS-3.2", Sheet: "이체목록",
		CountLabel: "총 이체건수", TotalLabel: "총 이체금액",
		Columns: []BankColumn{
			{"순번", FieldSeq, 0}, {"은행코드", FieldBankCode, 0}, {"계좌번호", FieldAccount, 0},
			{"이체금액", FieldAmount, 0}, {"예금주명", FieldHolder, 0}, {"입금통장메모", FieldRecipientMemo, 10},
			{"출금통장메모", FieldSenderMemo, 10}, {"거래고유번호", FieldKey, 0},
		},
	},
	{
		BankCode: "020", BankName: "우리은행", Version: "WRB-BULK-2023.2", Sheet: "Sheet1",
		CountLabel: "건수", TotalLabel: "합계금액",
		Columns: []BankColumn{
			{"순번", FieldSeq, 0}, {"입금은행", FieldBankCode, 0}, {"입금계좌", FieldAccount, 0},
			{"받는분", FieldHolder, 0}, {"금액", FieldAmount, 0}, {"받는통장메모", FieldRecipientMemo, 10},
			{"내통장메모", FieldSenderMemo, 10}, {"이체키", FieldKey, 0},
		},
	},
	{
		BankCode: "081", BankName: "하나은행", Version: "HANA-DT-2.0", Sheet: "다건이체",
		CountLabel: "총 건수", TotalLabel: "총 입금액",
		Columns: []BankColumn{
			{"입금은행코드", FieldBankCode, 0}, {"입금계좌번호", FieldAccount, 0}, {"입금액", FieldAmount, 0},
			{"수취인성명", FieldHolder, 0}, {"입금인표시", FieldRecipientMemo, 6},
			{"출금통장표시", FieldSenderMemo, 6}, {"이체키", FieldKey, 0},
		},
	},
	{
		BankCode: "011", BankName: "NH농협은행", Version: "NH-BULK-2024.3", Sheet: "일괄이체",
		CountLabel: "이체건수", TotalLabel: "이체총액",
		Columns: []BankColumn{
			{"은행코드", FieldBankCode, 0}, {"계좌번호", FieldAccount, 0}, {"예금주", FieldHolder, 0},
			{"금액", FieldAmount, 0}, {"입금표시내용", FieldRecipientMemo, 8},
			{"출금표시내용", FieldSenderMemo, 8}, {"비고(이체키)", FieldKey, 0},
		},
	},
}

// SupportedBanks lists the banks with a bulk-transfer template, by code.
func SupportedBanks() []string {
	codes := make([]string, len(bankMaps))
	for i, m := range bankMaps {
		codes[i] = m.BankCode
	}
	return codes
}

// BankFileFor returns the current bulk-transfer template of the bank holding
// the debit account. The result is a copy; changing it affects nothing else.
func BankFileFor(bankCode string) (ColumnMap, error) {
	for _, m := range bankMaps {
		if m.BankCode == bankCode {
			m.Columns = slices.Clone(m.Columns)
			return m, nil
		}
	}
	name := BankName(bankCode)
	if name == "" {
		name = "알 수 없는 은행"
	}
	return ColumnMap{}, fmt.Errorf("exports: no bulk-transfer template for bank %q (%s); supported: %s",
		bankCode, name, strings.Join(SupportedBanks(), ", "))
}

// Transfer is one line of a bulk-transfer file.
type Transfer struct {
	BankCode      string // payee's bank
	Account       string // hyphens and spaces are removed
	Holder        string
	Amount        int64
	RecipientMemo string
	SenderMemo    string
	Key           string // the payout line's idempotency key
}

// BankBatch is the approved payout batch a bank file carries. Count and Total
// are the approved figures: they go into the control block before any line
// is written, and the file is refused unless the lines add up to them.
type BankBatch struct {
	ID      string
	PayDate time.Time
	Count   int
	Total   int64
}

// WriteBankFile adds the bulk-transfer sheet for template m: a control block
// (bank, template version, batch, count, total) above the column headers, then
// one line per transfer. It validates every line (bank code, account, holder,
// amount, unique key), reports invalid lines by row and column as a
// *ValidationError, and fails when the lines do not match the batch's count
// and total; after any failure the workbook cannot be saved.
func WriteBankFile(wb *Workbook, m ColumnMap, b BankBatch, transfers iter.Seq2[Transfer, error]) error {
	cols := make([]Column, len(m.Columns))
	amountCol := -1
	for i, c := range m.Columns {
		cols[i] = Column{Header: c.Header, Kind: bankFieldKind(c.Field), Width: bankFieldWidth(c.Field)}
		if c.Field == FieldAmount {
			amountCol = i
		}
	}
	if amountCol < 0 {
		return fmt.Errorf("exports: bank template %s has no amount column", m.Version)
	}
	if b.ID == "" || b.PayDate.IsZero() || b.Count < 0 {
		return fmt.Errorf("exports: bank file needs the batch ID, pay date and approved count")
	}
	s, err := wb.NewSheet(SheetSpec{
		Name:    m.Sheet,
		Columns: cols,
		Preamble: [][]any{
			{"은행", m.BankName + " (" + m.BankCode + ")", "양식 버전", m.Version},
			{"배치번호", b.ID, "이체일", b.PayDate},
			{m.CountLabel, int64(b.Count), m.TotalLabel, b.Total},
			nil,
		},
		NoTotalRow: true, // the uploader would read a total row as a transfer
	})
	if err != nil {
		return err
	}
	var (
		verr   ValidationError
		seen   = make(map[string]int) // transfer key → row, to refuse paying anyone twice
		values = make([]any, len(cols))
		row    = s.header
	)
	for t, err := range transfers {
		if err != nil {
			return s.fail(fmt.Errorf("exports: bank file: reading transfers: %w", err))
		}
		row++
		t.Account = accountSeparators.Replace(t.Account)
		for _, p := range checkTransfer(t) {
			verr.add(row, headerFor(m, p.field), p.msg)
		}
		if t.Key != "" {
			if first, dup := seen[t.Key]; dup {
				verr.add(row, headerFor(m, FieldKey), fmt.Sprintf("이체키 중복 (%d행과 같음)", first))
			} else {
				seen[t.Key] = row
			}
		}
		if len(verr.Errors) > 0 {
			continue // keep validating to report every bad line, but write no more
		}
		for i, c := range m.Columns {
			values[i] = transferValue(t, c, row-s.header)
		}
		if err := s.WriteRow(values); err != nil {
			return err
		}
	}
	if len(verr.Errors) > 0 {
		return s.fail(&verr)
	}
	if s.Rows() != b.Count || s.Sum(amountCol) != b.Total {
		return s.fail(fmt.Errorf("exports: bank file does not match batch %s: %d건 %d원 written, %d건 %d원 approved",
			b.ID, s.Rows(), s.Sum(amountCol), b.Count, b.Total))
	}
	wb.AddInfo("이체 양식", m.BankName+" "+m.Version)
	wb.AddInfo("이체 배치", b.ID)
	wb.AddInfo("이체 총액", b.Total)
	return s.Close()
}

type problem struct {
	field BankField
	msg   string
}

func checkTransfer(t Transfer) []problem {
	var ps []problem
	if !isDigits(t.BankCode) || len(t.BankCode) != 3 {
		ps = append(ps, problem{FieldBankCode, "은행코드는 숫자 3자리여야 합니다"})
	}
	if msg := checkAccount(t.Account); msg != "" {
		ps = append(ps, problem{FieldAccount, msg})
	}
	if strings.TrimSpace(t.Holder) == "" {
		ps = append(ps, problem{FieldHolder, "예금주가 비어 있습니다"})
	}
	if t.Amount <= 0 {
		ps = append(ps, problem{FieldAmount, "이체금액은 0보다 커야 합니다"})
	}
	if msg := checkKey(t.Key); msg != "" {
		ps = append(ps, problem{FieldKey, msg})
	}
	return ps
}

// accountSeparators are what people and banks put between account digits.
var accountSeparators = strings.NewReplacer("-", "", " ", "")

// checkAccount accepts the 10–16 digit account numbers Korean banks issue.
func checkAccount(digits string) string {
	if !isDigits(digits) || len(digits) < 10 || len(digits) > 16 {
		return "계좌번호는 숫자 10~16자리여야 합니다"
	}
	return ""
}

func checkKey(key string) string {
	switch {
	case key == "":
		return "이체키가 비어 있습니다"
	case len(key) > 64:
		return "이체키는 64자 이하여야 합니다"
	case strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return "이체키에 공백이나 제어문자가 있습니다"
	}
	return ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func transferValue(t Transfer, c BankColumn, seq int) any {
	switch c.Field {
	case FieldSeq:
		return int64(seq)
	case FieldBankCode:
		return t.BankCode
	case FieldAccount:
		return t.Account
	case FieldHolder:
		return t.Holder
	case FieldAmount:
		return t.Amount
	case FieldRecipientMemo:
		return memo(t.RecipientMemo, c.MaxRunes)
	case FieldSenderMemo:
		return memo(t.SenderMemo, c.MaxRunes)
	case FieldKey:
		return t.Key
	}
	return nil
}

// memo neutralises display text first and then cuts it to the bank's limit,
// so the quote a neutralised memo gains cannot push it over the limit.
func memo(s string, max int) string {
	s = Neutralize(s)
	if max > 0 && utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max])
	}
	return s
}

func bankFieldKind(f BankField) Kind {
	switch f {
	case FieldSeq:
		return Integer
	case FieldAmount:
		return Amount
	case FieldBankCode, FieldAccount:
		return Account
	}
	return Text
}

func bankFieldWidth(f BankField) float64 {
	switch f {
	case FieldSeq, FieldBankCode:
		return 10
	case FieldKey:
		return 26
	}
	return 0
}

func headerFor(m ColumnMap, f BankField) string {
	for _, c := range m.Columns {
		if c.Field == f {
			return c.Header
		}
	}
	return ""
}
