package rules

import (
	"fmt"
	"time"
)

// Loss-estimate limits.
const (
	DefaultBaselineWeeks = 4
	MaxBaselineWeeks     = 52
	MaxOutageDays        = 366 // bounds the work and keeps Σ sales far from overflow
)

// LossParams tunes EstimateLoss.
type LossParams struct {
	// BaselineWeeks is how many weeks before the outage form the baseline;
	// 0 means DefaultBaselineWeeks.
	BaselineWeeks int
}

// LossDay is one calendar day touched by the outage.
type LossDay struct {
	Date     Date
	Weekday  time.Weekday
	Baseline int64 // average sales of this weekday over the baseline weeks (truncated)
	Seconds  int64 // seconds of this day inside the outage; 86,400 for a full day
	Expected int64 // baseline × Seconds / 86,400
	Sales    int64 // the day's ledger sales
	Actual   int64 // Sales × Seconds / 86,400
}

// LossEstimate is the default loss estimate with every input that produced it, so the
// merchant and the reviewer can see why the amount is what it is.
type LossEstimate struct {
	Start, End    time.Time
	BaselineWeeks int
	BaselineFrom  Date // first and last day of the baseline window
	BaselineTo    Date
	Days          []LossDay
	Expected      int64 // Σ Days.Expected
	Actual        int64 // Σ Days.Actual
	Loss          int64 // max(0, Expected − Actual)
}

// EstimateLoss estimates a seller's lost sales over the outage [start, end) from its
// daily gross sales (DESIGN.md, "Loss estimate and rapid offer"):
//
//   - The baseline of a weekday is the average sales of that weekday over the
//     BaselineWeeks weeks that end the day before the outage starts. A day without a
//     ledger row counts as 0 sales: the platform ledger is taken to list every day a
//     seller sold, so a missing day is a day without sales, and averaging only the
//     days present would inflate the baseline and invent loss. (A seller newer than the window gets a low estimate and can claim more
//     with evidence.)
//   - Expected sales are the baselines of the outage days, each pro-rated by the
//     seconds of that day inside the outage. The division is done once on the
//     weekday's sum, so a full day gives exactly the shown baseline.
//   - Actual sales of a partial day are the same fraction of that day's sales: the
//     ledger is daily, so sales are taken as spread evenly over the day, which treats
//     both sides of the comparison alike.
//   - Loss = max(0, expected − actual). Each day's parts are truncated to the won, so
//     Expected is at most one won per day below the exact figure.
func EstimateLoss(sales map[Date]int64, start, end time.Time, p LossParams) (LossEstimate, error) {
	weeks := p.BaselineWeeks
	if weeks == 0 {
		weeks = DefaultBaselineWeeks
	}
	if weeks < 1 || weeks > MaxBaselineWeeks {
		return LossEstimate{}, fmt.Errorf("%w: baseline weeks %d outside 1..%d", ErrInput, weeks, MaxBaselineWeeks)
	}
	from, to := start.Unix(), end.Unix()
	if to <= from || to-from > MaxOutageDays*secondsPerDay {
		return LossEstimate{}, fmt.Errorf("%w: outage %s – %s must be between 1 second and %d days", ErrInput, start, end, MaxOutageDays)
	}
	for d, v := range sales {
		if !d.valid() || !validAmount(v) {
			return LossEstimate{}, fmt.Errorf("%w: sales %d on %v", ErrInput, v, d)
		}
	}

	first := DateOf(start)
	e := LossEstimate{
		Start: start, End: end, BaselineWeeks: weeks,
		BaselineFrom: first.AddDays(-7 * weeks), BaselineTo: first.AddDays(-1),
	}
	var weekdaySum [7]int64 // each weekday occurs exactly `weeks` times in the window
	for d := e.BaselineFrom; d.Compare(first) < 0; d = d.AddDays(1) {
		weekdaySum[d.Weekday()] += sales[d]
	}
	for d := first; d.Start().Unix() < to; d = d.AddDays(1) {
		secs := min(to, d.AddDays(1).Start().Unix()) - max(from, d.Start().Unix())
		sum := weekdaySum[d.Weekday()]
		day := LossDay{
			Date: d, Weekday: d.Weekday(), Seconds: secs, Sales: sales[d],
			Baseline: sum / int64(weeks),
			Expected: mulDiv(uint64(sum), uint64(secs), uint64(weeks)*secondsPerDay),
			Actual:   mulDiv(uint64(sales[d]), uint64(secs), secondsPerDay),
		}
		e.Days = append(e.Days, day)
		e.Expected += day.Expected
		e.Actual += day.Actual
	}
	e.Loss = max(0, e.Expected-e.Actual)
	return e, nil
}

// Explanation describes the estimate line by line, in Korean unless lang is English.
func (e LossEstimate) Explanation(lang string) []string {
	ko := korean(lang)
	const stamp = "2006-01-02 15:04"
	lines := []string{
		fmt.Sprintf(tr(ko, "장애 기간: %s ~ %s (KST)", "Outage: %s to %s (KST)"), e.Start.In(KST).Format(stamp), e.End.In(KST).Format(stamp)),
		fmt.Sprintf(tr(ko, "기준 매출: 직전 %d주(%s ~ %s) 같은 요일 평균, 매출 기록이 없는 날은 0원",
			"Baseline: average sales of the same weekday over the previous %d weeks (%s to %s); a day without sales records counts as 0"),
			e.BaselineWeeks, e.BaselineFrom, e.BaselineTo),
	}
	for _, d := range e.Days {
		lines = append(lines, d.explain(ko))
	}
	return append(lines,
		tr(ko, "예상 매출 합계: ", "Expected sales: ")+FormatWon(e.Expected),
		tr(ko, "실제 매출 합계: ", "Actual sales: ")+FormatWon(e.Actual),
		fmt.Sprintf(tr(ko, "추정 손실 = max(0, %s − %s) = %s", "Estimated loss = max(0, %s − %s) = %s"),
			FormatWon(e.Expected), FormatWon(e.Actual), FormatWon(e.Loss)))
}

var koreanWeekdays = [7]string{"일", "월", "화", "수", "목", "금", "토"}

// explain writes one day: "2025-09-26(금) 3시간 45분/24시간: 기준 … → …, 실제 … → …".
func (d LossDay) explain(ko bool) string {
	day := fmt.Sprintf("%s (%s)", d.Date, d.Weekday.String()[:3])
	if ko {
		day = fmt.Sprintf("%s(%s)", d.Date, koreanWeekdays[d.Weekday])
	}
	if d.Seconds == secondsPerDay {
		return fmt.Sprintf(tr(ko, "%s: 기준 %s, 실제 %s", "%s: baseline %s, actual %s"), day, FormatWon(d.Baseline), FormatWon(d.Sales))
	}
	h, m, sec := d.Seconds/3600, d.Seconds/60%60, d.Seconds%60
	span := fmt.Sprintf(tr(ko, "%d시간 %d분", "%dh %02dm"), h, m)
	if sec > 0 {
		span += fmt.Sprintf(tr(ko, " %d초", " %02ds"), sec)
	}
	return fmt.Sprintf(tr(ko, "%s %s/24시간: 기준 %s → %s, 실제 %s → %s", "%s, %s of 24h: baseline %s → %s, actual %s → %s"),
		day, span, FormatWon(d.Baseline), FormatWon(d.Expected), FormatWon(d.Sales), FormatWon(d.Actual))
}
