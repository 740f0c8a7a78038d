package models

import (
	"context"
	"time"

	"github.com/relief/relief/models/rules"
)

// Loss estimate and rapid offer (DESIGN.md): the platform's sales ledger is the
// evidence; the estimate and the compensation come from the pure rules with the
// program's parameters, with every input shown ("why this amount").

// OfferDay is one outage day of an offer.
type OfferDay struct {
	Date     rules.Date `json:"date"`
	Weekday  string     `json:"weekday"`
	Seconds  int64      `json:"seconds"`
	Baseline int64      `json:"baseline"`
	Expected int64      `json:"expected"`
	Sales    int64      `json:"sales"`
	Actual   int64      `json:"actual"`
}

// Offer is GET /api/v1/programs/{code}/offer.
type Offer struct {
	BRN            string     `json:"brn"`
	Program        string     `json:"program"`
	BaselineFrom   rules.Date `json:"baseline_from"`
	BaselineTo     rules.Date `json:"baseline_to"`
	BaselineDaily  []OfferDay `json:"baseline_daily"`
	ExpectedSales  int64      `json:"expected_sales"`
	ActualSales    int64      `json:"actual_sales"`
	EstimatedLoss  int64      `json:"estimated_loss"`
	Compensation   int64      `json:"compensation"`
	FastTrack      bool       `json:"fast_track"` // within the program's fast-track limit
	FastTrackLimit int64      `json:"fast_track_limit"`
	Explanation    []string   `json:"explanation"`
}

// ErrNotASeller is the 404 of an offer for a BRN without ledger sales.
var ErrNotASeller = Coded(ENOTFOUND, "not_a_seller", "the sales ledger has no sales for this business number")

// CompensationParams are the program's direct-compensation rules for the pure rules.
func (p *Program) CompensationParams() rules.CompensationParams {
	return rules.CompensationParams{RateBP: int64(p.Rules.CompensationRateBP), Floor: p.Rules.CompensationFloor, Cap: p.Rules.CompensationCap}
}

// salesWindow is the ledger span the estimate reads: the baseline weeks before
// the outage through its last day.
func salesWindow(p *Program) (rules.Date, rules.Date) {
	first := rules.DateOf(p.Outage.StartsAt)
	return first.AddDays(-7 * rules.DefaultBaselineWeeks), rules.DateOf(p.Outage.EndsAt.Add(-time.Nanosecond))
}

// DailySales returns a seller's gross sales per day (all categories) in [from, to].
func DailySales(ctx context.Context, q Querier, program, brn string, from, to rules.Date) (map[rules.Date]int64, error) {
	rows, err := q.Query(ctx, `SELECT day, sum(gross_sales)::bigint FROM sales_ledger
		WHERE program_code = $1 AND brn = $2 AND day BETWEEN $3 AND $4 GROUP BY day`,
		program, brn, from.String(), to.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[rules.Date]int64{}
	for rows.Next() {
		var day time.Time
		var v int64
		if err := rows.Scan(&day, &v); err != nil {
			return nil, err
		}
		out[rules.Date{Year: day.Year(), Month: day.Month(), Day: day.Day()}] = v
	}
	return out, rows.Err()
}

// ComputeOffer estimates loss and compensation for brn under p from the ledger.
// lang picks the explanation's language. 404 not_a_seller when the ledger has
// no sales for the BRN in the estimate's window.
func ComputeOffer(ctx context.Context, q Querier, p *Program, brn rules.BRN, lang string) (*Offer, error) {
	from, to := salesWindow(p)
	sales, err := DailySales(ctx, q, p.Code, brn.String(), from, to)
	if err != nil {
		return nil, err
	}
	if len(sales) == 0 {
		return nil, ErrNotASeller
	}
	est, err := rules.EstimateLoss(sales, p.Outage.StartsAt, p.Outage.EndsAt, rules.LossParams{})
	if err != nil {
		return nil, err
	}
	comp, err := rules.Compensate(est.Loss, p.CompensationParams())
	if err != nil {
		return nil, err
	}
	o := &Offer{BRN: brn.Formatted(), Program: p.Code, BaselineFrom: est.BaselineFrom, BaselineTo: est.BaselineTo,
		ExpectedSales: est.Expected, ActualSales: est.Actual, EstimatedLoss: est.Loss, Compensation: comp.Amount,
		FastTrackLimit: p.Rules.FastTrackLimit, FastTrack: comp.Amount > 0 && comp.Amount <= p.Rules.FastTrackLimit && !comp.CaseReview}
	for _, d := range est.Days {
		o.BaselineDaily = append(o.BaselineDaily, OfferDay{Date: d.Date, Weekday: d.Weekday.String()[:3], Seconds: d.Seconds,
			Baseline: d.Baseline, Expected: d.Expected, Sales: d.Sales, Actual: d.Actual})
	}
	o.Explanation = append(est.Explanation(lang), comp.Explanation(lang)...)
	return o, nil
}

// OfferFor is the merchant's rapid offer for brn in program.
func (s *Store) OfferFor(ctx context.Context, program string, brn rules.BRN, lang string) (*Offer, error) {
	p, err := s.ProgramByCode(ctx, program)
	if err != nil {
		return nil, err
	}
	return ComputeOffer(ctx, s.Pool, p, brn, lang)
}

// SalesPoint is one day of a seller's sales chart.
type SalesPoint struct {
	Date   rules.Date `json:"date"`
	Sales  int64      `json:"sales"`
	Outage bool       `json:"outage"` // the platform was down at least part of the day
}

// SalesSeries returns a seller's daily sales from the baseline's first day to
// two weeks after the outage, every day present (0 when no row).
func SalesSeries(ctx context.Context, q Querier, p *Program, brn string) ([]SalesPoint, error) {
	from, last := salesWindow(p)
	to := last.AddDays(14)
	sales, err := DailySales(ctx, q, p.Code, brn, from, to)
	if err != nil {
		return nil, err
	}
	first := rules.DateOf(p.Outage.StartsAt)
	var out []SalesPoint
	for d := from; d.Compare(to) <= 0; d = d.AddDays(1) {
		out = append(out, SalesPoint{Date: d, Sales: sales[d], Outage: d.Compare(first) >= 0 && d.Compare(last) <= 0})
	}
	return out, nil
}

// HasLedger reports whether program has any sales ledger rows.
func (s *Store) HasLedger(ctx context.Context, program string) (bool, error) {
	var ok bool
	err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sales_ledger WHERE program_code = $1)`, program).Scan(&ok)
	return ok, err
}

// LedgerStats summarises a program's ledger for the admin page.
type LedgerStats struct {
	Sellers    int64
	Rows       int64
	GrossSales int64
	From, To   *time.Time
	Period     string // "2025-08-29 ~ 2025-11-20"
}

// SalesLedgerStats counts a program's sales ledger.
func (s *Store) SalesLedgerStats(ctx context.Context, program string) (*LedgerStats, error) {
	st := &LedgerStats{}
	err := s.Pool.QueryRow(ctx, `SELECT count(DISTINCT brn), count(*), coalesce(sum(gross_sales), 0)::bigint, min(day), max(day)
		FROM sales_ledger WHERE program_code = $1`, program).Scan(&st.Sellers, &st.Rows, &st.GrossSales, &st.From, &st.To)
	if err == nil && st.From != nil && st.To != nil {
		st.Period = st.From.UTC().Format(time.DateOnly) + " ~ " + st.To.UTC().Format(time.DateOnly)
	}
	return st, err
}
