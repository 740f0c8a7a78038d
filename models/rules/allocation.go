package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// OfferItem is goods a merchant offers for pre-purchase.
type OfferItem struct {
	SKU        string
	UnitPrice  int64 // won per unit, > 0
	Quantity   int64 // units still on offer (after earlier tranches' orders)
	Perishable bool
}

// Candidate is an approved claim that may sell goods to the tranche.
type Candidate struct {
	ClaimID          string
	Weight           int64 // verified loss; the budget is split in proportion to it
	Items            []OfferItem
	AlreadyAllocated int64 // allocated by earlier tranches; counts against the program cap
}

// AllocatedItem is one purchase-order line.
type AllocatedItem struct {
	SKU        string
	Perishable bool
	UnitPrice  int64
	Quantity   int64
	Amount     int64 // UnitPrice × Quantity
}

// Allocation tiers.
const (
	TierNone       = 0 // not eligible: no goods, no verified loss, or no room under the cap
	TierPerishable = 1 // offers perishable goods: served first
	TierOther      = 2
)

// AllocationLine is one candidate's allocation and the figures that explain it.
type AllocationLine struct {
	ClaimID          string
	Tier             int
	Weight           int64
	TierWeight       int64 // Σ weights of the eligible candidates in the tier
	Offer            int64 // Σ unit price × quantity on offer
	AlreadyAllocated int64
	Cap              int64 // min(Offer, program cap − AlreadyAllocated), never negative
	Share            int64 // money share from water-filling, before whole units
	Converted        int64 // Share spent on whole units (≤ Share)
	Allocated        int64 // Converted plus units bought with the tranche's leftover (≤ Cap)
	Items            []AllocatedItem
}

// Allocation is a tranche's allocation; Lines are in ClaimID order.
type Allocation struct {
	Budget         int64
	TotalAllocated int64
	Unallocated    int64
	Lines          []AllocationLine
}

// Allocate splits a pre-purchase tranche budget among candidates in whole units of
// the goods they offer. programCap limits what one merchant sells over all tranches
// (0 means no program cap: only the offer limits it).
//
//  1. Eligible: weight > 0, goods on offer and room under the cap. Tier 1 offers any
//     perishable item, tier 2 the rest.
//  2. Money (water-filling): tier 1 shares the budget in proportion to weight; a
//     merchant whose share would pass its cap gets the cap and the surplus is shared
//     among the others, until no one is over. Tier 2 gets only what tier 1 cannot
//     absorb. Shares are floor(level × weight), so they never rise when the budget
//     falls (the property tests check this monotonicity).
//  3. Units: each share buys whole units, perishable items first, then by SKU, never
//     above the share or the offered quantity.
//  4. Leftover (what whole units left unspent): merchants in order of tier, then
//     largest unspent share, then ClaimID, first get at most one more unit each
//     (rounding up those who lost most to rounding, possibly above their share),
//     then in the same order any units that still fit under their cap and the
//     leftover. Afterwards no unit on offer fits both the leftover and its
//     merchant's room under the cap. Spending the leftover by priority rather than
//     cheapest-first keeps perishables and the hardest-hit ahead, and one pass
//     suffices because the leftover only shrinks.
//
// Amounts are exact: a line is Σ unit price × units, a multiple of 10 won whenever the
// unit prices are. Purchase orders must match the goods, so a price with a won part
// is not rounded here; the payout truncates each disbursement to 10 won (Truncate10).
// The result depends only on the set of candidates and items, not their order.
func Allocate(budget, programCap int64, candidates []Candidate) (Allocation, error) {
	if !validAmount(budget) || !validAmount(programCap) {
		return Allocation{}, fmt.Errorf("%w: budget %d, program cap %d", ErrInput, budget, programCap)
	}
	if programCap == 0 {
		programCap = MaxAmount
	}
	cs := slices.Clone(candidates)
	slices.SortFunc(cs, func(a, b Candidate) int { return strings.Compare(a.ClaimID, b.ClaimID) })
	a := Allocation{Budget: budget, Lines: make([]AllocationLine, len(cs))}
	stocks := make([][]stock, len(cs))
	var tiers [2][]int // line indexes, in ClaimID order
	var totalWeight int64
	for i, c := range cs {
		if i > 0 && c.ClaimID == cs[i-1].ClaimID {
			return Allocation{}, fmt.Errorf("%w: claim %s listed twice", ErrInput, c.ClaimID)
		}
		if !validAmount(c.Weight) || !validAmount(c.AlreadyAllocated) {
			return Allocation{}, fmt.Errorf("%w: claim %s: weight %d, already allocated %d", ErrInput, c.ClaimID, c.Weight, c.AlreadyAllocated)
		}
		if totalWeight += c.Weight; totalWeight > MaxAmount {
			return Allocation{}, fmt.Errorf("%w: total weight above %s", ErrInput, FormatWon(MaxAmount))
		}
		st, offer, perishable, err := stockOf(c)
		if err != nil {
			return Allocation{}, err
		}
		stocks[i] = st
		l := &a.Lines[i]
		*l = AllocationLine{ClaimID: c.ClaimID, Weight: c.Weight, Offer: offer, AlreadyAllocated: c.AlreadyAllocated,
			Cap: max(0, min(offer, programCap-c.AlreadyAllocated))}
		if l.Weight == 0 || l.Cap == 0 {
			continue
		}
		l.Tier = TierOther
		if perishable {
			l.Tier = TierPerishable
		}
		tiers[l.Tier-1] = append(tiers[l.Tier-1], i)
	}

	rest := budget
	for _, idx := range tiers {
		rest = waterFill(a.Lines, idx, rest)
	}

	left := budget
	for i := range a.Lines {
		l := &a.Lines[i]
		for k := range stocks[i] {
			l.Converted += stocks[i][k].buy(l.Share - l.Converted)
		}
		l.Allocated = l.Converted
		left -= l.Converted
	}

	var order []int // tier by tier; largest unspent share first, then ClaimID
	for _, idx := range tiers {
		slices.SortStableFunc(idx, func(x, y int) int {
			lx, ly := &a.Lines[x], &a.Lines[y]
			return cmp.Compare(ly.Share-ly.Converted, lx.Share-lx.Converted)
		})
		order = append(order, idx...)
	}
	for _, oneUnit := range []bool{true, false} {
		for _, i := range order {
			l := &a.Lines[i]
			for k := range stocks[i] {
				st := &stocks[i][k]
				money := min(left, l.Cap-l.Allocated)
				if oneUnit {
					money = min(money, st.UnitPrice)
				}
				spent := st.buy(money)
				l.Allocated += spent
				left -= spent
				if oneUnit && spent > 0 {
					break
				}
			}
		}
	}

	for i := range a.Lines {
		for _, st := range stocks[i] {
			if st.bought > 0 {
				a.Lines[i].Items = append(a.Lines[i].Items, AllocatedItem{SKU: st.SKU, Perishable: st.Perishable,
					UnitPrice: st.UnitPrice, Quantity: st.bought, Amount: st.UnitPrice * st.bought})
			}
		}
	}
	a.TotalAllocated, a.Unallocated = budget-left, left
	return a, nil
}

// stock is an offered item and the units of it bought so far.
type stock struct {
	OfferItem
	bought int64
}

// buy spends up to money on whole units still on offer and returns the amount spent.
func (s *stock) buy(money int64) int64 {
	n := min(s.Quantity-s.bought, money/s.UnitPrice)
	s.bought += n
	return n * s.UnitPrice
}

// stockOf validates a candidate's goods and returns them perishable first, then by
// SKU, with their total value and whether any perishable unit is on offer.
func stockOf(c Candidate) (st []stock, offer int64, perishable bool, err error) {
	items := slices.Clone(c.Items)
	slices.SortFunc(items, func(a, b OfferItem) int {
		if a.Perishable != b.Perishable {
			if a.Perishable {
				return -1
			}
			return 1
		}
		return strings.Compare(a.SKU, b.SKU)
	})
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if it.UnitPrice <= 0 || it.UnitPrice > MaxAmount || it.Quantity < 0 || it.Quantity > (MaxAmount-offer)/it.UnitPrice || seen[it.SKU] {
			return nil, 0, false, fmt.Errorf("%w: claim %s: item %q (price %d, quantity %d) invalid, duplicate or offer above %s",
				ErrInput, c.ClaimID, it.SKU, it.UnitPrice, it.Quantity, FormatWon(MaxAmount))
		}
		offer += it.UnitPrice * it.Quantity
		perishable = perishable || it.Perishable && it.Quantity > 0
		seen[it.SKU] = true
		st = append(st, stock{OfferItem: it})
	}
	return st, offer, perishable, nil
}

// waterFill gives lines[idx] shares of budget in proportion to weight, none above its
// cap; what a capped line cannot take goes to the others. Lines reach their cap in
// order of cap per unit of weight, and capping one only raises the level for the
// rest, so one pass suffices. It returns the budget left once every line is capped,
// or 0 when the lines absorb it all.
func waterFill(lines []AllocationLine, idx []int, budget int64) int64 {
	var weight int64
	for _, i := range idx {
		weight += lines[i].Weight
	}
	for _, i := range idx {
		lines[i].TierWeight = weight
	}
	order := slices.Clone(idx)
	slices.SortStableFunc(order, func(x, y int) int {
		return cmpProducts(lines[x].Cap, lines[y].Weight, lines[y].Cap, lines[x].Weight)
	})
	for k, i := range order {
		l := &lines[i]
		if cmpProducts(l.Cap, weight, budget, l.Weight) > 0 { // cap / weight above the level budget / weight
			for _, j := range order[k:] {
				lines[j].Share = mulDiv(uint64(budget), uint64(lines[j].Weight), uint64(weight))
			}
			return 0
		}
		l.Share = l.Cap
		budget -= l.Cap
		weight -= l.Weight
	}
	return budget
}

// Explanation describes how the line was allocated, in Korean unless lang is English.
func (l AllocationLine) Explanation(lang string) []string {
	ko := korean(lang)
	if l.Tier == TierNone {
		switch {
		case l.Offer == 0:
			return []string{tr(ko, "배정 제외: 제공 물품 없음", "Not eligible: no goods on offer")}
		case l.Weight == 0:
			return []string{tr(ko, "배정 제외: 검증된 손실 없음", "Not eligible: no verified loss")}
		default:
			return []string{fmt.Sprintf(tr(ko, "배정 제외: 한도 소진 (이전 배정 %s)", "Not eligible: cap used up (earlier tranches %s)"), FormatWon(l.AlreadyAllocated))}
		}
	}
	tier := tr(ko, "우선순위 2군 (일반 물품)", "Priority tier 2 (other goods)")
	if l.Tier == TierPerishable {
		tier = tr(ko, "우선순위 1군 (신선·부패성 물품 포함, 먼저 배정)", "Priority tier 1 (perishable goods, served first)")
	}
	lines := []string{
		tier,
		fmt.Sprintf(tr(ko, "가중치: 검증 손실 %s / 같은 군 합계 %s = %s", "Weight: verified loss %s of the tier's %s = %s"),
			FormatWon(l.Weight), FormatWon(l.TierWeight), formatBP(mulDiv(uint64(l.Weight), 10_000, uint64(l.TierWeight)))),
		fmt.Sprintf(tr(ko, "한도: %s (제공 물품 %s, 이전 배정 %s 반영)", "Cap: %s (goods on offer %s, earlier tranches %s)"),
			FormatWon(l.Cap), FormatWon(l.Offer), FormatWon(l.AlreadyAllocated)),
	}
	share := fmt.Sprintf(tr(ko, "금액 배분: %s", "Money share: %s"), FormatWon(l.Share))
	if l.Share == l.Cap {
		share += tr(ko, " (한도 도달, 초과분은 다른 판매자에게 재배분)", " (cap reached, the surplus went to others)")
	}
	lines = append(lines, share, fmt.Sprintf(tr(ko, "단위 환산: %s", "Whole units: %s"), FormatWon(l.Converted)))
	if l.Allocated > l.Converted {
		lines = append(lines, fmt.Sprintf(tr(ko, "잔액 추가 구매: +%s", "Bought from the leftover: +%s"), FormatWon(l.Allocated-l.Converted)))
	}
	for _, it := range l.Items {
		lines = append(lines, fmt.Sprintf(tr(ko, "%s: %s개 × %s = %s", "%s: %s × %s = %s"),
			it.SKU, FormatNumber(it.Quantity), FormatWon(it.UnitPrice), FormatWon(it.Amount)))
	}
	return append(lines, tr(ko, "배정액: ", "Allocated: ")+FormatWon(l.Allocated))
}
