package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

func createTranche(t *testing.T, s *models.Store, admin *models.User, name string, budget int64) *models.Tranche {
	t.Helper()
	var tr *models.Tranche
	err := s.InTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		tr, err = s.CreateTranche(context.Background(), tx, admin, models.DemoProgram, models.TrancheInput{Name: name, Budget: budget}, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func notifyAll(t *testing.T, s *models.Store, id uuid.UUID) int {
	t.Helper()
	n := 0
	for i := 0; ; i++ {
		page, err := s.NotifyAllocations(context.Background(), id, 2)
		if err != nil {
			t.Fatal(err)
		}
		n += page.Notified
		if page.Done {
			return n
		}
		if i > 100 {
			t.Fatal("notification never ends")
		}
	}
}

func TestTranchePreviewApproveReceive(t *testing.T) {
	s := instStore(t)
	ctx := context.Background()
	admin := instStaff(t, s, "admin@example.kr", models.RoleProgramAdmin)
	adminApprover := instStaff(t, s, "both@example.kr", models.RoleProgramAdmin, models.RoleApprover)
	approver := instStaff(t, s, "approver@example.kr", models.RoleApprover)
	approver2 := instStaff(t, s, "approver2@example.kr", models.RoleApprover)

	a, _ := instClaim(t, s, models.StatusApproved, 5_000_000, 6_000_000,
		models.GoodsItem{SKU: "APPLE", Name: "사과 5kg", UnitPrice: 25_005, Quantity: 100, Perishable: true})
	b, _ := instClaim(t, s, models.StatusAutoApproved, 0, 3_000_000,
		models.GoodsItem{SKU: "RICE", Name: "쌀 10kg", UnitPrice: 40_000, Quantity: 50},
		models.GoodsItem{SKU: "KIMCHI", Name: "김치", UnitPrice: 15_000, Quantity: 30, Perishable: true})
	c, _ := instClaim(t, s, models.StatusEntitled, 2_000_000, 2_000_000,
		models.GoodsItem{SKU: "SOAP", Name: "비누", UnitPrice: 3_000, Quantity: 1000})
	inReview, _ := instClaim(t, s, models.StatusInReview, 0, 9_000_000,
		models.GoodsItem{SKU: "X", Name: "x", UnitPrice: 1000, Quantity: 1000})
	noGoods, _ := instClaim(t, s, models.StatusApproved, 9_000_000, 9_000_000)

	// Creating: program_admin only, budget positive, the budget funded at once.
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.CreateTranche(ctx, tx, approver, models.DemoProgram, models.TrancheInput{Name: "1차", Budget: 1}, "")
		return err
	}); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("approver creating a tranche: %v", err)
	}
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.CreateTranche(ctx, tx, admin, models.DemoProgram, models.TrancheInput{Name: " ", Budget: -5}, "")
		return err
	}); err == nil || err.(*models.Error).Fields["budget"] != "must_be_positive" || err.(*models.Error).Fields["name"] != "required" {
		t.Fatalf("negative budget: %v", err)
	}
	if err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.CreateTranche(ctx, tx, admin, "NOPE", models.TrancheInput{Name: "x", Budget: 5}, "")
		return err
	}); instCode(err) != "program_not_found" {
		t.Fatalf("unknown program: %v", err)
	}
	const budget = 3_000_000
	tr := createTranche(t, s, admin, "1차", budget)
	if tr.Seq != 1 || tr.Status != models.TrancheDraft || instBalances(t, s)["budget:prepurchase"] != budget {
		t.Fatalf("tranche %+v, balances %v", tr, instBalances(t, s))
	}

	// Approving needs a preview first.
	if _, err := s.ApproveTranche(ctx, tr.ID, approver.ID, 0); instCode(err) != "preview_required" {
		t.Fatalf("approve without preview: %v", err)
	}

	// Preview: computes and stores a draft, changes nothing else.
	before := instBalances(t, s)
	sum, err := s.PreviewTranche(ctx, tr.ID, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Version != 1 || sum.Candidates != 3 || sum.TotalAllocated > budget || sum.TotalAllocated+sum.Unallocated != budget {
		t.Fatalf("preview %+v", sum)
	}
	if sum.TotalAllocated < budget-40_000 {
		t.Fatalf("preview leaves %d unspent although a unit costs at most 40,000", sum.Unallocated)
	}
	p, err := s.TranchePreview(ctx, approver, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lineTotal int64
	seen := map[uuid.UUID]bool{}
	for _, l := range p.Lines {
		seen[l.ClaimID] = true
		var items int64
		for _, it := range l.Items {
			if it.Amount != it.UnitPrice*it.Quantity {
				t.Fatalf("item %+v", it)
			}
			items += it.Amount
		}
		if items != l.Allocated || len(l.Explanation("ko")) < 3 {
			t.Fatalf("line %+v: items %d", l, items)
		}
		lineTotal += l.Allocated
	}
	if !seen[a] || !seen[b] || !seen[c] || seen[inReview] || seen[noGoods] || lineTotal != sum.TotalAllocated {
		t.Fatalf("eligible claims: %v (total %d)", seen, lineTotal)
	}
	if n := count(t, s, `SELECT count(*) FROM purchase_orders`); n != 0 {
		t.Fatal("a preview wrote purchase orders")
	}
	if n := count(t, s, `SELECT count(*) FROM claims WHERE prepurchase_allocated <> 0 OR owed_total <> 0`); n != 0 {
		t.Fatal("a preview changed claims")
	}
	after := instBalances(t, s)
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("a preview moved money: %v → %v", before, after)
		}
	}
	// The same data gives the same draft.
	if again, err := s.PreviewTranche(ctx, tr.ID, admin.ID); err != nil || again.Version != 2 || again.TotalAllocated != sum.TotalAllocated {
		t.Fatalf("second preview %+v %v", again, err)
	}

	// Segregation of duties: nobody approves what they created, whatever their roles.
	own := createTranche(t, s, adminApprover, "자기 차수", 1_000_000)
	if _, err := s.PreviewTranche(ctx, own.ID, adminApprover.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveTranche(ctx, own.ID, adminApprover.ID, 0); instCode(err) != "segregation_of_duties" {
		t.Fatalf("approving one's own tranche: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE tranches SET status = 'approved', approved_by = created_by, approved_at = now(), approval_seq = 99 WHERE id = $1`, own.ID); err == nil {
		t.Fatal("the database let a creator approve their own tranche")
	}
	if _, err := s.ApproveTranche(ctx, tr.ID, admin.ID, 0); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("a program admin without the approver role: %v", err)
	}
	if _, err := s.ApproveTranche(ctx, tr.ID, approver.ID, 1); instCode(err) != "preview_changed" {
		t.Fatalf("approving an old version: %v", err)
	}

	res, err := s.ApproveTranche(ctx, tr.ID, approver.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != sum.TotalAllocated || res.PurchaseOrders != count(t, s, `SELECT count(*) FROM tranche_lines WHERE tranche_id = $1 AND allocated > 0`, tr.ID) {
		t.Fatalf("approve %+v", res)
	}
	if again, err := s.ApproveTranche(ctx, tr.ID, approver.ID, 2); err != nil || again != res {
		t.Fatalf("the same approver retrying: %+v %v", again, err)
	}
	if _, err := s.ApproveTranche(ctx, tr.ID, approver2.ID, 0); instCode(err) != "tranche_already_approved" {
		t.Fatalf("approving twice: %v", err)
	}
	if _, err := s.PreviewTranche(ctx, tr.ID, admin.ID); instCode(err) != "tranche_already_approved" {
		t.Fatalf("preview after approval: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM tranche_lines WHERE tranche_id = $1`, tr.ID); err == nil {
		t.Fatal("an approved draft changed")
	}
	if n := count(t, s, `SELECT count(*) FROM purchase_orders po WHERE amount <> (SELECT sum(amount) FROM purchase_order_items WHERE po_id = po.id)`); n != 0 {
		t.Fatalf("%d orders do not add up", n)
	}

	// Claims are told once, in pages.
	if n := notifyAll(t, s, tr.ID); n != res.PurchaseOrders {
		t.Fatalf("%d claims told, %d orders", n, res.PurchaseOrders)
	}
	if n := notifyAll(t, s, tr.ID); n != 0 {
		t.Fatalf("told again: %d", n)
	}
	var allocated int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(prepurchase_allocated) FROM claims`).Scan(&allocated); err != nil || allocated != res.Total {
		t.Fatalf("claims told %d of %d: %v", allocated, res.Total, err)
	}
	if n := count(t, s, `SELECT count(*) FROM claim_events WHERE event_key = $1`, "prepurchase:"+tr.ID.String()); n != res.PurchaseOrders {
		t.Fatalf("%d timeline notes", n)
	}
	if got, _ := s.TrancheByID(ctx, tr.ID); got.Status != models.TrancheNotified || got.Notified != int64(res.PurchaseOrders) {
		t.Fatalf("tranche after notification: %+v", got)
	}

	// Receiving: the amount truncated to 10 won becomes owed, once.
	pos, next, err := s.ListPurchaseOrders(ctx, admin, tr.ID, "", 500)
	if err != nil || next != "" || len(pos) != res.PurchaseOrders {
		t.Fatalf("orders %d %q %v", len(pos), next, err)
	}
	if _, err := s.ReceivePurchaseOrder(ctx, approver, pos[0].ID, ""); !models.IsKind(err, models.EFORBIDDEN) {
		t.Fatalf("approver receiving: %v", err)
	}
	var owed int64
	for _, po := range pos {
		got, err := s.ReceivePurchaseOrder(ctx, admin, po.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "received" || got.Entitled != po.Amount-po.Amount%10 || got.Entitled+got.Remainder != po.Amount {
			t.Fatalf("received %+v", got)
		}
		if again, err := s.ReceivePurchaseOrder(ctx, admin, po.ID, ""); err != nil || again.Entitled != got.Entitled {
			t.Fatalf("receiving twice: %+v %v", again, err)
		}
		owed += got.Entitled
	}
	if n := count(t, s, `SELECT count(*) FROM entitlements WHERE instrument = 'prepurchase'`); n != len(pos) {
		t.Fatalf("%d entitlements for %d orders", n, len(pos))
	}
	bal := instBalances(t, s)
	if bal["budget:prepurchase"] != budget+1_000_000-owed || bal["payable"] != owed || owed > budget {
		t.Fatalf("balances %v, owed %d", bal, owed)
	}
	var rows, rowsTotal int64
	for l, err := range s.AllocationRows(ctx, tr.ID) {
		if err != nil {
			t.Fatal(err)
		}
		rows++
		rowsTotal += l.Amount
		if l.OrderNo == "" {
			t.Fatal("an approved tranche's sheet line without an order number")
		}
	}
	if rows == 0 || rowsTotal != res.Total {
		t.Fatalf("sheet rows %d total %d", rows, rowsTotal)
	}
}

func TestSecondTrancheAllocatesResidualNeed(t *testing.T) {
	s := instStore(t)
	ctx := context.Background()
	admin := instStaff(t, s, "admin@example.kr", models.RoleProgramAdmin)
	approver := instStaff(t, s, "approver@example.kr", models.RoleApprover)
	// One merchant may sell at most 700,000 over all tranches.
	if _, err := s.Pool.Exec(ctx, `UPDATE programs SET prepurchase_cap = 700000 WHERE code = $1`, models.DemoProgram); err != nil {
		t.Fatal(err)
	}
	a, _ := instClaim(t, s, models.StatusApproved, 4_000_000, 0,
		models.GoodsItem{SKU: "FISH", Name: "굴비", UnitPrice: 100_000, Quantity: 10, Perishable: true})
	b, _ := instClaim(t, s, models.StatusApproved, 1_000_000, 0,
		models.GoodsItem{SKU: "TEA", Name: "녹차", UnitPrice: 50_000, Quantity: 4})

	t1 := createTranche(t, s, admin, "1차", 500_000)
	t2 := createTranche(t, s, admin, "2차", 5_000_000)
	if _, err := s.PreviewTranche(ctx, t1.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PreviewTranche(ctx, t2.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	first, err := s.ApproveTranche(ctx, t1.ID, approver.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// t2's draft did not see t1's orders: approving it would allocate twice.
	if _, err := s.ApproveTranche(ctx, t2.ID, approver.ID, 0); instCode(err) != "preview_stale" {
		t.Fatalf("stale draft: %v", err)
	}
	lines := func(id uuid.UUID) map[uuid.UUID]models.PreviewLine {
		p, err := s.TranchePreview(ctx, admin, id)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uuid.UUID]models.PreviewLine{}
		for _, l := range p.Lines {
			out[l.ClaimID] = l
		}
		return out
	}
	one := lines(t1.ID)
	if _, err := s.PreviewTranche(ctx, t2.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	two := lines(t2.ID)
	for _, id := range []uuid.UUID{a, b} {
		l1, l2 := one[id], two[id]
		if l2.AlreadyAllocated != l1.Allocated {
			t.Fatalf("claim %s: tranche 2 sees %d already allocated, tranche 1 gave %d", id, l2.AlreadyAllocated, l1.Allocated)
		}
		if l1.Allocated+l2.Allocated > 700_000 {
			t.Fatalf("claim %s: %d + %d above the program cap", id, l1.Allocated, l2.Allocated)
		}
		units := map[string]int64{}
		for _, it := range append(l1.Items, l2.Items...) {
			units[it.SKU] += it.Quantity
		}
		if units["FISH"] > 10 || units["TEA"] > 4 {
			t.Fatalf("claim %s: more units ordered than offered: %v", id, units)
		}
	}
	if two[a].Allocated+one[a].Allocated != 700_000 || two[b].Allocated+one[b].Allocated != 200_000 {
		t.Fatalf("residual need not filled: a %d+%d, b %d+%d", one[a].Allocated, two[a].Allocated, one[b].Allocated, two[b].Allocated)
	}
	second, err := s.ApproveTranche(ctx, t2.ID, approver.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Total > 500_000 || second.Total > 5_000_000 || first.Total+second.Total != 900_000 {
		t.Fatalf("tranches %+v %+v", first, second)
	}
}

// TestTrancheAtProgramScale runs a tranche over the demo program's scale —
// 2,400 approved claims, a third of them perishable — through preview,
// approval (one transaction, set-based) and notification in pages, and checks
// the money: within budget, orders equal the draft, claims told once.
func TestTrancheAtProgramScale(t *testing.T) {
	if testing.Short() {
		t.Skip("2,400 claims")
	}
	s := instStore(t)
	ctx := context.Background()
	admin := instStaff(t, s, "admin@example.kr", models.RoleProgramAdmin)
	approver := instStaff(t, s, "approver@example.kr", models.RoleApprover)
	m := newMerchant(t, s, "bulk@example.kr")
	const n = 2400
	if _, err := s.Pool.Exec(ctx, `INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name, representative, phone,
			category, region, claimed_loss, bank_code, account_ciphertext, account_key_id, account_last4, account_blind_index, account_holder,
			status, estimated_loss, approved_compensation)
		SELECT gen_random_uuid(), 'B' || lpad(i::text, 6, '0'), $1, $2, lpad(i::text, 10, '0'), '상회 ' || i, '대표', '010-0000-0000',
			'food', '대전', 0, '004', decode(repeat('00', 40), 'hex'), 'k', '0000', sha256(int8send(i)), '대표', 'approved', 0, 100000 + (i * 7919) % 9000000
		FROM generate_series(1, $3) i`, models.DemoProgram, m.ID, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO claim_goods (claim_id, line, sku, name, unit_price, quantity, perishable)
		SELECT id, 1, 'G1', '상품', 5000 + (hashtext(id::text) & 65535), 10 + (hashtext(id::text) >> 20 & 200), (hashtext(id::text) % 3 = 0)
		FROM claims WHERE receipt_no LIKE 'B%'`); err != nil {
		t.Fatal(err)
	}
	tr := createTranche(t, s, admin, "1차", 1_100_000_000)
	start := time.Now()
	sum, err := s.PreviewTranche(ctx, tr.ID, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	preview := time.Since(start)
	start = time.Now()
	res, err := s.ApproveTranche(ctx, tr.ID, approver.ID, sum.Version)
	if err != nil {
		t.Fatal(err)
	}
	approve := time.Since(start)
	start = time.Now()
	pages := 0
	for {
		page, err := s.NotifyAllocations(ctx, tr.ID, 200)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Done {
			break
		}
	}
	notify := time.Since(start)
	t.Logf("%d candidates: preview %v, approve (%d orders, %s) %v, notify %d pages %v",
		sum.Candidates, preview, res.PurchaseOrders, rules.FormatWon(res.Total), approve, pages, notify)
	if sum.Candidates != n || res.Total > tr.Budget || res.Total != sum.TotalAllocated {
		t.Fatalf("summary %+v, result %+v", sum, res)
	}
	var told int64
	if err := s.Pool.QueryRow(ctx, `SELECT sum(prepurchase_allocated) FROM claims`).Scan(&told); err != nil || told != res.Total {
		t.Fatalf("claims told %d of %d: %v", told, res.Total, err)
	}
	instBalances(t, s)
}
