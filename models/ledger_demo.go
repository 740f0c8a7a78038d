package models

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/rules"
)

// The demo sales ledger: a deterministic, synthetic ledger of about 2,400
// Korea Post mall sellers whose totals land near the published figures of the
// NIRS fire (≈126억 won estimated lost sales over 2025-09-26 20:15 – 10-09
// 18:00 KST, ≈8억 won of 6% commission waived over the 21 Oct – 20 Nov
// promotion). Daily rows run from four weeks before the outage to the end of
// the promotion. The generator uses floating point only to shape synthetic
// sales; every stored amount is whole won and every computation on them goes
// through the integer rules.

// Demo ledger shape.
const (
	DemoSellers  = 2400
	DemoBRN      = "1208147521" // the README's example business number: seller 0
	demoBaseline = 472_500      // mean daily sales before the outage, won (calibrated to the targets)
)

var (
	demoFrom = rules.Date{Year: 2025, Month: time.August, Day: 29} // 4 weeks before 2025-09-26
	demoTo   = rules.Date{Year: 2025, Month: time.November, Day: 20}
)

// DemoSellerBRN is seller i's business number: seller 0 is DemoBRN, the rest
// come from rules.ValidBRNFromSeed (check digit valid, distinct).
func DemoSellerBRN(i int) string {
	if i == 0 {
		return DemoBRN
	}
	return rules.ValidBRNFromSeed(100_000 + i*7_919).String()
}

// splitmix64 is a tiny deterministic PRNG (the ledger must be the same on every machine).
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix64) float() float64 { return float64(s.next()>>11) / (1 << 53) }

func (s *splitmix64) normal() float64 {
	u1, u2 := s.float(), s.float()
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

var weekdayFactor = [7]float64{0.92, 1.10, 1.06, 1.02, 1.00, 0.98, 0.92} // Sunday first

// demoDayFactor is the share of normal sales a day keeps: the mall was down
// from 2025-09-26 20:15 to 10-09 18:00, sales then recovered only partly.
func demoDayFactor(d rules.Date) float64 {
	switch c := d.Compare; {
	case c(rules.Date{Year: 2025, Month: 9, Day: 26}) < 0:
		return 1
	case c(rules.Date{Year: 2025, Month: 9, Day: 26}) == 0:
		return 20.25 / 24 // sold until 20:15
	case c(rules.Date{Year: 2025, Month: 10, Day: 9}) < 0:
		return 0 // offline
	case c(rules.Date{Year: 2025, Month: 10, Day: 9}) == 0:
		return 0.25 * 0.4 // back at 18:00, slowly
	case c(rules.Date{Year: 2025, Month: 10, Day: 21}) < 0:
		return 0.30
	default:
		return 0.433 // the promotion month: customers only partly came back
	}
}

// DemoLedgerRows calls emit for every row of the demo ledger, in seller and
// day order. The same rows every time.
func DemoLedgerRows(emit func(LedgerRow) error) error {
	for i := range DemoSellers {
		rng := splitmix64(uint64(i)*0x2545f4914f6cdd1d + 7)
		size := math.Exp(0.9*rng.normal() - 0.405) // log-normal, mean 1
		zeroDays := rng.float() * 0.25             // small sellers skip days
		category := Categories[rng.next()%uint64(len(Categories))]
		if i == 0 {
			size, zeroDays, category = 0.43, 0, "food"
		}
		for d := demoFrom; d.Compare(demoTo) <= 0; d = d.AddDays(1) {
			noise := 1 + 0.15*rng.normal()
			skip := rng.float() < zeroDays
			f := demoDayFactor(d)
			if skip || f == 0 || noise <= 0 {
				continue
			}
			gross := int64(demoBaseline*size*weekdayFactor[d.Weekday()]*f*noise) / 10 * 10
			if gross <= 0 {
				continue
			}
			if err := emit(LedgerRow{BRN: DemoSellerBRN(i), Day: d, Category: category, GrossSales: gross,
				Commission: rules.ApplyBP(gross, rules.DefaultFeeRateBP)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// SeedDemoLedger loads the demo ledger for DemoProgram with COPY, once: when
// the program already has ledger rows it does nothing (a second `relief dev`
// start stays fast).
func (s *Store) SeedDemoLedger(ctx context.Context) error {
	if ok, err := s.HasLedger(ctx, DemoProgram); err != nil || ok {
		return err
	}
	var rows [][]any
	if err := DemoLedgerRows(func(r LedgerRow) error {
		rows = append(rows, []any{DemoProgram, r.BRN, time.Date(r.Day.Year, r.Day.Month, r.Day.Day, 0, 0, 0, 0, time.UTC),
			r.Category, r.GrossSales, r.Commission})
		return nil
	}); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// Two starts at once: the second waits here, then finds the rows.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('relief.demo_ledger'))`); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sales_ledger WHERE program_code = $1)`, DemoProgram).Scan(&exists); err != nil || exists {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"sales_ledger"},
			[]string{"program_code", "brn", "day", "category", "gross_sales", "commission"}, pgx.CopyFromRows(rows))
		return err
	})
}
