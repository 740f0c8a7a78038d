package rules

import (
	"cmp"
	"fmt"
	"time"
)

// KST is Korea Standard Time. Korea has kept UTC+9 without daylight saving since 1988,
// so a fixed zone is exact for every date these rules see and needs no tzdata (no I/O).
var KST = time.FixedZone("KST", 9*60*60)

const secondsPerDay = 24 * 60 * 60

// Date is a calendar day in Korea; ledgers and promotion periods are kept by day.
// It is comparable, so it serves as a map key. Build it with DateOf or ParseDate so
// it is normalised (no 30 February).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the Korean calendar day of t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(KST).Date()
	return Date{y, m, d}
}

// ParseDate reads "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, KST)
	if err != nil {
		return Date{}, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrInput, s)
	}
	return DateOf(t), nil
}

// Start is 00:00 KST of the day.
func (d Date) Start() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, KST) }

// AddDays returns the day n days later (earlier for negative n).
func (d Date) AddDays(n int) Date { return DateOf(d.Start().AddDate(0, 0, n)) }

// Weekday returns the day of the week.
func (d Date) Weekday() time.Weekday { return d.Start().Weekday() }

// Compare returns -1, 0 or +1 as d is before, on or after e.
func (d Date) Compare(e Date) int {
	return cmp.Or(cmp.Compare(d.Year, e.Year), cmp.Compare(d.Month, e.Month), cmp.Compare(d.Day, e.Day))
}

// String returns "2006-01-02".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// MarshalText writes the date as "2006-01-02" (JSON, CSV).
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "2006-01-02".
func (d *Date) UnmarshalText(b []byte) error {
	p, err := ParseDate(string(b))
	if err == nil {
		*d = p
	}
	return err
}

// valid reports whether d is a normalised calendar day.
func (d Date) valid() bool { return DateOf(d.Start()) == d }
