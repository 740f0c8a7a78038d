package rules

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

var kakaoBands = []Band{{300_000, 30_000}, {500_000, 50_000}}

func TestCompensate(t *testing.T) {
	kakao := CompensationParams{RateBP: 10_000, Cap: 10_000_000, Bands: kakaoBands}
	rate := CompensationParams{RateBP: 8_000, Floor: 10_000, Cap: 10_000_000}
	tests := []struct {
		name       string
		loss       int64
		p          CompensationParams
		amount     int64
		remainder  int64
		band       int
		caseReview bool
	}{
		{"kakao no loss", 0, kakao, 0, 0, -1, false},
		{"kakao 1 won", 1, kakao, 30_000, 0, 0, false},
		{"kakao 30만 edge", 300_000, kakao, 30_000, 0, 0, false},
		{"kakao just above 30만", 300_001, kakao, 50_000, 0, 1, false},
		{"kakao 50만 edge", 500_000, kakao, 50_000, 0, 1, false},
		{"kakao above bands", 1_234_567, kakao, 1_234_560, 7, -1, true},
		{"kakao above bands, capped", 50_000_000, kakao, 10_000_000, 0, -1, true},
		{"rate", 123_457, rate, 98_760, 5, -1, false},
		{"rate floor", 5, rate, 10_000, 0, -1, false},
		{"rate cap", 20_000_000, rate, 10_000_000, 0, -1, false},
		{"rate no loss ignores floor", 0, rate, 0, 0, -1, false},
		{"no cap", MaxAmount, CompensationParams{RateBP: 10_000}, MaxAmount, 0, -1, false},
		{"zero rate pays the floor", 1_000, CompensationParams{Floor: 20}, 20, 0, -1, false},
	}
	for _, tt := range tests {
		c, err := Compensate(tt.loss, tt.p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if c.Amount != tt.amount || c.Remainder != tt.remainder || c.Band != tt.band || c.CaseReview != tt.caseReview {
			t.Errorf("%s: got amount %d, remainder %d, band %d, review %v; want %d, %d, %d, %v",
				tt.name, c.Amount, c.Remainder, c.Band, c.CaseReview, tt.amount, tt.remainder, tt.band, tt.caseReview)
		}
	}
}

func TestCompensateRejects(t *testing.T) {
	tests := []struct {
		name string
		loss int64
		p    CompensationParams
	}{
		{"negative loss", -1, CompensationParams{RateBP: 10_000}},
		{"huge loss", MaxAmount + 1, CompensationParams{RateBP: 10_000}},
		{"negative rate", 1, CompensationParams{RateBP: -1}},
		{"rate above 100%", 1, CompensationParams{RateBP: 10_001}},
		{"floor not a multiple of 10", 1, CompensationParams{RateBP: 10_000, Floor: 15}},
		{"cap not a multiple of 10", 1, CompensationParams{RateBP: 10_000, Cap: 25}},
		{"floor above cap", 1, CompensationParams{RateBP: 10_000, Floor: 100, Cap: 50}},
		{"negative floor", 1, CompensationParams{RateBP: 10_000, Floor: -10}},
		{"bands out of order", 1, CompensationParams{RateBP: 10_000, Bands: []Band{{500_000, 50_000}, {300_000, 30_000}}}},
		{"bands repeat", 1, CompensationParams{RateBP: 10_000, Bands: []Band{{300_000, 30_000}, {300_000, 50_000}}}},
		{"negative band amount", 1, CompensationParams{RateBP: 10_000, Bands: []Band{{300_000, -1}}}},
	}
	for _, tt := range tests {
		if _, err := Compensate(tt.loss, tt.p); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tt.name, err)
		}
	}
}

func TestCompensateProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 19))
	for range 20_000 {
		p := CompensationParams{RateBP: r.Int64N(10_001), Floor: 10 * r.Int64N(10_000)}
		if r.IntN(4) > 0 {
			p.Cap = p.Floor + 10*r.Int64N(1_000_000)
		}
		if r.IntN(3) == 0 {
			p.Bands = kakaoBands
		}
		loss := r.Int64N([]int64{1_000, 1_000_000, 1_000_000_000, MaxAmount}[r.IntN(4)])
		c, err := Compensate(loss, p)
		if err != nil {
			t.Fatal(err)
		}
		upper := p.Cap
		if upper == 0 {
			upper = MaxAmount
		}
		switch {
		case c.Amount%10 != 0 || c.Remainder < 0 || c.Remainder > 9:
			t.Fatalf("not truncated to 10 won: %+v", c)
		case loss == 0 && c.Amount != 0:
			t.Fatalf("no loss but paid: %+v", c)
		case loss > 0 && c.Amount < p.Floor:
			t.Fatalf("below floor: %+v", c)
		case p.Cap > 0 && c.Amount > p.Cap:
			t.Fatalf("above cap: %+v", c)
		case loss > 0 && c.Amount+c.Remainder != min(max(c.Base, p.Floor), upper):
			t.Fatalf("amount and 끝수 do not add up to the clamped base: %+v", c)
		case c.CaseReview != (len(p.Bands) > 0 && loss > p.Bands[len(p.Bands)-1].UpTo):
			t.Fatalf("case review flag: %+v", c)
		}
		// Without bands, more loss never pays less.
		if len(p.Bands) == 0 {
			more, err := Compensate(loss+r.Int64N(1_000_000), p)
			if err != nil {
				t.Fatal(err)
			}
			if more.Amount < c.Amount {
				t.Fatalf("loss %d pays %d but loss %d pays %d", loss, c.Amount, more.Loss, more.Amount)
			}
		}
	}
}

func TestCompensationExplanation(t *testing.T) {
	c, err := Compensate(123_457, CompensationParams{RateBP: 8_000, Floor: 10_000, Cap: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"추정 손실: 123,457원",
		"보정률 80%: 123,457원 × 80% = 98,765원",
		"10원 미만 절사(국고금관리법 제47조): 끝수 5원",
		"보상액: 98,760원",
	}
	if got := c.Explanation("ko"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	review, _ := Compensate(600_000, CompensationParams{RateBP: 10_000, Floor: 0, Cap: 100_000, Bands: kakaoBands})
	en := strings.Join(review.Explanation("en"), "\n")
	for _, s := range []string{"Rate 100%: 600,000원 × 100% = 600,000원", "top band of 500,000원: case review", "Lowered to the cap: 100,000원", "Compensation: 100,000원"} {
		if !strings.Contains(en, s) {
			t.Errorf("English explanation lacks %q:\n%s", s, en)
		}
	}
	band, _ := Compensate(1, CompensationParams{Floor: 50_000, Bands: kakaoBands})
	ko := strings.Join(band.Explanation("ko"), "\n")
	for _, s := range []string{"구간 지급: 손실 300,000원 이하 → 30,000원", "하한 적용: 50,000원", "보상액: 50,000원"} {
		if !strings.Contains(ko, s) {
			t.Errorf("Korean explanation lacks %q:\n%s", s, ko)
		}
	}
	none, _ := Compensate(0, CompensationParams{})
	if got := none.Explanation("en"); len(got) != 2 || got[1] != "No loss, so no compensation" {
		t.Errorf("no-loss explanation: %q", got)
	}
}
