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

// checkTotals checks the control row: the row count, and for every Amount
// column the sum of the inputs (want, by column index), read raw.
func checkTotals(t *testing.T, f *file, sheet string, cols []Column, dataRows int, want map[int]int64) {
	t.Helper()
	row := strconv.Itoa(1 + dataRows + 2)
	if v := f.raw1(t, sheet, "A"+row); v != "합계" {
		t.Fatalf("%s A%s = %q, want 합계", sheet, row, v)
	}
	if v := f.raw1(t, sheet, "B"+row); v != strconv.Itoa(dataRows) {
		t.Errorf("%s row count = %q, want %d", sheet, v, dataRows)
	}
	for i, c := range cols {
		cell, _ := excelize.CoordinatesToCellName(i+1, 1+dataRows+2)
		v := f.raw1(t, sheet, cell)
		switch {
		case c.Kind == Amount && v != strconv.FormatInt(want[i], 10):
			t.Errorf("%s %s total %s = %q, want %d", sheet, c.Header, cell, v, want[i])
		case c.Kind != Amount && i > 1 && v != "":
			t.Errorf("%s %s total %s = %q, want empty", sheet, c.Header, cell, v)
		}
	}
}

func headers(cols []Column) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.Header
	}
	return h
}

func TestClaimsRegister(t *testing.T) {
	at := time.Date(2025, 10, 1, 1, 2, 3, 0, time.UTC)
	claims := []ClaimRow{
		{"R-2025-000001", "0208147521", "대전 농산", "김대전", "신선식품", "대전", "in_review",
			3_500_000, 3_100_000, 0, 1_200_000, 90_000, 1_290_000, 0, at},
		{"R-2025-000002", "120-81-47521", "강원 수산", "이강원", "수산물", "강원", "paid",
			800_000, 750_000, 750_000, 0, 12_340, 762_340, 762_340, at.Add(time.Hour)},
	}
	wb := newWorkbook(t)
	if err := WriteClaims(wb, seq(claims...)); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)
	const sheet = "피해접수대장"
	want := []string{"접수번호", "사업자등록번호", "상호", "대표자", "업종", "지역", "상태", "신청금액", "추정손실",
		"승인보상액", "선매입배정액", "수수료면제액", "지급예정액", "지급액", "접수일시"}
	f.checkTable(t, sheet, 0, 1, want, 2)
	rows := f.rows(t, sheet)
	if got := rows[1]; got[1] != "020-81-47521" || got[6] != "심사 중" || got[7] != "3,500,000" || got[14] != "2025-10-01 10:02:03" {
		t.Errorf("row 2 = %q", got)
	}
	if got := rows[2]; got[1] != "120-81-47521" || got[6] != "지급 완료" {
		t.Errorf("row 3 = %q", got)
	}
	if ct := f.cellType(t, sheet, "B2"); ct != excelize.CellTypeInlineString {
		t.Errorf("BRN cell type %v, want string", ct)
	}
	sums := map[int]int64{}
	for _, c := range claims {
		for i, v := range []int64{c.ClaimedLoss, c.EstimatedLoss, c.Approved, c.Prepurchase, c.FeeWaived, c.OwedTotal, c.PaidTotal} {
			sums[7+i] += v
		}
	}
	checkTotals(t, f, sheet, claimColumns, 2, sums)
	if f.info(t)[sheet+" 행 수"] != "2" {
		t.Errorf("정보 row count = %q", f.info(t)[sheet+" 행 수"])
	}
}

func TestAllocationsPerTranche(t *testing.T) {
	line := func(order, sku string, price, qty int64) AllocationLine {
		return AllocationLine{OrderNo: order, ReceiptNo: "R-1", BRN: "1208147521", BusinessName: "대전 농산",
			SKU: sku, ItemName: "사과 5kg", Perishable: true, UnitPrice: price, Quantity: qty, Amount: price * qty}
	}
	wb := newWorkbook(t)
	first := []AllocationLine{line("PO-1-001", "A-1", 25_000, 120), line("PO-1-001", "A-2", 18_000, 40), line("PO-1-002", "B-1", 9_900, 7)}
	if err := WriteAllocations(wb, Tranche{"1차", 1_100_000_000}, seq(first...)); err != nil {
		t.Fatal(err)
	}
	if err := WriteAllocations(wb, Tranche{"2차: 신선/가공", 2_200_000_000}, seq(line("PO-2-001", "A-1", 25_000, 10))); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)
	if got := f.x.GetSheetList(); !slices.Equal(got, []string{"선매입 1차", "선매입 2차_ 신선_가공", InfoSheet}) {
		t.Fatalf("sheets %q", got)
	}
	f.checkTable(t, "선매입 1차", 0, 1, headers(allocationColumns), 3)
	f.checkTable(t, "선매입 2차_ 신선_가공", 1, 1, headers(allocationColumns), 1)
	var total int64
	for _, l := range first {
		total += l.Amount
	}
	checkTotals(t, f, "선매입 1차", allocationColumns, 3, map[int]int64{9: total})
	if got := f.rows(t, "선매입 1차")[1]; got[6] != "예" || got[7] != "25,000" || got[8] != "120" || got[9] != "3,000,000" {
		t.Errorf("line = %q", got)
	}
	info := f.info(t)
	if info["선매입 1차 예산"] != "1,100,000,000" || info["선매입 1차 배정 합계"] != "3,789,300" || info["선매입 1차 미배정"] != "1,096,210,700" {
		t.Errorf("정보 %v", info)
	}

	bad := line("PO-9", "X", 1000, 3)
	bad.Amount = 2999
	wb = newWorkbook(t)
	if err := WriteAllocations(wb, Tranche{"1차", 1_000_000}, seq(bad)); err == nil || !strings.Contains(err.Error(), "2999") {
		t.Errorf("amount ≠ price × quantity: err = %v", err)
	}
	if _, _, err := wb.Save(io.Discard); err == nil {
		t.Error("saved a workbook with a bad allocation line")
	}
	wb = newWorkbook(t)
	if err := WriteAllocations(wb, Tranche{"1차", 100}, seq(line("PO-9", "X", 1000, 3))); err == nil {
		t.Error("allocation above budget accepted")
	}
	if _, _, err := wb.Save(io.Discard); err == nil {
		t.Error("saved a workbook over budget")
	}
}

func TestFeeWaivers(t *testing.T) {
	rows := []FeeWaiverRow{
		{"R-1", "1208147521", "대전 농산", "신선식품", 12_345_678, 600, 740_740},
		{"R-2", "2208147529", "강원 수산", "수산물", 1_000_000, 550, 55_000},
	}
	wb := newWorkbook(t)
	promo := Period{time.Date(2025, 10, 21, 0, 0, 0, 0, KST), time.Date(2025, 11, 20, 0, 0, 0, 0, KST)}
	if err := WriteFeeWaivers(wb, promo, seq(rows...)); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)
	f.checkTable(t, "수수료면제", 0, 1, headers(feeWaiverColumns), 2)
	checkTotals(t, f, "수수료면제", feeWaiverColumns, 2, map[int]int64{4: 13_345_678, 6: 795_740})
	if got := f.rows(t, "수수료면제")[1]; got[5] != "600" {
		t.Errorf("rate = %q", got[5])
	}
	if got := f.info(t)["수수료 면제 기간"]; got != "2025-10-21 ~ 2025-11-20" {
		t.Errorf("period = %q", got)
	}
}

func TestPayoutsMaskedAndFull(t *testing.T) {
	rows := []PayoutRow{
		{"PB-001", "R-1", "1208147521", "대전 농산", "004", "012345678901", "김대전", 1_290_000, "지급 완료", "", "PB-001-0001", time.Date(2025, 11, 3, 5, 0, 0, 0, time.UTC)},
		{"PB-001", "R-2", "2208147529", "강원 수산", "090", "3333-01-2345678", "이강원", 762_340, "실패", "계좌 오류", "PB-001-0002", time.Time{}},
	}
	for _, tc := range []struct {
		view     AccountView
		accounts [2]string
		shown    string
	}{
		{MaskedAccounts, [2]string{"********8901", "****-**-***5678"}, "마스킹"},
		{FullAccounts, [2]string{"012345678901", "3333-01-2345678"}, "전체 (권한자용)"},
	} {
		wb := newWorkbook(t)
		if err := WritePayouts(wb, tc.view, seq(rows...)); err != nil {
			t.Fatal(err)
		}
		f := saveAndOpen(t, wb)
		f.checkTable(t, "지급내역", 0, 1, headers(payoutColumns), 2)
		checkTotals(t, f, "지급내역", payoutColumns, 2, map[int]int64{8: 2_052_340})
		got := f.rows(t, "지급내역")
		if got[1][6] != tc.accounts[0] || got[2][6] != tc.accounts[1] {
			t.Errorf("view %d: accounts %q, %q", tc.view, got[1][6], got[2][6])
		}
		if got[1][4] != "004" || got[1][5] != "KB국민은행" || got[2][5] != "카카오뱅크" || got[1][12] != "2025-11-03 14:00:00" {
			t.Errorf("row 2 = %q", got[1])
		}
		if ct := f.cellType(t, "지급내역", "G2"); ct != excelize.CellTypeInlineString {
			t.Errorf("account type %v", ct)
		}
		if f.info(t)["계좌번호 표시"] != tc.shown {
			t.Errorf("정보 계좌번호 표시 = %q", f.info(t)["계좌번호 표시"])
		}
	}
}

func TestRowStreamErrorFailsExport(t *testing.T) {
	boom := errors.New("db cursor lost")
	rows := func(yield func(PayoutRow, error) bool) {
		if yield(PayoutRow{BankCode: "004", Amount: 10}, nil) {
			yield(PayoutRow{}, boom)
		}
	}
	wb := newWorkbook(t)
	if err := WritePayouts(wb, MaskedAccounts, rows); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := wb.Save(io.Discard); !errors.Is(err, boom) {
		t.Errorf("Save after a failed stream: %v", err)
	}
}

func TestSummaryWithCharts(t *testing.T) {
	s := Summary{
		ByStatus:     []Tally{{"received", 120, 420_000_000}, {"in_review", 30, 90_000_000}, {"paid", 50, 150_000_000}},
		ByRegion:     []Tally{{"대전", 80, 300_000_000}, {"강원", 40, 100_000_000}},
		ByCategory:   []Tally{{"신선식품", 90, 310_000_000}},
		ByInstrument: []Tally{{"직접보상", 150, 500_000_000}, {"선매입", 92, 1_100_000_000}, {"수수료 면제", 400, 80_000_000}},
	}
	wb := newWorkbook(t)
	if err := WriteClaims(wb, seq[ClaimRow]()); err != nil {
		t.Fatal(err)
	}
	if err := WriteSummary(wb, s); err != nil {
		t.Fatal(err)
	}
	f := saveAndOpen(t, wb)
	for i := 1; i <= 4; i++ {
		name := "xl/charts/chart" + strconv.Itoa(i) + ".xml"
		if x := f.part(t, name); !strings.Contains(x, "&#39;요약&#39;!$A$") {
			t.Errorf("%s does not reference the summary tables", name)
		}
	}
	if _, err := f.zip.Open("xl/charts/chart5.xml"); err == nil {
		t.Error("more charts than tables")
	}
	if !strings.Contains(f.part(t, "xl/charts/chart4.xml"), "<pieChart>") {
		t.Error("instrument chart is not a pie")
	}
	rows := f.rows(t, SummarySheet)
	find := func(label string) []string {
		for _, r := range rows {
			if len(r) > 0 && r[0] == label {
				return r
			}
		}
		t.Fatalf("no row %q in %q", label, rows)
		return nil
	}
	if r := find("심사 중"); r[1] != "30" || r[2] != "90,000,000" {
		t.Errorf("status row %q", r)
	}
	if r := find("선매입"); r[2] != "1,100,000,000" {
		t.Errorf("instrument row %q", r)
	}
	var totals [][]string
	for _, r := range rows {
		if len(r) > 0 && r[0] == "합계" {
			totals = append(totals, r)
		}
	}
	want := [][]string{{"합계", "200", "660,000,000"}, {"합계", "120", "400,000,000"}, {"합계", "90", "310,000,000"}, {"합계", "642", "1,680,000,000"}}
	if !slices.EqualFunc(totals, want, slices.Equal) {
		t.Errorf("table totals %q, want %q", totals, want)
	}
	if f.info(t)[SummarySheet+" 행 수"] != "9" {
		t.Errorf("정보 요약 행 수 = %q", f.info(t)[SummarySheet+" 행 수"])
	}
	// The empty claims register still has its header, filter and a zero total.
	f.checkTable(t, "피해접수대장", 0, 1, headers(claimColumns), 0)
	checkTotals(t, f, "피해접수대장", claimColumns, 0, nil)
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{"1208147521": "120-81-47521", "120-81-47521": "120-81-47521", "12345": "12345", "12a8147521": "12a8147521"} {
		if got := FormatBRN(in); got != want {
			t.Errorf("FormatBRN(%q) = %q", in, got)
		}
	}
	for in, want := range map[string]string{"012345678901": "********8901", "1234": "****", "": "", "12-3456": "**-3456"} {
		if got := MaskAccount(in); got != want {
			t.Errorf("MaskAccount(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"a/b:c*d?e[f]g\\h": "a_b_c_d_e_f_g_h", "'x'": "x", strings.Repeat("가", 40): strings.Repeat("가", 31), "": "_"} {
		if got := SheetName(in); got != want {
			t.Errorf("SheetName(%q) = %q, want %q", in, got, want)
		}
	}
	if StatusLabel("pending_second_approval") != "2차 승인 대기" || StatusLabel("new_status") != "new_status" {
		t.Error("StatusLabel")
	}
}
