package models

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStaggerScheduleAndNotYourDay(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a date column: midnight UTC of the KST date
	p := &Program{Rules: Rules{StaggerMode: "five_day", StaggerStartsOn: &start}}
	got := fmt.Sprint(p.StaggerSchedule())
	for _, want := range []string{"[1 6]", "[2 7]", "[3 8]", "[4 9]", "[5 0]"} {
		if !strings.Contains(got, want) {
			t.Fatalf("five_day schedule %s lacks %s", got, want)
		}
	}
	days := p.StaggerSchedule()
	if len(days) != 5 || days[0].Date.In(kst).Format(time.DateOnly) != "2026-03-02" || days[4].Date.In(kst).Format(time.DateOnly) != "2026-03-06" {
		t.Fatalf("five_day days: %v", days)
	}
	if d := p.StaggerOpenToAllOn().In(kst).Format(time.DateOnly); d != "2026-03-07" {
		t.Fatalf("open to all on %s", d)
	}
	// 23:59 KST on day one is still day one; 00:00 is day two.
	late := time.Date(2026, 3, 2, 23, 59, 0, 0, kst)
	err := p.CheckApplicationDay(2, late)
	e, ok := err.(*Error)
	if !ok || e.Code != "not_your_day" || e.Kind != EINVALID || e.Data["opens_on"] != "2026-03-03" || e.Fields["brn"] != "not_your_day" {
		t.Fatalf("digit 2 at 23:59 on day one: %#v", err)
	}
	if err := p.CheckApplicationDay(2, late.Add(time.Minute)); err != nil {
		t.Fatalf("digit 2 at midnight: %v", err)
	}
	if err := p.CheckApplicationDay(6, late); err != nil {
		t.Fatalf("digit 6 on day one: %v", err)
	}

	p.Rules.StaggerMode = "odd_even"
	days = p.StaggerSchedule()
	if len(days) != 2 || fmt.Sprint(days[0].Digits) != "[1 3 5 7 9]" || fmt.Sprint(days[1].Digits) != "[2 4 6 8 0]" {
		t.Fatalf("odd_even schedule: %v", days)
	}
	p.Rules.StaggerMode = "none"
	if p.StaggerSchedule() != nil || !p.StaggerOpenToAllOn().IsZero() || p.CheckApplicationDay(3, late) != nil {
		t.Fatal("no staggering: no schedule, every digit applies")
	}
}
