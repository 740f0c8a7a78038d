package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// exampleCandidates: A offers perishables (tier 1), B and C other goods (tier 2), D no
// goods, E no verified loss.
func exampleCandidates() []Candidate {
	return []Candidate{
		{ClaimID: "C", Weight: 600, Items: []OfferItem{{SKU: "C1", UnitPrice: 1_000, Quantity: 1_000}}},
		{ClaimID: "A", Weight: 300, Items: []OfferItem{{SKU: "A2", UnitPrice: 5_000, Quantity: 0, Perishable: true},
			{SKU: "A1", UnitPrice: 10_000, Quantity: 100, Perishable: true}}},
		{ClaimID: "B", Weight: 100, Items: []OfferItem{{SKU: "B1", UnitPrice: 30_000, Quantity: 5},
			{SKU: "B0", UnitPrice: 100, Quantity: 0, Perishable: true}}}, // nothing perishable left: tier 2
		{ClaimID: "D", Weight: 100},
		{ClaimID: "E", Items: []OfferItem{{SKU: "E1", UnitPrice: 10, Quantity: 10}}},
	}
}

type lineWant struct {
	id                               string
	tier                             int
	cap, share, converted, allocated int64
	items                            string
}

func checkLines(t *testing.T, a Allocation, want []lineWant) {
	t.Helper()
	if len(a.Lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(a.Lines), len(want))
	}
	for i, l := range a.Lines {
		var items []string
		for _, it := range l.Items {
			items = append(items, fmt.Sprintf("%s×%d=%d", it.SKU, it.Quantity, it.Amount))
		}
		got := lineWant{l.ClaimID, l.Tier, l.Cap, l.Share, l.Converted, l.Allocated, strings.Join(items, " ")}
		if got != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}
}

func TestAllocateWorkedExample(t *testing.T) {
	// Tier 1 (A) is capped at its offer of 1,000,000; tier 2 shares the other 500,000
	// 100:600 → B 71,428 (2 units), C 428,571 (428 units). The 12,000 leftover rounds C
	// up by a unit (B's 30,000 unit does not fit), then buys C 11 more.
	a, err := Allocate(1_500_000, 0, exampleCandidates())
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"A", 1, 1_000_000, 1_000_000, 1_000_000, 1_000_000, "A1×100=1000000"},
		{"B", 2, 150_000, 71_428, 60_000, 60_000, "B1×2=60000"},
		{"C", 2, 1_000_000, 428_571, 428_000, 440_000, "C1×440=440000"},
		{"D", 0, 0, 0, 0, 0, ""},
		{"E", 0, 100, 0, 0, 0, ""},
	})
	if a.TotalAllocated != 1_500_000 || a.Unallocated != 0 || a.Lines[1].TierWeight != 700 || a.Lines[0].TierWeight != 300 {
		t.Errorf("totals %d / %d, tier weights %d %d", a.TotalAllocated, a.Unallocated, a.Lines[0].TierWeight, a.Lines[1].TierWeight)
	}

	// Tier 1 absorbs the whole 505,000 (50 units); only the 5,000 it cannot spend in
	// whole units reaches tier 2, as C's cheap units.
	a, err = Allocate(505_000, 0, exampleCandidates())
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"A", 1, 1_000_000, 505_000, 500_000, 500_000, "A1×50=500000"},
		{"B", 2, 150_000, 0, 0, 0, ""},
		{"C", 2, 1_000_000, 0, 0, 5_000, "C1×5=5000"},
		{"D", 0, 0, 0, 0, 0, ""},
		{"E", 0, 100, 0, 0, 0, ""},
	})

	// Program cap 800,000 with 100,000 already allocated to A; B's 30,000 units leave
	// 1,000 that nothing fits (C is at its cap).
	cs := exampleCandidates()
	cs[1].AlreadyAllocated = 100_000
	a, err = Allocate(2_000_000, 800_000, cs)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"A", 1, 700_000, 700_000, 700_000, 700_000, "A1×70=700000"},
		{"B", 2, 150_000, 150_000, 150_000, 150_000, "B1×5=150000"},
		{"C", 2, 800_000, 800_000, 800_000, 800_000, "C1×800=800000"},
		{"D", 0, 0, 0, 0, 0, ""},
		{"E", 0, 100, 0, 0, 0, ""},
	})
	if a.TotalAllocated != 1_650_000 || a.Unallocated != 350_000 {
		t.Errorf("totals %d / %d", a.TotalAllocated, a.Unallocated)
	}
}

func TestAllocateUnitsFollowItemOrder(t *testing.T) {
	// Perishable items first, then by SKU; each share never overspent in conversion.
	cs := []Candidate{{ClaimID: "X", Weight: 1, Items: []OfferItem{
		{SKU: "b", UnitPrice: 300, Quantity: 10},
		{SKU: "z", UnitPrice: 700, Quantity: 2, Perishable: true},
		{SKU: "a", UnitPrice: 500, Quantity: 1},
	}}}
	a, err := Allocate(2_250, 0, cs)
	if err != nil {
		t.Fatal(err)
	}
	// 2 × z = 1,400; a = 500; b = 300 → 2,200; 50 left, nothing that cheap.
	checkLines(t, a, []lineWant{{"X", 1, 4_900, 2_250, 2_200, 2_200, "z×2=1400 a×1=500 b×1=300"}})
	if a.Unallocated != 50 {
		t.Errorf("unallocated %d", a.Unallocated)
	}
}

func TestAllocateLeftoverRoundsUpLargestRemainderFirst(t *testing.T) {
	// Shares 500 and 300 of 400-won units: A buys 1 (100 unspent), B none (300
	// unspent). The 400 left rounds up B, who lost more to rounding, not A.
	item := []OfferItem{{SKU: "s", UnitPrice: 400, Quantity: 10}}
	a, err := Allocate(800, 0, []Candidate{{ClaimID: "A", Weight: 5, Items: item}, {ClaimID: "B", Weight: 3, Items: item}})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"A", 2, 4_000, 500, 400, 400, "s×1=400"},
		{"B", 2, 4_000, 300, 0, 400, "s×1=400"},
	})
}

func TestAllocateLeftoverOrder(t *testing.T) {
	// M's 10,000-won unit never fits its 9,000 share, which becomes the leftover.
	m := Candidate{ClaimID: "M", Weight: 9_000, Items: []OfferItem{{SKU: "m", UnitPrice: 10_000, Quantity: 5}}}

	// Rounding up gives Z one unit (of its first item) before the rest of the
	// leftover buys units in item order.
	z := Candidate{ClaimID: "Z", Weight: 3_000, Items: []OfferItem{{SKU: "s1", UnitPrice: 300, Quantity: 100}, {SKU: "s2", UnitPrice: 200, Quantity: 100}}}
	a, err := Allocate(12_000, 0, []Candidate{m, z})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"M", 2, 50_000, 9_000, 0, 0, ""},
		{"Z", 2, 50_000, 3_000, 3_000, 12_000, "s1×40=12000"},
	})

	// A tier-2 line with nothing unspent still comes after a tier-1 line: Z (tier 1)
	// takes the leftover before A, whose share is 0 because tier 1 is not fully served.
	m.Items[0].Perishable = true
	z.Items = []OfferItem{{SKU: "z", UnitPrice: 300, Quantity: 100, Perishable: true}}
	other := Candidate{ClaimID: "A", Weight: 1, Items: []OfferItem{{SKU: "a", UnitPrice: 300, Quantity: 100}}}
	a, err = Allocate(12_000, 0, []Candidate{m, z, other})
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, a, []lineWant{
		{"A", 2, 30_000, 0, 0, 300, "a×1=300"},
		{"M", 1, 50_000, 9_000, 0, 0, ""},
		{"Z", 1, 30_000, 3_000, 3_000, 11_700, "z×39=11700"},
	})
}

func TestAllocateRejects(t *testing.T) {
	item := []OfferItem{{SKU: "s", UnitPrice: 100, Quantity: 1}}
	tests := []struct {
		name           string
		budget, capAmt int64
		cs             []Candidate
	}{
		{"negative budget", -1, 0, nil},
		{"huge budget", MaxAmount + 1, 0, nil},
		{"negative cap", 1, -1, nil},
		{"duplicate claim", 1, 0, []Candidate{{ClaimID: "a", Weight: 1, Items: item}, {ClaimID: "a", Weight: 2}}},
		{"negative weight", 1, 0, []Candidate{{ClaimID: "a", Weight: -1}}},
		{"negative already allocated", 1, 0, []Candidate{{ClaimID: "a", AlreadyAllocated: -1}}},
		{"total weight", 1, 0, []Candidate{{ClaimID: "a", Weight: MaxAmount}, {ClaimID: "b", Weight: 1}}},
		{"zero price", 1, 0, []Candidate{{ClaimID: "a", Items: []OfferItem{{SKU: "s", Quantity: 1}}}}},
		{"negative quantity", 1, 0, []Candidate{{ClaimID: "a", Items: []OfferItem{{SKU: "s", UnitPrice: 1, Quantity: -1}}}}},
		{"duplicate SKU", 1, 0, []Candidate{{ClaimID: "a", Items: []OfferItem{{SKU: "s", UnitPrice: 1, Quantity: 1},
			{SKU: "s", UnitPrice: 2, Quantity: 1, Perishable: true}}}}},
		{"offer overflow", 1, 0, []Candidate{{ClaimID: "a", Items: []OfferItem{{SKU: "s", UnitPrice: 1 << 40, Quantity: 1 << 40}}}}},
	}
	for _, tt := range tests {
		if _, err := Allocate(tt.budget, tt.capAmt, tt.cs); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", tt.name, err)
		}
	}
}

var unitPrices = []int64{10, 990, 1_000, 2_500, 9_900, 12_345, 25_000, 30_000, 99_990, 250_000}

// randomCandidates draws a tranche: a mix of weights (some 0), offers (some empty or
// perishable), earlier allocations and unit prices (some not multiples of 10).
func randomCandidates(r *rand.Rand, n int) []Candidate {
	cs := make([]Candidate, n)
	for i := range cs {
		c := Candidate{ClaimID: fmt.Sprintf("claim-%04d", r.IntN(10*n)+10*n*i), Weight: r.Int64N(50_000_000)}
		if r.IntN(10) == 0 {
			c.Weight = 0
		}
		if r.IntN(5) == 0 {
			c.AlreadyAllocated = r.Int64N(5_000_000)
		}
		for k := range r.IntN(5) {
			c.Items = append(c.Items, OfferItem{SKU: fmt.Sprintf("sku-%d", k), UnitPrice: unitPrices[r.IntN(len(unitPrices))],
				Quantity: r.Int64N(300), Perishable: r.IntN(4) == 0})
		}
		cs[i] = c
	}
	return cs
}

func shuffled(r *rand.Rand, cs []Candidate) []Candidate {
	out := slices.Clone(cs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i := range out {
		out[i].Items = slices.Clone(out[i].Items)
		r.Shuffle(len(out[i].Items), func(a, b int) { out[i].Items[a], out[i].Items[b] = out[i].Items[b], out[i].Items[a] })
	}
	return out
}

func TestAllocateProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 29))
	for iter := range 1_500 {
		cs := randomCandidates(r, 1+r.IntN(40))
		budget := r.Int64N([]int64{100_000, 10_000_000, 500_000_000, 5_000_000_000}[r.IntN(4)])
		programCap := []int64{0, 3_000_000, 20_000_000}[r.IntN(3)]
		a, err := Allocate(budget, programCap, cs)
		if err != nil {
			t.Fatal(err)
		}
		checkAllocation(t, a, cs, programCap)

		if again, err := Allocate(budget, programCap, shuffled(r, cs)); err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("iteration %d: shuffled input gives a different allocation (%v)", iter, err)
		}

		// More budget never lowers anyone's money share (whole units can: a larger
		// share may buy a different mix, and the leftover goes by priority).
		more, err := Allocate(budget+r.Int64N(budget+1), programCap, cs)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range more.Lines {
			if l.Share < a.Lines[i].Share {
				t.Fatalf("iteration %d: %s share %d at budget %d but %d at budget %d",
					iter, l.ClaimID, a.Lines[i].Share, budget, l.Share, more.Budget)
			}
		}
	}
}

// checkAllocation asserts every invariant of an allocation of cs.
func checkAllocation(t *testing.T, a Allocation, cs []Candidate, programCap int64) {
	t.Helper()
	offered := map[string]map[string]OfferItem{}
	for _, c := range cs {
		offered[c.ClaimID] = map[string]OfferItem{}
		for _, it := range c.Items {
			offered[c.ClaimID][it.SKU] = it
		}
	}
	var total, shares int64
	level := map[int][2]int64{} // tier → an uncapped line's (share, weight)
	for i, l := range a.Lines {
		if i > 0 && l.ClaimID <= a.Lines[i-1].ClaimID {
			t.Fatalf("lines out of order: %s after %s", l.ClaimID, a.Lines[i-1].ClaimID)
		}
		var sum int64
		for _, it := range l.Items {
			o := offered[l.ClaimID][it.SKU]
			if it.Quantity <= 0 || it.Quantity > o.Quantity || it.UnitPrice != o.UnitPrice || it.Amount != it.UnitPrice*it.Quantity {
				t.Fatalf("%s: item %+v against offer %+v", l.ClaimID, it, o)
			}
			sum += it.Amount
		}
		switch {
		case sum != l.Allocated:
			t.Fatalf("%s: items sum to %d, allocated %d", l.ClaimID, sum, l.Allocated)
		case l.Allocated > l.Cap || l.Cap > l.Offer || l.Share > l.Cap || l.Converted > l.Share || l.Converted > l.Allocated:
			t.Fatalf("%s: cap %d, offer %d, share %d, converted %d, allocated %d", l.ClaimID, l.Cap, l.Offer, l.Share, l.Converted, l.Allocated)
		case programCap > 0 && l.AlreadyAllocated+l.Allocated > max(programCap, l.AlreadyAllocated):
			t.Fatalf("%s: above the program cap", l.ClaimID)
		case l.Tier == TierNone && (l.Allocated != 0 || l.Weight > 0 && l.Cap > 0):
			t.Fatalf("%s: ineligible line %+v", l.ClaimID, l)
		}
		total += l.Allocated
		shares += l.Share
		if l.Tier != TierNone && l.Share < l.Cap {
			level[l.Tier] = [2]int64{l.Share, l.Weight}
		}
	}
	if total != a.TotalAllocated || total+a.Unallocated != a.Budget || a.Unallocated < 0 || shares > a.Budget {
		t.Fatalf("total %d, unallocated %d, shares %d, budget %d", a.TotalAllocated, a.Unallocated, shares, a.Budget)
	}
	for _, l := range a.Lines {
		if l.Tier == TierNone {
			continue
		}
		// Tier 2 gets money only when tier 1 is fully served.
		if _, short := level[TierPerishable]; short && l.Tier == TierOther && l.Share > 0 {
			t.Fatalf("%s: tier 2 share %d while tier 1 is below its caps", l.ClaimID, l.Share)
		}
		// Water-filling: every line's share (or cap) is at most the tier's level, and
		// the level is less than one won per unit of weight above any uncapped share:
		// share_i / w_i ≤ level < (share_j + 1) / w_j.
		if ref, ok := level[l.Tier]; ok && cmpProducts(l.Share, ref[1], ref[0]+1, l.Weight) >= 0 {
			t.Fatalf("%s: share %d for weight %d is above the level of share %d for weight %d", l.ClaimID, l.Share, l.Weight, ref[0], ref[1])
		}
		// No unit still on offer fits both the leftover and the merchant's room.
		for _, o := range offered[l.ClaimID] {
			bought := int64(0)
			for _, it := range l.Items {
				if it.SKU == o.SKU {
					bought = it.Quantity
				}
			}
			if bought < o.Quantity && o.UnitPrice <= a.Unallocated && l.Allocated+o.UnitPrice <= l.Cap {
				t.Fatalf("%s: a %d-won unit of %s fits the leftover %d and the cap %d (allocated %d)",
					l.ClaimID, o.UnitPrice, o.SKU, a.Unallocated, l.Cap, l.Allocated)
			}
		}
	}
}

func TestAllocationExplanation(t *testing.T) {
	a, err := Allocate(1_500_000, 0, exampleCandidates())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"우선순위 2군 (일반 물품)",
		"가중치: 검증 손실 600원 / 같은 군 합계 700원 = 85.71%",
		"한도: 1,000,000원 (제공 물품 1,000,000원, 이전 배정 0원 반영)",
		"금액 배분: 428,571원",
		"단위 환산: 428,000원",
		"잔액 추가 구매: +12,000원",
		"C1: 440개 × 1,000원 = 440,000원",
		"배정액: 440,000원",
	}
	if got := a.Lines[2].Explanation("ko"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.Join(a.Lines[0].Explanation("en"), "\n"); !strings.Contains(got, "Priority tier 1") || !strings.Contains(got, "cap reached") {
		t.Errorf("tier 1 line: %s", got)
	}
	for i, want := range map[int]string{3: "Not eligible: no goods on offer", 4: "Not eligible: no verified loss"} {
		if got := a.Lines[i].Explanation("en"); len(got) != 1 || got[0] != want {
			t.Errorf("line %d: %q", i, got)
		}
	}
	cs := exampleCandidates()[:1]
	cs[0].AlreadyAllocated = 5_000_000
	used, _ := Allocate(100, 1_000_000, cs)
	if got := used.Lines[0].Explanation("ko"); len(got) != 1 || got[0] != "배정 제외: 한도 소진 (이전 배정 5,000,000원)" {
		t.Errorf("cap used up: %q", got)
	}
}

// BenchmarkAllocate runs a Korea Post-sized tranche: 2,400 merchants, 11억 원.
func BenchmarkAllocate(b *testing.B) {
	cs := randomCandidates(rand.New(rand.NewPCG(1, 1)), 2_400)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Allocate(1_100_000_000, 50_000_000, cs); err != nil {
			b.Fatal(err)
		}
	}
}
