package rules

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var promotion = FeeWaiverParams{From: day("2025-10-21"), To: day("2025-11-20"), RateBP: DefaultFeeRateBP,
	CategoryRateBP: map[string]int64{"fresh": 300, "exempt": 0}}

func TestWaiveFees(t *testing.T) {
	rows := []SalesRow{
		{day("2025-10-20"), 5_000_000, 300_000, "food"}, // the day before: ignored
		{day("2025-10-21"), 1_000_000, 60_000, "food"},  // first day: 6%
		{day("2025-11-20"), 1_000_000, 30_000, "food"},  // last day: only 30,000 was charged
		{day("2025-11-01"), 123_457, 10_000, "fresh"},   // 3% → 3,703
		{day("2025-11-02"), 500_000, 40_000, "exempt"},  // 0%
		{day("2025-11-21"), 5_000_000, 300_000, "food"}, // the day after: ignored
	}
	f, err := WaiveFees(promotion, rows)
	if err != nil {
		t.Fatal(err)
	}
	want := []FeeWaiverRow{
		{SalesRow: rows[1], RateBP: 600, AtRate: 60_000, Waived: 60_000},
		{SalesRow: rows[3], RateBP: 300, AtRate: 3_703, Waived: 3_703},
		{SalesRow: rows[4], RateBP: 0, AtRate: 0, Waived: 0},
		{SalesRow: rows[2], RateBP: 600, AtRate: 60_000, Waived: 30_000},
	}
	if !slices.Equal(f.Rows, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", f.Rows, want)
	}
	if f.Outside != 2 || f.GrossSales != 2_623_457 || f.Commission != 140_000 || f.Waived != 93_703 || f.Amount != 93_700 || f.Remainder != 3 {
		t.Errorf("got %+v", f)
	}
	other := promotion
	other.RateBP = 550
	if f, _ := WaiveFees(other, rows[1:2]); f.Waived != 55_000 {
		t.Errorf("5.5%% of 1,000,000 waived %d", f.Waived)
	}
	ko := f.Explanation("ko")
	wantKo := []string{
		"면제 기간: 2025-10-21 ~ 2025-11-20, 기간 내 매출 4건 (기간 밖 2건 제외)",
		"exempt (0%): 매출 500,000원, 요율 적용 0원, 면제 0원",
		"food (6%): 매출 2,000,000원, 요율 적용 120,000원, 면제 90,000원 (실제 수수료가 더 적은 1건은 실제 수수료까지만)",
		"fresh (3%): 매출 123,457원, 요율 적용 3,703원, 면제 3,703원",
		"면제 합계 93,703원, 10원 미만 절사(국고금관리법 제47조): 끝수 3원",
		"환급액: 93,700원",
	}
	if !slices.Equal(ko, wantKo) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(ko, "\n"), strings.Join(wantKo, "\n"))
	}
	if en := f.Explanation("en"); en[len(en)-1] != "Refund: 93,700원" || !strings.Contains(en[2], "limited to the commission actually charged on 1 row(s)") {
		t.Errorf("English: %q", en)
	}
}

func TestWaiveFeesRejects(t *testing.T) {
	ok := []SalesRow{{day("2025-10-21"), 1, 1, "food"}}
	bad := func(mod func(*FeeWaiverParams)) FeeWaiverParams {
		p := promotion
		mod(&p)
		return p
	}
	tests := []struct {
		name string
		p    FeeWaiverParams
		rows []SalesRow
	}{
		{"period reversed", bad(func(p *FeeWaiverParams) { p.From, p.To = p.To, p.From }), ok},
		{"zero period", bad(func(p *FeeWaiverParams) { p.From = Date{} }), ok},
		{"rate above 100%", bad(func(p *FeeWaiverParams) { p.RateBP = 10_001 }), ok},
		{"negative category rate", bad(func(p *FeeWaiverParams) { p.CategoryRateBP = map[string]int64{"x": -1} }), ok},
		{"negative sales", promotion, []SalesRow{{day("2025-10-21"), -1, 0, "food"}}},
		{"negative commission outside the period", promotion, []SalesRow{{day("2025-01-01"), 1, -1, "food"}}},
		{"unnormalised date", promotion, []SalesRow{{Date{2025, 11, 31}, 1, 1, "food"}}},
		{"period total overflow", promotion, []SalesRow{{day("2025-10-21"), MaxAmount, 0, "a"}, {day("2025-10-22"), 1, 0, "a"}}},
	}
	for _, tt := range tests {
		if _, err := WaiveFees(tt.p, tt.rows); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tt.name, err)
		}
	}
}

func TestWaiveFeesProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 37))
	categories := []string{"food", "fresh", "exempt", "craft"}
	for range 3_000 {
		rows := make([]SalesRow, r.IntN(60))
		for i := range rows {
			gross := r.Int64N(10_000_000)
			rows[i] = SalesRow{day("2025-10-10").AddDays(r.IntN(50)), gross, r.Int64N(gross/10 + 1), categories[r.IntN(len(categories))]}
		}
		f, err := WaiveFees(promotion, rows)
		if err != nil {
			t.Fatal(err)
		}
		var waived int64
		for _, row := range f.Rows {
			if row.Waived > row.Commission || row.Waived > row.AtRate || row.Waived != min(row.Commission, ApplyBP(row.GrossSales, row.RateBP)) ||
				row.Date.Compare(promotion.From) < 0 || row.Date.Compare(promotion.To) > 0 {
				t.Fatalf("row %+v", row)
			}
			waived += row.Waived
		}
		if waived != f.Waived || f.Waived > f.Commission || f.Amount%10 != 0 || f.Amount+f.Remainder != f.Waived || f.Remainder > 9 ||
			len(f.Rows)+f.Outside != len(rows) {
			t.Fatalf("totals %+v", f)
		}
		r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		if again, _ := WaiveFees(promotion, rows); !reflect.DeepEqual(again, f) {
			t.Fatal("row order changes the result")
		}
	}
}
