package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/allocation"
	"github.com/relief/relief/workflows/feewaiver"
)

// instEnv is the real handler chain with a real Temporal server
// (temporaltest) and a worker running the allocation and fee-waiver
// workflows, on a fresh database with the demo program and its budgets.
type instEnv struct {
	t     *testing.T
	url   string
	store *models.Store
}

func newInstEnv(t *testing.T) *instEnv {
	t.Helper()
	ctx := context.Background()
	store, cfg := newTestStore(t, nil)
	if err := store.SeedInstruments(ctx); err != nil {
		t.Fatal(err)
	}
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	tc := ts.GetDefaultClient()
	w := worker.New(tc, allocation.TaskQueue, worker.Options{})
	allocation.Register(w, store)
	feewaiver.Register(w, store)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	srv := newTestServer(t, handlers.Deps{Store: store, Temporal: tc, Config: cfg,
		Log: slog.New(slog.NewTextHandler(instLog{t}, &slog.HandlerOptions{Level: slog.LevelError}))})
	return &instEnv{t: t, store: store, url: serveTest(t, srv, ": bad input must never give a 5xx")}
}

// instLog shows the server's error log (a template failure) in the test's output.
type instLog struct{ t *testing.T }

func (l instLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type instUser struct {
	e  *instEnv
	u  *models.User
	hc *http.Client
}

type instResp struct {
	status int
	header http.Header
	body   []byte
}

// user creates an account and signs it in.
func (e *instEnv) user(email string, roles ...string) *instUser {
	e.t.Helper()
	agency := "KPOST"
	if roles[0] == models.RoleMerchant {
		agency = ""
	}
	u, err := e.store.CreateUser(context.Background(), models.NewUser{Email: email, Name: "사용자", Phone: "010-1111-2222",
		Password: "correct horse battery", Roles: roles, Agency: agency})
	if err != nil {
		e.t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &instUser{e: e, u: u, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	c.do("POST", "/api/v1/session", map[string]string{"email": email, "password": "correct horse battery"}).must(e.t, http.StatusOK)
	return c
}

func (c *instUser) do(method, path string, body any, header ...string) instResp {
	c.e.t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case url.Values:
		rd, contentType = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		rd = jsonBody(c.e.t, b)
	}
	status, h, out := roundTrip(c.e.t, c.hc, method, c.e.url+path, rd, contentType, header)
	return instResp{status: status, header: h, body: out}
}

func (r instResp) must(t *testing.T, status int) instResp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// refused checks an error answer: status, error.code and the named fields.
func (r instResp) refused(t *testing.T, status int, code string, fields ...string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("want %d %s, got %d: %s", status, code, r.status, r.body)
	}
	for _, f := range fields {
		if e.Error.Fields[f] == "" {
			t.Fatalf("error.fields lacks %q: %s", f, r.body)
		}
	}
}

// contains checks a page was rendered whole: a template error leaves it empty.
func (r instResp) contains(t *testing.T, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(string(r.body), p) {
			t.Fatalf("the page lacks %q:\n%s", p, r.body)
		}
	}
}

func (r instResp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
}

var instSeed = 20_000

// claim files a claim with goods through the API and puts it in status (what
// review would do) with an approved compensation.
func (c *instUser) claim(status string, approved int64, goods ...map[string]any) uuid.UUID {
	c.e.t.Helper()
	instSeed++
	body := map[string]any{"program": models.DemoProgram, "brn": rules.ValidBRNFromSeed(instSeed).String(), "business_name": "상회",
		"representative": "대표", "phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": 3_500_000,
		"bank": map[string]any{"bank_code": "004", "account_number": "12345678901234", "holder": "대표"}, "goods": goods}
	var f struct {
		ID uuid.UUID `json:"id"`
	}
	c.do("POST", "/api/v1/claims", body, "Idempotency-Key", uuid.NewString()).must(c.e.t, http.StatusAccepted).json(c.e.t, &f)
	if _, err := c.e.store.Pool.Exec(context.Background(), `UPDATE claims SET status = $2, approved_compensation = $3, estimated_loss = $3 WHERE id = $1`,
		f.ID, status, approved); err != nil {
		c.e.t.Fatal(err)
	}
	return f.ID
}

func item(sku string, price, qty int64, perishable bool) map[string]any {
	return map[string]any{"sku": sku, "name": "상품 " + sku, "unit_price": price, "quantity": qty, "perishable": perishable}
}

func (e *instEnv) balances() map[string]int64 {
	e.t.Helper()
	sum, err := e.store.LedgerSummary(context.Background(), models.DemoProgram)
	if err != nil {
		e.t.Fatal(err)
	}
	if sum.Total != 0 {
		e.t.Fatalf("the ledger does not balance: %v", sum.Balances)
	}
	return sum.Balances
}

func (e *instEnv) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eventually polls until cond holds (the workflow works after the answer).
func (e *instEnv) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type instTranche struct {
	ID             uuid.UUID `json:"id"`
	Seq            int       `json:"seq"`
	Status         string    `json:"status"`
	Budget         int64     `json:"budget"`
	TotalAllocated int64     `json:"total_allocated"`
	PurchaseOrders int       `json:"purchase_orders"`
	Notified       int       `json:"notified"`
}

type instPreview struct {
	PreviewVersion int   `json:"preview_version"`
	TotalAllocated int64 `json:"total_allocated"`
	Unallocated    int64 `json:"unallocated"`
	Lines          []struct {
		ClaimID          uuid.UUID `json:"claim_id"`
		Weight           int64     `json:"weight"`
		AlreadyAllocated int64     `json:"already_allocated"`
		Allocated        int64     `json:"allocated"`
		Items            []struct {
			SKU       string `json:"sku"`
			Quantity  int64  `json:"quantity"`
			UnitPrice int64  `json:"unit_price"`
			Amount    int64  `json:"amount"`
		} `json:"items"`
		Explanation []string `json:"explanation"`
	} `json:"lines"`
}

// TestInstrumentsAPI walks the instruments through the public API on real
// PostgreSQL and a real Temporal server: goods offers, a tranche from
// creation to received goods (ledger balanced, total within budget,
// segregation of duties), a second tranche allocating only residual need,
// the fee waiver run twice without duplicates, and bad inputs answered 4xx.
func TestInstrumentsAPI(t *testing.T) {
	e := newInstEnv(t)
	ctx := context.Background()
	admin := e.user("admin@kpost.test", models.RoleProgramAdmin)
	both := e.user("both@kpost.test", models.RoleProgramAdmin, models.RoleApprover)
	approver := e.user("approver@kpost.test", models.RoleApprover)
	approver2 := e.user("approver2@kpost.test", models.RoleApprover)
	m1 := e.user("m1@example.kr", models.RoleMerchant)
	m2 := e.user("m2@example.kr", models.RoleMerchant)
	m3 := e.user("m3@example.kr", models.RoleMerchant)

	a := m1.claim(models.StatusApproved, 5_000_000, item("FISH", 100_005, 30, true))
	b := m2.claim(models.StatusAutoApproved, 2_000_000, item("RICE", 40_000, 40, false), item("KIMCHI", 15_000, 20, true))
	pending := m3.claim(models.StatusInReview, 0, item("X", 1_000, 10, false))

	t.Run("goods", func(t *testing.T) {
		path := "/api/v1/claims/" + pending.String() + "/goods"
		var got struct {
			Goods []models.GoodsItem `json:"goods"`
		}
		m3.do("PUT", path, map[string]any{"goods": []any{item("TEA", 20_000, 50, false)}}).must(t, http.StatusOK).json(t, &got)
		if len(got.Goods) != 1 || got.Goods[0].SKU != "TEA" {
			t.Fatalf("goods %+v", got)
		}
		m3.do("PUT", path, map[string]any{"goods": []any{item("", -1, 0, false)}}).refused(t, 422, "validation_failed", "goods[0].sku", "goods[0].unit_price", "goods[0].quantity")
		m3.do("PUT", path, `{"goods": [`).refused(t, 400, "malformed_json")
		m3.do("PUT", path, map[string]any{}).refused(t, 422, "validation_failed", "goods")
		m1.do("PUT", path, map[string]any{"goods": []any{}}).refused(t, 404, "not_found")
		admin.do("PUT", path, map[string]any{"goods": []any{}}).refused(t, 403, "forbidden")
		m1.do("PUT", "/api/v1/claims/"+a.String()+"/goods", map[string]any{"goods": []any{}}).refused(t, 409, "claim_decided")
		m3.do("GET", "/claims/"+pending.String()+"/goods", nil).must(t, http.StatusOK).contains(t, `data-testid="goods-form"`, "TEA")
		form := url.Values{"goods_sku": {"TEA", ""}, "goods_name": {"녹차", ""}, "goods_unit_price": {"20,000", ""}, "goods_quantity": {"abc", ""}}
		if r := m3.do("POST", "/claims/"+pending.String()+"/goods", form); r.status != 422 || !strings.Contains(string(r.body), "goods-error") {
			t.Fatalf("bad goods form: %d", r.status)
		}
	})

	var t1 instTranche
	t.Run("create", func(t *testing.T) {
		path := "/api/v1/programs/" + models.DemoProgram + "/tranches"
		m1.do("POST", path, map[string]any{"name": "1차", "budget": 1}).refused(t, 403, "forbidden")
		approver.do("POST", path, map[string]any{"name": "1차", "budget": 1}).refused(t, 403, "forbidden")
		admin.do("POST", path, map[string]any{"name": "1차", "budget": -1_100_000_000}).refused(t, 422, "validation_failed", "budget")
		admin.do("POST", path, map[string]any{"name": "", "budget": 0}).refused(t, 422, "validation_failed", "name", "budget")
		admin.do("POST", path, map[string]any{"name": "1차", "budget": "11억"}).refused(t, 400, "malformed_json")
		admin.do("POST", "/api/v1/programs/NOPE-2025/tranches", map[string]any{"name": "1차", "budget": 1000}).refused(t, 404, "program_not_found")
		if n := e.count(`SELECT count(*) FROM tranches`); n != 0 {
			t.Fatalf("refused requests wrote %d tranches", n)
		}
		key := uuid.NewString()
		admin.do("POST", path, map[string]any{"name": "1차", "budget": 1_000_000}, "Idempotency-Key", key).must(t, http.StatusCreated).json(t, &t1)
		var again instTranche
		admin.do("POST", path, map[string]any{"name": "1차", "budget": 1_000_000}, "Idempotency-Key", key).must(t, http.StatusCreated).json(t, &again)
		admin.do("POST", path, map[string]any{"name": "1차", "budget": 2}, "Idempotency-Key", key).refused(t, 422, "idempotency_mismatch")
		if again.ID != t1.ID || t1.Seq != 1 || t1.Status != models.TrancheDraft || e.count(`SELECT count(*) FROM tranches`) != 1 {
			t.Fatalf("tranche %+v, replay %+v", t1, again)
		}
		if b := e.balances(); b["budget:prepurchase"] != 1_000_000 {
			t.Fatalf("budget not funded: %v", b)
		}
	})

	var prev instPreview
	t.Run("preview", func(t *testing.T) {
		path := "/api/v1/tranches/" + t1.ID.String()
		approver.do("POST", path+"/approve", nil).refused(t, 409, "preview_required") // the update validator
		m1.do("POST", path+"/preview", nil).refused(t, 404, "tranche_not_found")
		before := e.balances()
		admin.do("POST", path+"/preview", nil).must(t, http.StatusOK).json(t, &prev)
		if prev.PreviewVersion != 1 || prev.TotalAllocated > 1_000_000 || prev.TotalAllocated+prev.Unallocated != 1_000_000 || len(prev.Lines) != 2 {
			t.Fatalf("preview %+v", prev)
		}
		for _, l := range prev.Lines {
			var sum int64
			for _, it := range l.Items {
				if it.Amount != it.UnitPrice*it.Quantity {
					t.Fatalf("item %+v", it)
				}
				sum += it.Amount
			}
			if sum != l.Allocated || len(l.Explanation) == 0 {
				t.Fatalf("line %+v", l)
			}
		}
		after := e.balances()
		if after["budget:prepurchase"] != before["budget:prepurchase"] || e.count(`SELECT count(*) FROM entitlements WHERE instrument = 'prepurchase'`) != 0 {
			t.Fatalf("a preview moved money: %v → %v", before, after)
		}
		// The tranche's workflow swept the approved compensations on its way.
		e.eventually("compensation swept", func() bool {
			return e.count(`SELECT count(*) FROM entitlements WHERE instrument = 'compensation'`) == 2
		})
		if e.count(`SELECT count(*) FROM purchase_orders`) != 0 || e.count(`SELECT count(*) FROM claims WHERE prepurchase_allocated > 0`) != 0 {
			t.Fatal("a preview changed orders or claims")
		}
		admin.do("GET", "/tranches/"+t1.ID.String(), nil).must(t, http.StatusOK).contains(t, `data-testid="tranche-lines"`, "data-chart=", `data-testid="tranche-preview"`)
		approver.do("GET", "/tranches/"+t1.ID.String(), nil).must(t, http.StatusOK).contains(t, `data-testid="tranche-approve"`)
		admin.do("GET", "/programs/"+models.DemoProgram+"/instruments", nil).must(t, http.StatusOK).contains(t, `data-testid="tranche-list"`, "1차", `data-testid="tranche-create"`)
	})

	t.Run("segregation of duties", func(t *testing.T) {
		var own instTranche
		both.do("POST", "/api/v1/programs/"+models.DemoProgram+"/tranches", map[string]any{"name": "자기 차수", "budget": 500_000}).
			must(t, http.StatusCreated).json(t, &own)
		both.do("POST", "/api/v1/tranches/"+own.ID.String()+"/preview", nil).must(t, http.StatusOK)
		both.do("POST", "/api/v1/tranches/"+own.ID.String()+"/approve", nil).refused(t, 403, "segregation_of_duties")
		admin.do("POST", "/api/v1/tranches/"+t1.ID.String()+"/approve", nil).refused(t, 403, "forbidden")
		approver.do("POST", "/api/v1/tranches/"+t1.ID.String()+"/approve", map[string]any{"preview_version": 7}).refused(t, 409, "preview_changed")
		if e.count(`SELECT count(*) FROM tranches WHERE approved_by IS NOT NULL`) != 0 {
			t.Fatal("a refused approval approved")
		}
	})

	var approved struct {
		PurchaseOrders int   `json:"purchase_orders"`
		Total          int64 `json:"total"`
	}
	t.Run("approve", func(t *testing.T) {
		path := "/api/v1/tranches/" + t1.ID.String()
		key := uuid.NewString()
		approver.do("POST", path+"/approve", map[string]any{"preview_version": 1}, "Idempotency-Key", key).must(t, http.StatusOK).json(t, &approved)
		if approved.PurchaseOrders != 2 || approved.Total != prev.TotalAllocated {
			t.Fatalf("approve %+v, preview total %d", approved, prev.TotalAllocated)
		}
		r := approver.do("POST", path+"/approve", map[string]any{"preview_version": 1}, "Idempotency-Key", key).must(t, http.StatusOK)
		var replay struct {
			PurchaseOrders int `json:"purchase_orders"`
		}
		r.json(t, &replay)
		if replay.PurchaseOrders != 2 {
			t.Fatalf("replay %s", r.body)
		}
		approver2.do("POST", path+"/approve", nil).refused(t, 409, "tranche_already_approved")
		admin.do("POST", path+"/preview", nil).refused(t, 409, "tranche_already_approved")
		e.eventually("claims told their allocation", func() bool {
			var tr instTranche
			admin.do("GET", path, nil).must(t, http.StatusOK).json(t, &tr)
			return tr.Status == models.TrancheNotified && tr.Notified == 2
		})
		var allocated int64
		if err := e.store.Pool.QueryRow(ctx, `SELECT sum(prepurchase_allocated) FROM claims`).Scan(&allocated); err != nil || allocated != approved.Total {
			t.Fatalf("claims told %d of %d: %v", allocated, approved.Total, err)
		}
		admin.do("GET", "/tranches/"+t1.ID.String()+"/progress", nil).must(t, http.StatusOK).contains(t, `data-status="notified"`, "<progress")
		admin.do("GET", "/tranches/"+t1.ID.String(), nil).must(t, http.StatusOK).contains(t, `data-testid="tranche-orders"`, `data-testid="po-receive"`)
	})

	t.Run("receive", func(t *testing.T) {
		var list struct {
			Items []models.PurchaseOrder `json:"items"`
		}
		admin.do("GET", "/api/v1/tranches/"+t1.ID.String()+"/purchase-orders", nil).must(t, http.StatusOK).json(t, &list)
		if len(list.Items) != 2 {
			t.Fatalf("orders %+v", list)
		}
		approver.do("POST", "/api/v1/purchase-orders/"+list.Items[0].ID.String()+"/receive", nil).refused(t, 403, "forbidden")
		admin.do("POST", "/api/v1/purchase-orders/"+uuid.NewString()+"/receive", nil).refused(t, 404, "purchase_order_not_found")
		admin.do("POST", "/api/v1/purchase-orders/nonsense/receive", nil).refused(t, 404, "purchase_order_not_found")
		var owed int64
		for _, po := range list.Items {
			var got models.PurchaseOrder
			admin.do("POST", "/api/v1/purchase-orders/"+po.ID.String()+"/receive", nil).must(t, http.StatusOK).json(t, &got)
			admin.do("POST", "/api/v1/purchase-orders/"+po.ID.String()+"/receive", nil).must(t, http.StatusOK)
			if got.Status != "received" || got.Entitled%10 != 0 || got.Entitled+got.Remainder != po.Amount {
				t.Fatalf("received %+v", got)
			}
			owed += got.Entitled
		}
		bal := e.balances()
		const compensation = 5_000_000 + 2_000_000 // swept
		if bal["payable"] != compensation+owed || bal["budget:prepurchase"] != 1_500_000-owed || owed > 1_000_000 {
			t.Fatalf("balances %v, owed %d", bal, owed)
		}
		if e.count(`SELECT count(*) FROM entitlements WHERE instrument = 'prepurchase'`) != 2 {
			t.Fatal("receiving twice entitled twice")
		}
		r := admin.do("GET", "/api/v1/tranches/"+t1.ID.String()+"/sheet.xlsx", nil).must(t, http.StatusOK)
		if !bytes.HasPrefix(r.body, []byte("PK")) || r.header.Get("X-Content-SHA256") == "" {
			t.Fatalf("sheet: %s %q", r.header.Get("Content-Type"), r.body[:min(20, len(r.body))])
		}
		if e.count(`SELECT count(*) FROM audit_log WHERE action = 'export.tranche_sheet'`) != 1 {
			t.Fatal("the export was not audited")
		}
		m1.do("GET", "/api/v1/tranches/"+t1.ID.String()+"/sheet.xlsx", nil).refused(t, 404, "tranche_not_found")
	})

	t.Run("second tranche takes the residual need", func(t *testing.T) {
		var t2 instTranche
		admin.do("POST", "/api/v1/programs/"+models.DemoProgram+"/tranches", map[string]any{"name": "2차", "budget": 10_000_000}).
			must(t, http.StatusCreated).json(t, &t2)
		var p2 instPreview
		admin.do("POST", "/api/v1/tranches/"+t2.ID.String()+"/preview", nil).must(t, http.StatusOK).json(t, &p2)
		first := map[uuid.UUID]int64{}
		units := map[string]int64{}
		for _, l := range prev.Lines {
			first[l.ClaimID] = l.Allocated
			for _, it := range l.Items {
				units[it.SKU] += it.Quantity
			}
		}
		for _, l := range p2.Lines {
			if l.AlreadyAllocated != first[l.ClaimID] {
				t.Fatalf("claim %s: tranche 2 sees %d, tranche 1 gave %d", l.ClaimID, l.AlreadyAllocated, first[l.ClaimID])
			}
			for _, it := range l.Items {
				units[it.SKU] += it.Quantity
			}
		}
		if units["FISH"] != 30 || units["RICE"] != 40 || units["KIMCHI"] != 20 || units["TEA"] != 0 {
			t.Fatalf("units over both tranches %v: every unit on offer, none twice", units)
		}
		var res struct{ Total int64 }
		approver2.do("POST", "/api/v1/tranches/"+t2.ID.String()+"/approve", nil).must(t, http.StatusOK).json(t, &res)
		if res.Total+approved.Total != 30*100_005+40*40_000+20*15_000 {
			t.Fatalf("tranche 2 total %d", res.Total)
		}
	})

	t.Run("fee waiver", func(t *testing.T) {
		for _, id := range []uuid.UUID{a, b, pending} {
			if _, err := e.store.Pool.Exec(ctx, `INSERT INTO sales_ledger (program_code, brn, day, category, gross_sales, commission)
				SELECT program_code, brn, '2025-11-01', 'food', 1234567, 74074 FROM claims WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
		}
		path := "/api/v1/programs/" + models.DemoProgram + "/fee-waivers"
		m1.do("POST", path+"/run", nil).refused(t, 403, "forbidden")
		approver.do("POST", path+"/run", nil).refused(t, 403, "forbidden")
		admin.do("POST", "/api/v1/programs/NOPE-2025/fee-waivers/run", nil).refused(t, 404, "program_not_found")
		m1.do("GET", path, nil).refused(t, 404, "program_not_found")
		admin.do("GET", path+"?limit=0", nil).refused(t, 422, "validation_failed", "limit")
		type list struct {
			Items   []models.FeeWaiverLine `json:"items"`
			LastRun *models.FeeWaiverRun   `json:"last_run"`
		}
		lastKey := ""
		run := func() list {
			t.Helper()
			admin.do("POST", path+"/run", nil).must(t, http.StatusAccepted)
			var l list
			e.eventually("a finished run", func() bool {
				admin.do("GET", path, nil).must(t, http.StatusOK).json(t, &l)
				return l.LastRun != nil && l.LastRun.Status == "done" && l.LastRun.Trigger == "manual" && l.LastRun.RunKey != lastKey
			})
			lastKey = l.LastRun.RunKey
			return l
		}
		first := run()
		if len(first.Items) != 3 || first.LastRun.Entitled != 3 || first.LastRun.Amount != 3*74_070 {
			t.Fatalf("first run %+v", first)
		}
		second := run()
		if second.LastRun.RunKey == first.LastRun.RunKey || second.LastRun.Amount != first.LastRun.Amount {
			t.Fatalf("second run %+v", second.LastRun)
		}
		if n := e.count(`SELECT count(*) FROM entitlements WHERE instrument = 'fee_waiver'`); n != 3 {
			t.Fatalf("%d fee-waiver entitlements after two runs, want 3", n)
		}
		admin.do("GET", "/programs/"+models.DemoProgram+"/fee-waivers", nil).must(t, http.StatusOK).contains(t, `data-testid="feewaiver-lines"`, "222,210원")
		// Before the period is over a run is refused.
		if _, err := e.store.Pool.Exec(ctx, `UPDATE programs SET fee_waiver_ends_on = (now() + interval '10 days')::date WHERE code = $1`, models.DemoProgram); err != nil {
			t.Fatal(err)
		}
		admin.do("POST", path+"/run", nil).refused(t, 409, "promotion_not_over")
		e.balances()
	})
}
