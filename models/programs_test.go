package models

import (
	"testing"
	"time"
)

func TestApplicationDayFiveDay(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	p := &Program{Rules: Rules{StaggerMode: "five_day", StaggerStartsOn: &start}}
	at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, kst) }
	cases := []struct {
		digit    int
		now      time.Time
		ok       bool
		opensDay int
	}{
		{1, at(2, 9), true, 2}, {6, at(2, 23), true, 2}, // Monday: 1 and 6
		{2, at(2, 9), false, 3}, {0, at(2, 9), false, 6}, // 0 waits for Friday (5 and 0)
		{5, at(6, 9), true, 6},
		{2, at(7, 9), true, 7}, // after the staggered week everyone may apply
		{3, at(1, 9), true, 1}, // before the first staggered day the window rules alone apply
	}
	for _, c := range cases {
		day, ok := p.ApplicationDay(c.digit, c.now)
		if ok != c.ok || day.Day() != c.opensDay {
			t.Errorf("digit %d at %v: got (%v, %v), want (%v, day %d)", c.digit, c.now, day, ok, c.ok, c.opensDay)
		}
	}
}

func TestApplicationDayOddEvenAndNone(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	p := &Program{Rules: Rules{StaggerMode: "odd_even", StaggerStartsOn: &start}}
	first := time.Date(2026, 3, 2, 10, 0, 0, 0, kst)
	if _, ok := p.ApplicationDay(7, first); !ok {
		t.Error("odd digits apply on the first day")
	}
	if day, ok := p.ApplicationDay(4, first); ok || day.Day() != 3 {
		t.Errorf("even digit on day one: got (%v, %v), want the next day", day, ok)
	}
	p.Rules.StaggerMode = "none"
	if _, ok := p.ApplicationDay(4, first); !ok {
		t.Error("no staggering: every digit applies")
	}
}
