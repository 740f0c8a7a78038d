package rules

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseWon: any string is a whole amount in [0, MaxAmount] that
// FormatWon writes back in a form ParseWon reads to the same value, or one of
// the two documented errors. Never a panic, never a negative or fractional
// amount.
func FuzzParseWon(f *testing.F) {
	for _, s := range []string{"1234567", "1,234,567", "1,234,567원", " 0 ", "-1", "1.5", "1e9", "9223372036854775807", "1,000,000,000,000,000", "1,000,000,000,000,001", ",123", "12,34", "원", "１２３"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseWon(s)
		if err != nil {
			if !errors.Is(err, ErrWonFormat) && !errors.Is(err, ErrWonRange) {
				t.Fatalf("ParseWon(%q): undocumented error %v", s, err)
			}
			return
		}
		if v < 0 || v > MaxAmount {
			t.Fatalf("ParseWon(%q) = %d: out of range", s, v)
		}
		for _, form := range []string{FormatWon(v), FormatNumber(v)} {
			again, err := ParseWon(form)
			if err != nil || again != v {
				t.Fatalf("ParseWon(%q) = %d does not round-trip through %q: %d %v", s, v, form, again, err)
			}
		}
		if strings.ContainsAny(s, "-+.eE") {
			t.Fatalf("ParseWon(%q) accepted a sign, decimal or exponent", s)
		}
	})
}
