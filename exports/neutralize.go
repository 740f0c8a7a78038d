package exports

import (
	"strings"
	"unicode/utf8"
)

// Neutralize defuses spreadsheet formula injection (OWASP "CSV injection"):
// a value a spreadsheet could take for a formula or DDE payload gets a
// leading single quote, so it shows as the text the user typed. Triggers are
// a leading = + - @, tab, CR or LF, and the full-width ＝ ＋ － ＠ that
// Korean IMEs produce and some spreadsheet apps fold to ASCII.
// Neutralize is idempotent.
func Neutralize(s string) string {
	if isFormulaLike(s) {
		return "'" + s
	}
	return s
}

func isFormulaLike(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r', '\n':
		return true
	case 0xEF: // lead byte of U+F000–U+FFFF, which holds the full-width forms
		r, _ := utf8.DecodeRuneInString(s)
		return r == '＝' || r == '＋' || r == '－' || r == '＠'
	}
	return false
}

// MaskAccount hides all but the last four digits of an account number,
// keeping separators so the shape stays recognisable: 123-456-789012 →
// ***-***-**9012. Numbers of four digits or fewer are masked entirely.
func MaskAccount(account string) string {
	digits := 0
	for _, r := range account {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	keep := 4
	if digits <= keep {
		keep = 0
	}
	var b strings.Builder
	b.Grow(len(account))
	seen := 0
	for _, r := range account {
		if r >= '0' && r <= '9' {
			seen++
			if seen <= digits-keep {
				r = '*'
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FormatBRN shows a 10-digit business registration number as 123-45-67890;
// anything else is returned unchanged so a bad value stays visible as is.
func FormatBRN(brn string) string {
	d := strings.ReplaceAll(brn, "-", "")
	if len(d) != 10 || strings.Trim(d, "0123456789") != "" {
		return brn
	}
	return d[:3] + "-" + d[3:5] + "-" + d[5:]
}
