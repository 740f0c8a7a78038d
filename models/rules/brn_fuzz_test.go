package rules

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseBRN: any string is either a valid BRN — ten digits whose NTS check
// digit holds, which round-trips through both written forms — or one of the
// two documented errors. Never a panic.
func FuzzParseBRN(f *testing.F) {
	for _, s := range []string{"120-81-47521", "1208147521", " 120-81-47521 ", "120-81-47522", "12081475", "120--81-4752", "１２０８１４７５２１", "", "-----------"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBRN(s)
		if err != nil {
			if !errors.Is(err, ErrBRNFormat) && !errors.Is(err, ErrBRNChecksum) {
				t.Fatalf("ParseBRN(%q): undocumented error %v", s, err)
			}
			if b != (BRN{}) {
				t.Fatalf("ParseBRN(%q) failed but returned %v", s, b)
			}
			return
		}
		d := b.String()
		if len(d) != 10 || strings.Trim(d, "0123456789") != "" {
			t.Fatalf("ParseBRN(%q) = %q: not ten ASCII digits", s, d)
		}
		if brnCheckDigit(d[:9]) != d[9] || b.LastDigit() != int(d[9]-'0') {
			t.Fatalf("ParseBRN(%q) = %q: check digit does not hold", s, d)
		}
		for _, form := range []string{d, b.Formatted()} {
			again, err := ParseBRN(form)
			if err != nil || again != b {
				t.Fatalf("%q does not round-trip through %q: %v %v", s, form, again, err)
			}
		}
		if strings.ReplaceAll(strings.TrimSpace(s), "-", "") != d {
			t.Fatalf("ParseBRN(%q) = %q: accepted something other than digits and the two dashes", s, d)
		}
	})
}
