package rules

import (
	"errors"
	"math"
	"math/big"
	"math/rand"
	"testing"
	"testing/quick"
)

func quickConfig(seed int64) *quick.Config {
	return &quick.Config{MaxCount: 20_000, Rand: rand.New(rand.NewSource(seed))}
}

func TestTruncate10(t *testing.T) {
	tests := []struct{ in, paid, rem int64 }{
		{0, 0, 0}, {9, 0, 9}, {10, 10, 0}, {98_765, 98_760, 5}, {-15, -10, -5},
		{math.MaxInt64, math.MaxInt64 - 7, 7},
	}
	for _, tt := range tests {
		if paid, rem := Truncate10(tt.in); paid != tt.paid || rem != tt.rem {
			t.Errorf("Truncate10(%d) = %d, %d; want %d, %d", tt.in, paid, rem, tt.paid, tt.rem)
		}
	}
	prop := func(won int64) bool {
		paid, rem := Truncate10(won)
		return paid+rem == won && paid%10 == 0 && rem > -10 && rem < 10 && (won >= 0) == (paid >= 0 && rem >= 0)
	}
	if err := quick.Check(prop, quickConfig(1)); err != nil {
		t.Error(err)
	}
}

func TestApplyBP(t *testing.T) {
	tests := []struct{ amount, bp, want int64 }{
		{10_000, 600, 600},
		{12_345, 600, 740}, // 740.7 truncated
		{-12_345, 600, -740},
		{12_345, -600, -740},
		{1, 9_999, 0},
		{MaxAmount, 10_000, MaxAmount},
		{MaxAmount, 9_999, 999_900_000_000_000},
		{math.MaxInt64, 10_000, math.MaxInt64},
		{math.MinInt64, 5_000, math.MinInt64 / 2},
	}
	for _, tt := range tests {
		if got := ApplyBP(tt.amount, tt.bp); got != tt.want {
			t.Errorf("ApplyBP(%d, %d) = %d, want %d", tt.amount, tt.bp, got, tt.want)
		}
	}
	// Against math/big over the whole range the rules use.
	prop := func(a, b int64) bool {
		amount, bp := a%(MaxAmount+1), b%10_001
		want := new(big.Int).Mul(big.NewInt(amount), big.NewInt(bp))
		want.Quo(want, big.NewInt(10_000)) // Quo truncates toward zero
		return ApplyBP(amount, bp) == want.Int64()
	}
	if err := quick.Check(prop, quickConfig(2)); err != nil {
		t.Error(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("ApplyBP overflowing int64 did not panic")
		}
	}()
	ApplyBP(math.MaxInt64, 10_001)
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1_000, "1,000"}, {1_234_567, "1,234,567"},
		{-1_234, "-1,234"}, {-999, "-999"}, {100_000, "100,000"},
		{math.MinInt64, "-9,223,372,036,854,775,808"},
	}
	for _, tt := range tests {
		if got := FormatNumber(tt.in); got != tt.want {
			t.Errorf("FormatNumber(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if got := FormatWon(tt.in); got != tt.want+"원" {
			t.Errorf("FormatWon(%d) = %q", tt.in, got)
		}
	}
	for bp, want := range map[int64]string{0: "0%", 600: "6%", 625: "6.25%", 650: "6.5%", 8_005: "80.05%", 10_000: "100%"} {
		if got := formatBP(bp); got != want {
			t.Errorf("formatBP(%d) = %q, want %q", bp, got, want)
		}
	}
}

func TestParseWon(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"1234567", 1_234_567, nil},
		{"1,234,567", 1_234_567, nil},
		{"1,234,567원", 1_234_567, nil},
		{" 1,234,567 원 ", 1_234_567, nil},
		{"0", 0, nil},
		{"999", 999, nil},
		{"1,000,000,000,000,000", MaxAmount, nil},
		{"", 0, ErrWonFormat},
		{"원", 0, ErrWonFormat},
		{"-1,234", 0, ErrWonFormat},
		{"+1234", 0, ErrWonFormat},
		{"1234.5", 0, ErrWonFormat},
		{"1,234.00", 0, ErrWonFormat},
		{"12,34", 0, ErrWonFormat},
		{"1234,567", 0, ErrWonFormat},
		{",123", 0, ErrWonFormat},
		{"123,", 0, ErrWonFormat},
		{"1 234", 0, ErrWonFormat},
		{"1e6", 0, ErrWonFormat},
		{"₩1,000", 0, ErrWonFormat},
		{"1,000,000,000,000,001", 0, ErrWonRange},
		{"99999999999999999999999", 0, ErrWonRange},
	}
	for _, tt := range tests {
		got, err := ParseWon(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseWon(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	roundTrip := func(n int64) bool {
		n = int64(absU(n) % uint64(MaxAmount+1))
		a, err1 := ParseWon(FormatWon(n))
		b, err2 := ParseWon(FormatNumber(n))
		return a == n && b == n && err1 == nil && err2 == nil
	}
	if err := quick.Check(roundTrip, quickConfig(3)); err != nil {
		t.Error(err)
	}
}

func TestWideArithmetic(t *testing.T) {
	big64 := func(v uint64) *big.Int { return new(big.Int).SetUint64(v) }
	prop := func(a, b, c, d uint64) bool {
		a, b, c, d = a>>1, b>>1, c>>1, d>>1 // non-negative int64s
		want := new(big.Int).Mul(big64(a), big64(b)).Cmp(new(big.Int).Mul(big64(c), big64(d)))
		if cmpProducts(int64(a), int64(b), int64(c), int64(d)) != want {
			return false
		}
		q := new(big.Int).Quo(new(big.Int).Mul(big64(a), big64(b)), big64(c|1))
		return !q.IsInt64() || mulDiv(a, b, c|1) == q.Int64()
	}
	if err := quick.Check(prop, quickConfig(4)); err != nil {
		t.Error(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("mulDiv with a 128-bit quotient did not panic")
		}
	}()
	mulDiv(math.MaxUint64, math.MaxUint64, 3)
}
