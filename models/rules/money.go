package rules

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// MaxAmount bounds every money input (1,000조 원, far above any relief program) so
// that a sum of thousands of amounts still fits in int64.
const MaxAmount int64 = 1_000_000_000_000_000

// Errors of ParseWon.
var (
	ErrWonFormat = errors.New("rules: malformed won amount")
	ErrWonRange  = errors.New("rules: won amount out of range")
)

// Truncate10 drops the part of a disbursement under 10 won (국고금관리법 §47). The
// remainder stays in the budget and is reported as 끝수; paid + remainder == won.
// Negative amounts truncate toward zero.
func Truncate10(won int64) (paid, remainder int64) {
	remainder = won % 10
	return won - remainder, remainder
}

// ApplyBP returns amount × bp / 10,000 truncated toward zero. The product is taken in
// 128 bits, so it is exact for any inputs whose result fits in int64 (always when
// |bp| ≤ 10,000); it panics otherwise rather than return a wrapped amount.
func ApplyBP(amount, bp int64) int64 {
	q := mulDiv(absU(amount), absU(bp), 10_000)
	if (amount < 0) != (bp < 0) {
		return -q
	}
	return q
}

// mulDiv returns floor(a × b / c) with a 128-bit intermediate product. It panics when
// the quotient does not fit in int64; the rules' own inputs (≤ MaxAmount) never do.
func mulDiv(a, b, c uint64) int64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		panic("rules: amount overflows int64")
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		panic("rules: amount overflows int64")
	}
	return int64(q)
}

// cmpProducts compares a × b with c × d (all non-negative) without overflow.
func cmpProducts(a, b, c, d int64) int {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	if h1 != h2 {
		return cmp.Compare(h1, h2)
	}
	return cmp.Compare(l1, l2)
}

// absU is |v| as uint64; correct for math.MinInt64 too.
func absU(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}

// validAmount reports whether v is a money input the rules accept.
func validAmount(v int64) bool { return v >= 0 && v <= MaxAmount }

// FormatNumber writes n with thousands separators: 1,234,567.
func FormatNumber(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
		s = s[1:]
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FormatWon writes an amount as shown to people: 1,234,567원, -1,234원.
func FormatWon(won int64) string { return FormatNumber(won) + "원" }

// ParseWon reads a non-negative whole-won amount: "1234567", "1,234,567" or
// "1,234,567원" (surrounding spaces allowed). Commas must group by thousands. Signs,
// decimals and anything else are ErrWonFormat; amounts above MaxAmount are ErrWonRange.
func ParseWon(s string) (int64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "원"))
	if strings.Contains(t, ",") {
		groups := strings.Split(t, ",")
		for i, g := range groups {
			if first := i == 0; first && (len(g) == 0 || len(g) > 3) || !first && len(g) != 3 {
				return 0, fmt.Errorf("%w: %q: misplaced comma", ErrWonFormat, s)
			}
		}
		t = strings.Join(groups, "")
	}
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q: want whole won in digits", ErrWonFormat, s)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > MaxAmount {
		return 0, fmt.Errorf("%w: %q: above %s", ErrWonRange, s, FormatWon(MaxAmount))
	}
	return n, nil
}

// formatBP writes a non-negative basis-point rate as a percentage: 600 → "6%",
// 625 → "6.25%".
func formatBP(bp int64) string {
	s := strconv.FormatInt(bp/100, 10)
	if frac := bp % 100; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", frac), "0")
	}
	return s + "%"
}

// korean reports whether explanations should be Korean: everything but English,
// because the product is Korean-first.
func korean(lang string) bool { return !strings.HasPrefix(strings.ToLower(lang), "en") }

// tr picks the Korean or the English text.
func tr(ko bool, korean, english string) string {
	if ko {
		return korean
	}
	return english
}
