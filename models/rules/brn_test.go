package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBRN(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"1208147521", "1208147521", nil},
		{"120-81-47521", "1208147521", nil},
		{"  120-81-47521\t", "1208147521", nil},
		{"124-81-00998", "1248100998", nil},
		{"1208147522", "", ErrBRNChecksum},
		{"120-81-47520", "", ErrBRNChecksum},
		{"", "", ErrBRNFormat},
		{"120814752", "", ErrBRNFormat},
		{"12081475210", "", ErrBRNFormat},
		{"120-8147521", "", ErrBRNFormat},
		{"12-081-47521", "", ErrBRNFormat},
		{"120 81 47521", "", ErrBRNFormat},
		{"120--8147521", "", ErrBRNFormat},
		{"12O8147521", "", ErrBRNFormat},
		{"+208147521", "", ErrBRNFormat},
		{"１２０８１４７５２１", "", ErrBRNFormat},
	}
	for _, tt := range tests {
		got, err := ParseBRN(tt.in)
		if !errors.Is(err, tt.wantErr) || got.String() != tt.want {
			t.Errorf("ParseBRN(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBRNAccessors(t *testing.T) {
	b, err := ParseBRN("1208147521")
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != "1208147521" || b.Formatted() != "120-81-47521" || b.LastDigit() != 1 {
		t.Errorf("got %q %q %d", b.String(), b.Formatted(), b.LastDigit())
	}
	var zero BRN
	if zero.String() != "" || zero.Formatted() != "" || zero.LastDigit() != -1 {
		t.Errorf("zero BRN: %q %q %d", zero.String(), zero.Formatted(), zero.LastDigit())
	}
}

// The NTS weights make every single-digit typo detectable: positions 1–8 have weights
// coprime to 10, the ninth digit's 5d + floor(5d/10) is a permutation of 0–9 mod 10.
func TestBRNDetectsEverySingleDigitTypo(t *testing.T) {
	for n := 0; n < BRNSeedSpace; n += 7919 * 13 {
		valid := ValidBRNFromSeed(n).String()
		for pos := range 10 {
			for d := byte('0'); d <= '9'; d++ {
				if valid[pos] == d {
					continue
				}
				typo := valid[:pos] + string(d) + valid[pos+1:]
				if _, err := ParseBRN(typo); !errors.Is(err, ErrBRNChecksum) {
					t.Fatalf("%s (typo of %s) accepted or misreported: %v", typo, valid, err)
				}
			}
		}
	}
}

func TestValidBRNFromSeed(t *testing.T) {
	seen := map[string]int{}
	for n := range 100_000 {
		b := ValidBRNFromSeed(n)
		p, err := ParseBRN(b.Formatted())
		if err != nil || p != b {
			t.Fatalf("seed %d: %q does not parse back: %v", n, b, err)
		}
		if prev, dup := seen[b.String()]; dup {
			t.Fatalf("seeds %d and %d both give %s", prev, n, b)
		}
		seen[b.String()] = n
	}
	for block := 0; block < 100_000; block += 10 {
		var digits [10]bool
		for n := block; n < block+10; n++ {
			digits[ValidBRNFromSeed(n).LastDigit()] = true
		}
		if digits != [10]bool{true, true, true, true, true, true, true, true, true, true} {
			t.Fatalf("seeds %d..%d miss a last digit: %v", block, block+9, digits)
		}
	}
	if last := ValidBRNFromSeed(BRNSeedSpace - 1).String(); !strings.HasPrefix(last, "99989") {
		t.Errorf("last seed gives %s, want office 999, type 89", last)
	}
	for _, n := range []int{-1, BRNSeedSpace} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ValidBRNFromSeed(%d) did not panic", n)
				}
			}()
			ValidBRNFromSeed(n)
		}()
	}
}
