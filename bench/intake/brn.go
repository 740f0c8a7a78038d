package main

import (
	"fmt"
	"strings"
)

// brnWeights are the NTS weights over the first nine digits of a business
// registration number (사업자등록번호).
var brnWeights = [9]int{1, 3, 7, 1, 3, 7, 1, 3, 5}

// brnCheckDigit returns the NTS check digit for a nine-digit prefix given as
// an integer in [0, 999_999_999]: sum of digit*weight, plus floor(d9*5/10)
// for the ninth digit, then (10 - sum%10) % 10.
func brnCheckDigit(prefix uint64) int {
	var d [9]int
	for k := 8; k >= 0; k-- {
		d[k] = int(prefix % 10)
		prefix /= 10
	}
	sum := 0
	for k, w := range brnWeights {
		sum += d[k] * w
	}
	sum += d[8] * 5 / 10
	return (10 - sum%10) % 10
}

// validBRN reports whether s is ten digits (dashes allowed, as in
// 120-81-47521) with a correct NTS check digit.
func validBRN(s string) bool {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 10 {
		return false
	}
	var v uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + uint64(c-'0')
	}
	return brnCheckDigit(v/10) == int(v%10)
}

// BRN prefixes run from 100000000 so that no BRN starts with 0.
const (
	brnPrefixBase  = 100_000_000
	brnPrefixSpace = 900_000_000 // prefixes 100000000..999999999
)

// makeBRNs returns n distinct valid BRNs (as 10-digit integers) from the
// counter offset, offset+1, ...: counter c becomes the prefix 100000000+c
// followed by its check digit. When lastDigits is non-empty only BRNs ending
// in one of those digits are kept (for programs that stagger filing days by
// the BRN's last digit), so more counter values are consumed. It also returns
// the next unused counter value, a good -brn-offset for the next run.
func makeBRNs(n int, offset uint64, lastDigits []int) ([]uint64, uint64, error) {
	var allowed [10]bool
	for _, d := range lastDigits {
		if d < 0 || d > 9 {
			return nil, 0, fmt.Errorf("last digit %d is not a digit", d)
		}
		allowed[d] = true
	}
	if len(lastDigits) == 0 {
		allowed = [10]bool{true, true, true, true, true, true, true, true, true, true}
	}
	out := make([]uint64, 0, n)
	c := offset
	for len(out) < n {
		if c >= brnPrefixSpace {
			return nil, 0, fmt.Errorf("-brn-offset %d leaves room for only %d BRNs (counter space is %d)", offset, len(out), brnPrefixSpace)
		}
		prefix := brnPrefixBase + c
		check := brnCheckDigit(prefix)
		c++
		if allowed[check] {
			out = append(out, prefix*10+uint64(check))
		}
	}
	return out, c, nil
}

// appendBRN appends v (a 10-digit BRN) in the display form 123-45-67890.
func appendBRN(dst []byte, v uint64) []byte {
	var d [10]byte
	for k := 9; k >= 0; k-- {
		d[k] = byte('0' + v%10)
		v /= 10
	}
	dst = append(dst, d[0:3]...)
	dst = append(dst, '-')
	dst = append(dst, d[3:5]...)
	dst = append(dst, '-')
	return append(dst, d[5:10]...)
}

func parseDigitList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(f) != 1 || f[0] < '0' || f[0] > '9' {
			return nil, fmt.Errorf("%q is not a digit 0-9", f)
		}
		out = append(out, int(f[0]-'0'))
	}
	return out, nil
}
