package models

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/relief/relief/models/rules"
)

// FuzzLedgerRow: any CSV line, read under the documented header, is either a
// valid ledger row (a real BRN, a date in 2000–2100, whole non-negative won
// with commission ≤ gross sales, a known category) or a list of problems
// located at that row and a documented column. Never a panic.
func FuzzLedgerRow(f *testing.F) {
	for _, s := range []string{
		"120-81-47521,2025-09-26,\"1,200,000\",72000,food",
		"1208147521,45926,1200000,72000,agri",
		"1208147522,2025-02-30,-1,2,unknown",
		"1208147521,2025-09-26,100,200,food,extra",
		"",
	} {
		f.Add(s)
	}
	h, errs := parseLedgerHeader(LedgerColumns)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r := csv.NewReader(strings.NewReader(line))
		r.FieldsPerRecord = -1
		rec, err := r.Read()
		if err != nil {
			return
		}
		row, problems := ValidateLedgerRow(h, rec, 7)
		if len(problems) > 0 {
			for _, p := range problems {
				if p.Row != 7 || !slices.Contains(LedgerColumns, p.Column) || p.Message == "" {
					t.Fatalf("problem %+v not located", p)
				}
			}
			return
		}
		if _, err := rules.ParseBRN(row.BRN); err != nil || len(row.BRN) != 10 {
			t.Fatalf("accepted BRN %q", row.BRN)
		}
		if row.Day.Year < 2000 || row.Day.Year > 2100 || row.Day.AddDays(0) != row.Day {
			t.Fatalf("accepted day %+v", row.Day)
		}
		if row.GrossSales < 0 || row.Commission < 0 || row.Commission > row.GrossSales || row.GrossSales > rules.MaxAmount {
			t.Fatalf("accepted amounts %d / %d", row.GrossSales, row.Commission)
		}
		if !slices.Contains(Categories, row.Category) {
			t.Fatalf("accepted category %q", row.Category)
		}
	})
}
