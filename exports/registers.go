package exports

import (
	"fmt"
	"iter"
	"strings"
	"time"
)

// ClaimRow is one line of the claims register. Amounts are int64 won.
type ClaimRow struct {
	ReceiptNo      string
	BRN            string // 10 digits; shown as 123-45-67890
	BusinessName   string
	Representative string
	Category       string // display label
	Region         string
	Status         string // API status code; shown with its Korean label
	ClaimedLoss    int64
	EstimatedLoss  int64
	Approved       int64 // approved compensation
	Prepurchase    int64 // pre-purchase allocated
	FeeWaived      int64
	OwedTotal      int64
	PaidTotal      int64
	ReceivedAt     time.Time
}

var claimColumns = []Column{
	{"접수번호", Text, 18}, {"사업자등록번호", Account, 14}, {"상호", Text, 24},
	{"대표자", Text, 10}, {"업종", Text, 12}, {"지역", Text, 8}, {"상태", Text, 12},
	{"신청금액", Amount, 0}, {"추정손실", Amount, 0}, {"승인보상액", Amount, 0},
	{"선매입배정액", Amount, 0}, {"수수료면제액", Amount, 0}, {"지급예정액", Amount, 0},
	{"지급액", Amount, 0}, {"접수일시", DateTime, 0},
}

// WriteClaims adds the claims register sheet "피해접수대장".
func WriteClaims(wb *Workbook, rows iter.Seq2[ClaimRow, error]) error {
	return writeSheet(wb, SheetSpec{Name: "피해접수대장", Columns: claimColumns}, rows,
		func(c ClaimRow, v []any) {
			v[0], v[1], v[2], v[3], v[4], v[5], v[6] = c.ReceiptNo, FormatBRN(c.BRN), c.BusinessName,
				c.Representative, c.Category, c.Region, StatusLabel(c.Status)
			v[7], v[8], v[9], v[10], v[11], v[12], v[13] = c.ClaimedLoss, c.EstimatedLoss, c.Approved,
				c.Prepurchase, c.FeeWaived, c.OwedTotal, c.PaidTotal
			v[14] = c.ReceivedAt
		})
}

// Tranche is a pre-purchase tranche whose allocation is exported.
type Tranche struct {
	Name   string // e.g. "1차"
	Budget int64
}

// AllocationLine is one purchase-order line of a tranche's allocation.
type AllocationLine struct {
	OrderNo      string // purchase order number
	ReceiptNo    string
	BRN          string
	BusinessName string
	SKU          string
	ItemName     string
	Perishable   bool
	UnitPrice    int64
	Quantity     int64
	Amount       int64 // UnitPrice × Quantity, as the allocation rule computed it
}

var allocationColumns = []Column{
	{"발주번호", Text, 18}, {"접수번호", Text, 18}, {"사업자등록번호", Account, 14}, {"상호", Text, 24},
	{"품목코드", Text, 12}, {"품명", Text, 24}, {"신선식품", Text, 8},
	{"단가", Integer, 12}, {"수량", Integer, 0}, {"금액", Amount, 0},
}

// WriteAllocations adds one tranche's allocation sheet ("선매입 <name>") with
// its purchase-order lines, and the tranche's budget, allocated total and
// remainder to the 정보 sheet. It fails rather than export a line whose
// amount is not unit price × quantity, or an allocation above the budget.
func WriteAllocations(wb *Workbook, t Tranche, lines iter.Seq2[AllocationLine, error]) error {
	name := SheetName("선매입 " + t.Name)
	checked := func(yield func(AllocationLine, error) bool) {
		for l, err := range lines {
			if err == nil && l.UnitPrice*l.Quantity != l.Amount {
				err = fmt.Errorf("order %s item %s: amount %d ≠ %d × %d", l.OrderNo, l.SKU, l.Amount, l.UnitPrice, l.Quantity)
			}
			if !yield(l, err) {
				return
			}
		}
	}
	var allocated int64
	err := writeSheet(wb, SheetSpec{Name: name, Columns: allocationColumns}, checked,
		func(l AllocationLine, v []any) {
			v[0], v[1], v[2], v[3], v[4], v[5] = l.OrderNo, l.ReceiptNo, FormatBRN(l.BRN), l.BusinessName, l.SKU, l.ItemName
			v[6] = yesNo(l.Perishable)
			v[7], v[8], v[9] = l.UnitPrice, l.Quantity, l.Amount
			allocated += l.Amount
		})
	if err != nil {
		return err
	}
	if allocated > t.Budget {
		return wb.fail(fmt.Errorf("exports: tranche %q allocates %d won over its budget of %d", t.Name, allocated, t.Budget))
	}
	wb.AddInfo(name+" 예산", t.Budget)
	wb.AddInfo(name+" 배정 합계", allocated)
	wb.AddInfo(name+" 미배정", t.Budget-allocated)
	return nil
}

func yesNo(b bool) string {
	if b {
		return "예"
	}
	return "아니오"
}

// Period is an inclusive range of calendar days.
type Period struct{ From, To time.Time }

func (p Period) String() string {
	return p.From.In(KST).Format("2006-01-02") + " ~ " + p.To.In(KST).Format("2006-01-02")
}

// FeeWaiverRow is one merchant's waived commission over the promotion.
type FeeWaiverRow struct {
	ReceiptNo    string
	BRN          string
	BusinessName string
	Category     string
	Sales        int64 // gross sales in the promotion period
	RateBP       int64 // commission rate in basis points (600 = 6%)
	Waived       int64
}

var feeWaiverColumns = []Column{
	{"접수번호", Text, 18}, {"사업자등록번호", Account, 14}, {"상호", Text, 24}, {"업종", Text, 12},
	{"기간 매출액", Amount, 0}, {"수수료율(bp)", Integer, 12}, {"수수료 면제액", Amount, 0},
}

// WriteFeeWaivers adds the fee-waiver sheet "수수료면제" and records the
// promotion period on the 정보 sheet.
func WriteFeeWaivers(wb *Workbook, promotion Period, rows iter.Seq2[FeeWaiverRow, error]) error {
	wb.AddInfo("수수료 면제 기간", promotion.String())
	return writeSheet(wb, SheetSpec{Name: "수수료면제", Columns: feeWaiverColumns}, rows,
		func(r FeeWaiverRow, v []any) {
			v[0], v[1], v[2], v[3] = r.ReceiptNo, FormatBRN(r.BRN), r.BusinessName, r.Category
			v[4], v[5], v[6] = r.Sales, r.RateBP, r.Waived
		})
}

// PayoutRow is one payout line.
type PayoutRow struct {
	BatchID       string
	ReceiptNo     string
	BRN           string
	BusinessName  string
	BankCode      string
	Account       string // the full number; masked on the sheet unless FullAccounts
	Holder        string
	Amount        int64
	Status        string // display label
	FailureReason string
	TransferKey   string
	PaidAt        time.Time
}

// AccountView says whether a payout sheet shows full account numbers, which
// only roles that need them may receive.
type AccountView uint8

const (
	MaskedAccounts AccountView = iota
	FullAccounts
)

var payoutColumns = []Column{
	{"지급차수", Text, 14}, {"접수번호", Text, 18}, {"사업자등록번호", Account, 14}, {"상호", Text, 24},
	{"은행코드", Account, 8}, {"은행명", Text, 12}, {"계좌번호", Account, 18}, {"예금주", Text, 12},
	{"지급액", Amount, 0}, {"상태", Text, 10}, {"실패사유", Text, 24}, {"이체키", Text, 24},
	{"지급일시", DateTime, 0},
}

// WritePayouts adds the payout sheet "지급내역". The 정보 sheet records whether
// account numbers were exported in full, for the auditor.
func WritePayouts(wb *Workbook, view AccountView, rows iter.Seq2[PayoutRow, error]) error {
	mask := view != FullAccounts
	if mask {
		wb.AddInfo("계좌번호 표시", "마스킹")
	} else {
		wb.AddInfo("계좌번호 표시", "전체 (권한자용)")
	}
	return writeSheet(wb, SheetSpec{Name: "지급내역", Columns: payoutColumns}, rows,
		func(p PayoutRow, v []any) {
			account := p.Account
			if mask {
				account = MaskAccount(account)
			}
			v[0], v[1], v[2], v[3] = p.BatchID, p.ReceiptNo, FormatBRN(p.BRN), p.BusinessName
			v[4], v[5], v[6], v[7] = p.BankCode, BankName(p.BankCode), account, p.Holder
			v[8], v[9], v[10], v[11], v[12] = p.Amount, p.Status, p.FailureReason, p.TransferKey, p.PaidAt
		})
}

// writeSheet streams rows into a new sheet through fill, which sets the
// row's values in a slice reused for every row.
func writeSheet[T any](wb *Workbook, spec SheetSpec, rows iter.Seq2[T, error], fill func(T, []any)) error {
	s, err := wb.NewSheet(spec)
	if err != nil {
		return err
	}
	values := make([]any, len(spec.Columns))
	for r, err := range rows {
		if err != nil {
			return s.fail(fmt.Errorf("exports: sheet %q: reading rows: %w", spec.Name, err))
		}
		fill(r, values)
		if err := s.WriteRow(values); err != nil {
			return err
		}
	}
	return s.Close()
}

// SheetName makes user text (a tranche name) a valid, safe sheet name: the
// characters Excel forbids become "_", and it is cut to Excel's 31 characters.
func SheetName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) || r < 0x20 {
			return '_'
		}
		return r
	}, s)
	s = strings.Trim(s, "' ")
	if r := []rune(s); len(r) > 31 {
		s = string(r[:31])
	}
	if s == "" {
		s = "_"
	}
	return s
}

var statusLabels = map[string]string{
	"received": "접수", "verifying": "검증 중", "in_review": "심사 중", "info_requested": "보완 요청",
	"pending_second_approval": "2차 승인 대기", "auto_approved": "자동 승인", "approved": "승인",
	"rejected": "반려", "appealed": "이의신청", "entitled": "지급 확정", "paying": "지급 중",
	"paid": "지급 완료", "closed": "종결",
}

// StatusLabel returns the Korean label of a claim status code (API.md,
// "Claims"); an unknown code is returned unchanged.
func StatusLabel(code string) string {
	if l, ok := statusLabels[code]; ok {
		return l
	}
	return code
}

var bankNames = map[string]string{
	"002": "KDB산업은행", "003": "IBK기업은행", "004": "KB국민은행", "007": "수협은행",
	"011": "NH농협은행", "012": "지역농·축협", "020": "우리은행", "023": "SC제일은행",
	"027": "한국씨티은행", "031": "iM뱅크", "032": "부산은행", "034": "광주은행",
	"035": "제주은행", "037": "전북은행", "039": "경남은행", "045": "새마을금고",
	"048": "신협", "050": "저축은행", "071": "우체국", "081": "하나은행",
	"088": "신한은행", "089": "케이뱅크", "090": "카카오뱅크", "092": "토스뱅크",
}

// BankName returns the name of a Korean bank by its 3-digit code, or "" when
// the code is unknown.
func BankName(code string) string { return bankNames[code] }
