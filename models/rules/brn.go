package rules

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of ParseBRN: a malformed number and a well-formed one whose check digit is
// wrong (usually a typo) are told apart so the UI can say which.
var (
	ErrBRNFormat   = errors.New("rules: business registration number must be 10 digits (123-45-67890)")
	ErrBRNChecksum = errors.New("rules: business registration number check digit is wrong")
)

// BRN is a Korean business registration number (사업자등록번호) whose NTS check digit
// has been verified. The zero value is no number; get one from ParseBRN.
type BRN struct{ digits string }

// brnWeights are the NTS weights of the first nine digits.
var brnWeights = [9]int{1, 3, 7, 1, 3, 7, 1, 3, 5}

// ParseBRN accepts "1208147521" or "120-81-47521" (surrounding spaces trimmed).
func ParseBRN(s string) (BRN, error) {
	t := strings.TrimSpace(s)
	if len(t) == 12 && t[3] == '-' && t[6] == '-' {
		t = t[:3] + t[4:6] + t[7:]
	}
	if len(t) != 10 || strings.Trim(t, "0123456789") != "" {
		return BRN{}, fmt.Errorf("%w: %q", ErrBRNFormat, s)
	}
	if brnCheckDigit(t[:9]) != t[9] {
		return BRN{}, fmt.Errorf("%w: %q", ErrBRNChecksum, s)
	}
	return BRN{t}, nil
}

// brnCheckDigit returns the NTS check digit (as an ASCII digit) of nine ASCII digits:
// Σ digit×weight, plus floor(ninth digit × 5 / 10), and the check digit is
// (10 − sum mod 10) mod 10.
func brnCheckDigit(head string) byte {
	sum := 0
	for i, w := range brnWeights {
		sum += int(head[i]-'0') * w
	}
	sum += int(head[8]-'0') * 5 / 10
	return byte('0' + (10-sum%10)%10)
}

// String returns the ten digits, as stored.
func (b BRN) String() string { return b.digits }

// Formatted returns the number as people write it: 120-81-47521.
func (b BRN) Formatted() string {
	if b.digits == "" {
		return ""
	}
	return b.digits[:3] + "-" + b.digits[3:5] + "-" + b.digits[5:]
}

// LastDigit is the check digit, which staggered application days (홀짝제, 5부제) use.
// It is -1 for the zero BRN.
func (b BRN) LastDigit() int {
	if b.digits == "" {
		return -1
	}
	return int(b.digits[9] - '0')
}

// BRNSeedSpace is how many distinct numbers ValidBRNFromSeed yields.
const BRNSeedSpace = 899 * 89 * 10_000

// ValidBRNFromSeed returns the n-th synthetic valid BRN, 0 ≤ n < BRNSeedSpace, for
// demo seeds and load tests: tax office 101–999, type code 01–89, a four-digit serial
// from n, and the computed check digit. Distinct n give distinct numbers, and every
// ten consecutive n cover all ten last digits (staggered days stay balanced).
// It panics for n outside that range, which is a bug in the caller.
func ValidBRNFromSeed(n int) BRN {
	if n < 0 || n >= BRNSeedSpace {
		panic(fmt.Sprintf("rules: BRN seed %d outside [0, %d)", n, BRNSeedSpace))
	}
	rest := n / 10_000
	head := fmt.Sprintf("%03d%02d%04d", 101+rest/89, 1+rest%89, n%10_000)
	return BRN{head + string(brnCheckDigit(head))}
}
