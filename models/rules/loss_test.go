package rules

import (
	"errors"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func day(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, KST)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDate(t *testing.T) {
	d := day("2025-09-26")
	if d != (Date{2025, time.September, 26}) || d.Weekday() != time.Friday || d.String() != "2025-09-26" {
		t.Errorf("ParseDate: %+v %v", d, d.Weekday())
	}
	if got := d.AddDays(-28); got != day("2025-08-29") {
		t.Errorf("AddDays(-28) = %v", got)
	}
	if got := DateOf(time.Date(2025, 9, 26, 15, 30, 0, 0, time.UTC)); got != day("2025-09-27") {
		t.Errorf("DateOf(15:30 UTC) = %v, want the next Korean day", got)
	}
	if d.Compare(d.AddDays(1)) != -1 || d.AddDays(1).Compare(d) != 1 || d.Compare(d) != 0 {
		t.Error("Compare")
	}
	var u Date
	if err := u.UnmarshalText([]byte("2025-02-30")); !errors.Is(err, ErrInput) {
		t.Errorf("UnmarshalText(2025-02-30) = %v", err)
	}
	if b, _ := d.MarshalText(); u.UnmarshalText(b) != nil || u != d {
		t.Errorf("text round trip: %q → %v", b, u)
	}
	if (Date{2025, time.February, 30}).valid() || !d.valid() {
		t.Error("valid")
	}
}

func TestEstimateLossWorkedExample(t *testing.T) {
	sales := map[Date]int64{
		// Baseline window 2025-08-29 .. 2025-09-25. Fridays: one missing → 0.
		day("2025-08-29"): 100_000, day("2025-09-05"): 100_000, day("2025-09-12"): 100_000,
		day("2025-08-30"): 200_000, day("2025-09-06"): 200_000, day("2025-09-13"): 200_000, day("2025-09-20"): 200_000,
		day("2025-08-31"): 50_000, day("2025-09-07"): 50_000, day("2025-09-14"): 50_000, day("2025-09-21"): 50_000,
		// Outage days.
		day("2025-09-26"): 60_000, day("2025-09-27"): 10_000, day("2025-09-28"): 40_000,
		// Outside both windows: ignored.
		day("2025-08-28"): 9_000_000, day("2025-09-29"): 9_000_000,
	}
	e, err := EstimateLoss(sales, at("2025-09-26 12:00"), at("2025-09-28 06:00"), LossParams{})
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []LossDay{
		{Date: day("2025-09-26"), Weekday: time.Friday, Baseline: 75_000, Seconds: 43_200, Expected: 37_500, Sales: 60_000, Actual: 30_000},
		{Date: day("2025-09-27"), Weekday: time.Saturday, Baseline: 200_000, Seconds: 86_400, Expected: 200_000, Sales: 10_000, Actual: 10_000},
		{Date: day("2025-09-28"), Weekday: time.Sunday, Baseline: 50_000, Seconds: 21_600, Expected: 12_500, Sales: 40_000, Actual: 10_000},
	}
	if !slices.Equal(e.Days, wantDays) {
		t.Errorf("days:\n got %+v\nwant %+v", e.Days, wantDays)
	}
	if e.BaselineWeeks != 4 || e.BaselineFrom != day("2025-08-29") || e.BaselineTo != day("2025-09-25") ||
		e.Expected != 250_000 || e.Actual != 50_000 || e.Loss != 200_000 {
		t.Errorf("got %+v", e)
	}
	ko := strings.Join(e.Explanation("ko"), "\n")
	for _, want := range []string{
		"장애 기간: 2025-09-26 12:00 ~ 2025-09-28 06:00 (KST)",
		"직전 4주(2025-08-29 ~ 2025-09-25) 같은 요일 평균",
		"2025-09-26(금) 12시간 0분/24시간: 기준 75,000원 → 37,500원, 실제 60,000원 → 30,000원",
		"2025-09-27(토): 기준 200,000원, 실제 10,000원",
		"추정 손실 = max(0, 250,000원 − 50,000원) = 200,000원",
	} {
		if !strings.Contains(ko, want) {
			t.Errorf("Korean explanation lacks %q:\n%s", want, ko)
		}
	}
	en := strings.Join(e.Explanation("en-US"), "\n")
	for _, want := range []string{"previous 4 weeks (2025-08-29 to 2025-09-25)", "2025-09-28 (Sun), 6h 00m of 24h", "Estimated loss = max(0, 250,000원 − 50,000원) = 200,000원"} {
		if !strings.Contains(en, want) {
			t.Errorf("English explanation lacks %q:\n%s", want, en)
		}
	}

	// The same instants given in UTC, and two baseline weeks.
	utc, err := EstimateLoss(sales, at("2025-09-26 12:00").UTC(), at("2025-09-28 06:00").UTC(), LossParams{BaselineWeeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	if utc.BaselineFrom != day("2025-09-12") || utc.Days[0].Baseline != 50_000 || utc.Days[1].Baseline != 200_000 || utc.Days[0].Seconds != 43_200 {
		t.Errorf("UTC input, 2 weeks: %+v", utc)
	}
}

func TestEstimateLossDemoOutage(t *testing.T) {
	// The NIRS fire: 2025-09-26 20:15 – 2025-10-09 18:00, flat sales of 100,000 a day.
	start, end := at("2025-09-26 20:15"), at("2025-10-09 18:00")
	sales := map[Date]int64{}
	for d := DateOf(start).AddDays(-28); d.Compare(DateOf(start)) < 0; d = d.AddDays(1) {
		sales[d] = 100_000
	}
	e, err := EstimateLoss(sales, start, end, LossParams{})
	if err != nil {
		t.Fatal(err)
	}
	// 3h45m of the first day, 12 full days, 18h of the last.
	if len(e.Days) != 14 || e.Days[0].Seconds != 13_500 || e.Days[13].Seconds != 64_800 {
		t.Fatalf("days: %+v", e.Days)
	}
	if want := int64(15_625 + 12*100_000 + 75_000); e.Expected != want || e.Loss != want || e.Actual != 0 {
		t.Errorf("expected %d, loss %d; want %d", e.Expected, e.Loss, want)
	}
}

func TestEstimateLossSecondsExplained(t *testing.T) {
	// 23:57:30 to midnight: ending exactly at midnight touches no second day.
	start := at("2025-09-26 23:59").Add(-90 * time.Second)
	e, err := EstimateLoss(map[Date]int64{day("2025-09-19"): 86_400 * 4}, start, start.Add(150*time.Second), LossParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Days) != 1 || e.Days[0].Seconds != 150 || e.Days[0].Expected != 150 {
		t.Fatalf("%+v", e.Days)
	}
	got := e.Days[0].explain(true) + " | " + e.Days[0].explain(false)
	if want := "2025-09-26(금) 0시간 2분 30초/24시간: 기준 86,400원 → 150원, 실제 0원 → 0원 | 2025-09-26 (Fri), 0h 02m 30s of 24h: baseline 86,400원 → 150원, actual 0원 → 0원"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEstimateLossRejects(t *testing.T) {
	start := at("2025-09-26 20:15")
	tests := []struct {
		name       string
		sales      map[Date]int64
		start, end time.Time
		weeks      int
	}{
		{"end before start", nil, start, start.Add(-time.Hour), 4},
		{"empty window", nil, start, start.Add(time.Millisecond), 4},
		{"over a year", nil, start, start.AddDate(1, 0, 2), 4},
		{"negative weeks", nil, start, start.Add(time.Hour), -1},
		{"too many weeks", nil, start, start.Add(time.Hour), 53},
		{"negative sales", map[Date]int64{day("2025-09-01"): -1}, start, start.Add(time.Hour), 4},
		{"huge sales", map[Date]int64{day("2025-09-01"): MaxAmount + 1}, start, start.Add(time.Hour), 4},
		{"unnormalised date", map[Date]int64{{2025, time.February, 30}: 1}, start, start.Add(time.Hour), 4},
	}
	for _, tt := range tests {
		if _, err := EstimateLoss(tt.sales, tt.start, tt.end, LossParams{BaselineWeeks: tt.weeks}); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tt.name, err)
		}
	}
}

// randomLossCase builds a random ledger around a random outage.
func randomLossCase(r *rand.Rand) (map[Date]int64, time.Time, time.Time, LossParams) {
	start := at("2025-01-01 00:00").Add(time.Duration(r.Int64N(365*secondsPerDay)) * time.Second)
	end := start.Add(time.Duration(1+r.Int64N(20*secondsPerDay)) * time.Second)
	p := LossParams{BaselineWeeks: r.IntN(8)}
	sales := map[Date]int64{}
	for d := DateOf(start).AddDays(-60); d.Compare(DateOf(end).AddDays(2)) < 0; d = d.AddDays(1) {
		if r.IntN(5) > 0 {
			sales[d] = r.Int64N([]int64{1_000, 1_000_000, 100_000_000, MaxAmount}[r.IntN(4)])
		}
	}
	return sales, start, end, p
}

func TestEstimateLossProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 2_000 {
		sales, start, end, p := randomLossCase(r)
		e, err := EstimateLoss(sales, start, end, p)
		if err != nil {
			t.Fatal(err)
		}
		if e.Loss < 0 || e.Loss != max(0, e.Expected-e.Actual) {
			t.Fatalf("loss %d from expected %d, actual %d", e.Loss, e.Expected, e.Actual)
		}
		var secs int64
		for _, d := range e.Days {
			secs += d.Seconds
		}
		if secs != end.Unix()-start.Unix() {
			t.Fatalf("days cover %d s of a %d s outage", secs, end.Unix()-start.Unix())
		}

		// More actual sales on an outage day never raise the loss.
		d := e.Days[r.IntN(len(e.Days))].Date
		more := maps.Clone(sales)
		more[d] += r.Int64N(1_000_000) + 1
		e2, err := EstimateLoss(more, start, end, p)
		if err != nil {
			t.Fatal(err)
		}
		if e2.Loss > e.Loss || e2.Expected != e.Expected {
			t.Fatalf("sales on %v +%d: loss %d → %d, expected %d → %d", d, more[d]-sales[d], e.Loss, e2.Loss, e.Expected, e2.Expected)
		}

		// Sales equal to the baseline on full outage days: no loss.
		first := DateOf(start).AddDays(1)
		fullStart, fullEnd := first.Start(), first.AddDays(1+r.IntN(10)).Start()
		base, err := EstimateLoss(sales, fullStart, fullEnd, p)
		if err != nil {
			t.Fatal(err)
		}
		same := maps.Clone(sales)
		for _, d := range base.Days {
			same[d.Date] = d.Baseline
		}
		if e, _ := EstimateLoss(same, fullStart, fullEnd, p); e.Loss != 0 || e.Expected != e.Actual {
			t.Fatalf("sales equal to the baseline give loss %d (%+v)", e.Loss, e)
		}
	}
}

func TestEstimateLossPartialDayIsProportional(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 2_000 {
		sales, start, _, p := randomLossCase(r)
		d := DateOf(start).AddDays(1)
		full, err := EstimateLoss(sales, d.Start(), d.AddDays(1).Start(), p)
		if err != nil {
			t.Fatal(err)
		}
		// Either half of the day carries half of it, within a won.
		offset := time.Duration(r.IntN(2)) * 12 * time.Hour
		half, err := EstimateLoss(sales, d.Start().Add(offset), d.Start().Add(offset+12*time.Hour), p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := 2*half.Expected - full.Expected; diff < -2 || diff > 2 {
			t.Fatalf("half day expected %d vs full %d", half.Expected, full.Expected)
		}
		if diff := 2*half.Actual - full.Actual; diff < -2 || diff > 2 {
			t.Fatalf("half day actual %d vs full %d", half.Actual, full.Actual)
		}
		// Any fraction s/86400: within a won of the exact share.
		s := 1 + r.Int64N(secondsPerDay)
		part, err := EstimateLoss(sales, d.Start(), d.Start().Add(time.Duration(s)*time.Second), p)
		if err != nil {
			t.Fatal(err)
		}
		// The full day is floor(S/w) and the part floor(S·s/(w·86400)), so the part lies
		// in [floor(full·s/86400), full·s/86400 + 1).
		share := new(big.Int).Mul(big.NewInt(full.Expected), big.NewInt(s))
		share.Quo(share, big.NewInt(secondsPerDay))
		if got := part.Expected - share.Int64(); got < 0 || got > 1 {
			t.Fatalf("%d s of a day: expected %d, share of the full day %v", s, part.Expected, share)
		}
	}
}
