package rules

import (
	"cmp"
	"fmt"
	"slices"
)

// Band pays a fixed amount for a loss up to UpTo (inclusive), Kakao 2022 style:
// {300000, 30000}, {500000, 50000}, and a loss above the last band goes to case review.
type Band struct {
	UpTo   int64
	Amount int64
}

// CompensationParams are a program's direct-compensation rules.
type CompensationParams struct {
	RateBP int64  // 보정률 applied to the loss when no band applies, 0..10,000
	Floor  int64  // least paid for any loss > 0; a multiple of 10
	Cap    int64  // most paid; a multiple of 10; 0 means no cap
	Bands  []Band // ascending UpTo; empty means the rate always applies
}

// Compensation is the direct compensation for one estimated loss.
type Compensation struct {
	Params     CompensationParams
	Loss       int64
	Band       int   // index of the band that set Base, -1 when the rate did
	Base       int64 // band amount or loss × rate, before floor, cap and truncation
	Amount     int64 // what is paid: Base within [Floor, Cap], truncated to 10 won
	Remainder  int64 // 끝수 dropped by the truncation
	CaseReview bool  // the loss is above every band: a reviewer decides, Amount is a proposal
}

// Compensate computes direct compensation from an estimated loss: 0 for no loss;
// otherwise the amount of the band the loss falls in, or loss × RateBP when there are
// no bands or the loss is above all of them (then CaseReview is set and the amount
// is the reviewer's starting point); then raised to Floor, lowered to Cap, and
// truncated to 10 won. Floor and Cap are multiples of 10, so truncation never takes
// the amount outside them.
func Compensate(loss int64, p CompensationParams) (Compensation, error) {
	if err := p.validate(); err != nil {
		return Compensation{}, err
	}
	if !validAmount(loss) {
		return Compensation{}, fmt.Errorf("%w: loss %d", ErrInput, loss)
	}
	c := Compensation{Params: p, Loss: loss, Band: -1}
	if loss == 0 {
		return c, nil
	}
	i, _ := slices.BinarySearchFunc(p.Bands, loss, func(b Band, l int64) int { return cmp.Compare(b.UpTo, l) })
	if i < len(p.Bands) {
		c.Band, c.Base = i, p.Bands[i].Amount
	} else {
		c.CaseReview = len(p.Bands) > 0
		c.Base = ApplyBP(loss, p.RateBP)
	}
	amount := max(c.Base, p.Floor)
	if p.Cap > 0 {
		amount = min(amount, p.Cap)
	}
	c.Amount, c.Remainder = Truncate10(amount)
	return c, nil
}

func (p CompensationParams) validate() error {
	switch {
	case p.RateBP < 0 || p.RateBP > 10_000:
		return fmt.Errorf("%w: rate %d bp outside 0..10000", ErrInput, p.RateBP)
	case !validAmount(p.Floor) || !validAmount(p.Cap) || p.Floor%10 != 0 || p.Cap%10 != 0:
		return fmt.Errorf("%w: floor %d and cap %d must be multiples of 10 won", ErrInput, p.Floor, p.Cap)
	case p.Cap > 0 && p.Floor > p.Cap:
		return fmt.Errorf("%w: floor %d above cap %d", ErrInput, p.Floor, p.Cap)
	}
	for i, b := range p.Bands {
		if !validAmount(b.UpTo) || !validAmount(b.Amount) || i > 0 && b.UpTo <= p.Bands[i-1].UpTo {
			return fmt.Errorf("%w: band %d (%d → %d) must have amounts ≥ 0 and ascending bounds", ErrInput, i, b.UpTo, b.Amount)
		}
	}
	return nil
}

// Explanation describes the computation line by line, in Korean unless lang is English.
func (c Compensation) Explanation(lang string) []string {
	ko := korean(lang)
	lines := []string{tr(ko, "추정 손실: ", "Estimated loss: ") + FormatWon(c.Loss)}
	if c.Loss == 0 {
		return append(lines, tr(ko, "손실이 없어 보상액은 0원입니다", "No loss, so no compensation"))
	}
	p := c.Params
	switch {
	case c.Band >= 0:
		lines = append(lines, fmt.Sprintf(tr(ko, "구간 지급: 손실 %s 이하 → %s", "Band: loss up to %s → %s"),
			FormatWon(p.Bands[c.Band].UpTo), FormatWon(c.Base)))
	default:
		lines = append(lines, fmt.Sprintf(tr(ko, "보정률 %s: %s × %s = %s", "Rate %s: %s × %s = %s"),
			formatBP(p.RateBP), FormatWon(c.Loss), formatBP(p.RateBP), FormatWon(c.Base)))
	}
	if c.CaseReview {
		lines = append(lines, fmt.Sprintf(tr(ko, "손실이 최고 구간 %s을 넘어 개별 심사 대상입니다 (위 금액은 심사 참고액)",
			"Loss above the top band of %s: case review (the amount is a proposal)"), FormatWon(p.Bands[len(p.Bands)-1].UpTo)))
	}
	if c.Base < p.Floor {
		lines = append(lines, tr(ko, "하한 적용: ", "Raised to the floor: ")+FormatWon(p.Floor))
	}
	if p.Cap > 0 && c.Base > p.Cap {
		lines = append(lines, tr(ko, "상한 적용: ", "Lowered to the cap: ")+FormatWon(p.Cap))
	}
	if c.Remainder != 0 {
		lines = append(lines, fmt.Sprintf(tr(ko, "10원 미만 절사(국고금관리법 제47조): 끝수 %s", "Under 10 won dropped (National Treasury Management Act §47): %s"),
			FormatWon(c.Remainder)))
	}
	return append(lines, tr(ko, "보상액: ", "Compensation: ")+FormatWon(c.Amount))
}
