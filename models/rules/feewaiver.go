package rules

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DefaultFeeRateBP is the usual commission rate waived (6%).
const DefaultFeeRateBP = 600

// SalesRow is one row of the platform's sales ledger for a merchant.
type SalesRow struct {
	Date       Date
	GrossSales int64
	Commission int64 // commission the platform actually charged
	Category   string
}

// FeeWaiverParams are a program's fee-waiver rules.
type FeeWaiverParams struct {
	From, To       Date             // promotion period, both days included
	RateBP         int64            // rate of categories not in CategoryRateBP, usually DefaultFeeRateBP
	CategoryRateBP map[string]int64 // per-category rates, 0..10,000 bp
}

// FeeWaiverRow is one ledger row inside the period and what it waives.
type FeeWaiverRow struct {
	SalesRow
	RateBP int64
	AtRate int64 // GrossSales × RateBP, truncated to the won
	Waived int64 // min(AtRate, Commission)
}

// FeeWaiver is one merchant's fee waiver.
type FeeWaiver struct {
	Params     FeeWaiverParams
	Rows       []FeeWaiverRow // rows inside the period, by date, then category
	Outside    int            // rows outside the period, ignored
	GrossSales int64          // Σ Rows.GrossSales
	Commission int64          // Σ Rows.Commission
	Waived     int64          // Σ Rows.Waived
	Amount     int64          // Waived truncated to 10 won: what is refunded
	Remainder  int64          // 끝수
}

// WaiveFees computes one merchant's fee waiver from its ledger rows: each row inside
// [From, To] waives GrossSales × the category's rate, but never more than the
// commission that row was actually charged, because a waiver refunds commission and
// must not pay out more than was taken. The total is truncated to 10 won once per
// merchant (the disbursement), not per row.
func WaiveFees(p FeeWaiverParams, rows []SalesRow) (FeeWaiver, error) {
	if !p.From.valid() || !p.To.valid() || p.To.Compare(p.From) < 0 {
		return FeeWaiver{}, fmt.Errorf("%w: promotion period %v – %v", ErrInput, p.From, p.To)
	}
	if p.RateBP < 0 || p.RateBP > 10_000 {
		return FeeWaiver{}, fmt.Errorf("%w: rate %d bp outside 0..10000", ErrInput, p.RateBP)
	}
	for c, bp := range p.CategoryRateBP {
		if bp < 0 || bp > 10_000 {
			return FeeWaiver{}, fmt.Errorf("%w: category %q rate %d bp outside 0..10000", ErrInput, c, bp)
		}
	}
	f := FeeWaiver{Params: p}
	for _, r := range rows {
		if !r.Date.valid() || !validAmount(r.GrossSales) || !validAmount(r.Commission) {
			return FeeWaiver{}, fmt.Errorf("%w: ledger row %v %q: sales %d, commission %d", ErrInput, r.Date, r.Category, r.GrossSales, r.Commission)
		}
		if r.Date.Compare(p.From) < 0 || r.Date.Compare(p.To) > 0 {
			f.Outside++
			continue
		}
		bp, ok := p.CategoryRateBP[r.Category]
		if !ok {
			bp = p.RateBP
		}
		row := FeeWaiverRow{SalesRow: r, RateBP: bp, AtRate: ApplyBP(r.GrossSales, bp)}
		row.Waived = min(row.AtRate, r.Commission)
		f.Rows = append(f.Rows, row)
		f.GrossSales += r.GrossSales
		f.Commission += r.Commission
		f.Waived += row.Waived
		if f.GrossSales > MaxAmount || f.Commission > MaxAmount {
			return FeeWaiver{}, fmt.Errorf("%w: period totals above %s", ErrInput, FormatWon(MaxAmount))
		}
	}
	slices.SortFunc(f.Rows, func(a, b FeeWaiverRow) int {
		return cmp.Or(a.Date.Compare(b.Date), strings.Compare(a.Category, b.Category),
			cmp.Compare(a.GrossSales, b.GrossSales), cmp.Compare(a.Commission, b.Commission))
	})
	f.Amount, f.Remainder = Truncate10(f.Waived)
	return f, nil
}

// Explanation summarises the waiver per category, in Korean unless lang is English.
func (f FeeWaiver) Explanation(lang string) []string {
	ko := korean(lang)
	lines := []string{fmt.Sprintf(tr(ko, "면제 기간: %s ~ %s, 기간 내 매출 %d건 (기간 밖 %d건 제외)",
		"Promotion period: %s to %s, %d ledger rows in the period (%d outside ignored)"), f.Params.From, f.Params.To, len(f.Rows), f.Outside)}
	type total struct {
		rate, gross, atRate, waived int64
		capped                      int
	}
	byCategory := map[string]*total{}
	for _, r := range f.Rows {
		t := byCategory[r.Category]
		if t == nil {
			t = &total{rate: r.RateBP}
			byCategory[r.Category] = t
		}
		t.gross += r.GrossSales
		t.atRate += r.AtRate
		t.waived += r.Waived
		if r.Waived < r.AtRate {
			t.capped++
		}
	}
	for _, c := range slices.Sorted(maps.Keys(byCategory)) {
		t := byCategory[c]
		line := fmt.Sprintf(tr(ko, "%s (%s): 매출 %s, 요율 적용 %s, 면제 %s", "%s (%s): sales %s, at the rate %s, waived %s"),
			c, formatBP(t.rate), FormatWon(t.gross), FormatWon(t.atRate), FormatWon(t.waived))
		if t.capped > 0 {
			line += fmt.Sprintf(tr(ko, " (실제 수수료가 더 적은 %d건은 실제 수수료까지만)", " (limited to the commission actually charged on %d row(s))"), t.capped)
		}
		lines = append(lines, line)
	}
	if f.Remainder != 0 {
		lines = append(lines, fmt.Sprintf(tr(ko, "면제 합계 %s, 10원 미만 절사(국고금관리법 제47조): 끝수 %s",
			"Total waived %s; under 10 won dropped (National Treasury Management Act §47): %s"), FormatWon(f.Waived), FormatWon(f.Remainder)))
	}
	return append(lines, tr(ko, "환급액: ", "Refund: ")+FormatWon(f.Amount))
}
