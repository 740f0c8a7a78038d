package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// Pages of the instruments area: the program's instruments (budgets,
// tranches, fee waiver), one tranche (draft, chart, approval, orders), the
// fee-waiver lines, and the merchant's goods offer. Forms post here and
// redirect; refusals re-render the page with the message.

// flashes are the ?msg= values a redirect may carry, and their message ids.
var instrumentFlashes = map[string]string{
	"created": "tranche.msg.created", "previewed": "tranche.msg.previewed", "approved": "tranche.msg.approved",
	"received": "tranche.msg.received", "run": "feewaiver.msg.run", "goods": "instruments.goods.msg.saved",
}

func instFlashFrom(c *gin.Context) string { return instrumentFlashes[c.Query("msg")] }

// instPageError re-renders a page with a refusal; internal errors and outages get
// the error page.
func (s *Server) instPageError(c *gin.Context, err error, render func(status int, message string, fields map[string]string)) {
	if e := s.pageRefusal(c, err, models.ENOTFOUND); e != nil {
		render(statusOf[e.Kind], "error."+e.Code, e.Fields)
	}
}

// trancheSuggestion pre-fills the create form (the demo's published tranches).
type trancheSuggestion struct {
	Name   string
	Budget int64
}

type instrumentsPage struct {
	Program   *models.Program
	Budgets   []models.Budget
	Tranches  []*models.Tranche
	FeeWaiver models.FeeWaiverSetup
	LastRun   *models.FeeWaiverRun
	Runnable  bool
	CanCreate bool
	CanRun    bool
	Suggest   trancheSuggestion
	Name      string // the create form as entered
	Budget    string
	IdemKey   string
	Message   string
	Error     string
	Fields    map[string]string
}

func (s *Server) instrumentsData(c *gin.Context) (*instrumentsPage, error) {
	u := currentUser(c)
	p, err := s.Store.StaffProgram(c, u, c.Param("code"))
	if err != nil {
		return nil, err
	}
	d := &instrumentsPage{Program: p, IdemKey: uuid.NewString(), Message: instFlashFrom(c),
		CanCreate: u.HasRole(models.RoleProgramAdmin), CanRun: u.HasRole(models.RoleProgramAdmin)}
	if d.Budgets, err = s.Store.ProgramBudgets(c, p.Code); err != nil {
		return nil, err
	}
	if d.Tranches, err = s.Store.ListTranches(c, u, p.Code); err != nil {
		return nil, err
	}
	if d.FeeWaiver, err = s.Store.FeeWaiverSetup(c, p.Code); err != nil {
		return nil, err
	}
	if d.LastRun, err = s.Store.LatestFeeWaiverRun(c, p.Code); err != nil {
		return nil, err
	}
	d.Runnable = d.FeeWaiver.CheckFeeWaiverRunnable(s.Store.Now()) == nil
	d.Suggest = trancheSuggestion{Name: strconv.Itoa(len(d.Tranches)+1) + "차 선매입"}
	if p.Code == models.DemoProgram && len(d.Tranches) < 2 {
		d.Suggest.Budget = []int64{1_100_000_000, 2_200_000_000}[len(d.Tranches)]
	}
	return d, nil
}

func (s *Server) pageInstruments(c *gin.Context) {
	d, err := s.instrumentsData(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "instruments_program", "instruments.title", d)
}

func (s *Server) pageCreateTranche(c *gin.Context) {
	name, budgetText := c.PostForm("name"), c.PostForm("budget")
	again := func(status int, message string, fields map[string]string) {
		d, err := s.instrumentsData(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		d.Name, d.Budget, d.Error, d.Fields, d.Message = name, budgetText, message, fields, ""
		s.render(c, status, "instruments_program", "instruments.title", d)
	}
	in := models.TrancheInput{Name: name}
	if strings.TrimSpace(budgetText) != "" {
		b, err := rules.ParseWon(budgetText)
		if err != nil {
			again(http.StatusUnprocessableEntity, "error.validation_failed", map[string]string{"budget": "invalid_number"})
			return
		}
		in.Budget = b
	}
	body, _ := json.Marshal(in)
	_, out, err := s.instCreateTranche(c, c.Param("code"), in, body, c.PostForm("idempotency_key"))
	if err != nil {
		s.instPageError(c, err, again)
		return
	}
	s.redirectCreated(c, out, "/tranches/")
}

// instLineView is one draft line as the tranche page shows it.
type instLineView struct {
	models.PreviewLine
	Why []string
}

// trancheChart is the JSON the shared chart script (static/dashboard_charts.js)
// draws: a horizontal stacked bar per merchant.
type trancheChart struct {
	Type       string              `json:"type"`
	Labels     []string            `json:"labels"`
	Datasets   []trancheChartSerie `json:"datasets"`
	Stacked    bool                `json:"stacked"`
	Horizontal bool                `json:"horizontal"`
	Unit       string              `json:"unit"`
}

type trancheChartSerie struct {
	Label string  `json:"label"`
	Data  []int64 `json:"data"`
}

func (c trancheChart) JSON() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Limits of the tranche page; the API and the Excel sheet have everything.
const (
	instChartMerchants = 25
	instLinesShown     = 300
)

type tranchePage struct {
	Tranche    *models.Tranche
	Program    *models.Program
	Lines      []instLineView // by allocation, largest first
	LinesTotal int
	Allocated  int64 // merchants with an allocation
	Units      int64
	Chart      trancheChart
	Orders     []*models.PurchaseOrder
	NextOrders string
	CanPreview bool
	CanApprove bool
	IsCreator  bool
	CanReceive bool
	Live       bool // claims still being told: the progress polls
	Message    string
	Error      string
}

func (s *Server) trancheData(c *gin.Context) (*tranchePage, error) {
	u := currentUser(c)
	t, err := s.trancheParam(c)
	if err != nil {
		return nil, err
	}
	p, err := s.Store.ProgramByCode(c, t.Program)
	if err != nil {
		return nil, err
	}
	prev, err := s.Store.TranchePreview(c, u, t.ID)
	if err != nil {
		return nil, err
	}
	d := &tranchePage{Tranche: t, Program: p, Message: instFlashFrom(c), IsCreator: t.CreatedBy == u.ID,
		CanPreview: !t.Approved() && (u.HasRole(models.RoleProgramAdmin) || u.HasRole(models.RoleApprover)),
		CanReceive: u.HasRole(models.RoleProgramAdmin), Live: t.Status == models.TrancheApproved}
	d.CanApprove = t.Status == models.TranchePreviewed && u.HasRole(models.RoleApprover) && !d.IsCreator
	lang := langFromRequest(c.Request)
	lines := slices.Clone(prev.Lines)
	slices.SortStableFunc(lines, func(a, b models.PreviewLine) int {
		if a.Allocated != b.Allocated {
			if a.Allocated > b.Allocated {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ReceiptNo, b.ReceiptNo)
	})
	d.LinesTotal = len(lines)
	for i, l := range lines {
		if l.Allocated > 0 {
			d.Allocated++
		}
		d.Units += l.Units()
		if i < instLinesShown {
			d.Lines = append(d.Lines, instLineView{PreviewLine: l, Why: l.Explanation(lang)})
		}
	}
	l := s.localizer(c)
	d.Chart = trancheChart{Type: "bar", Stacked: true, Horizontal: true, Unit: "won"}
	this, earlier, room := trancheChartSerie{Label: l.T("tranche.chart.this")}, trancheChartSerie{Label: l.T("tranche.chart.earlier")},
		trancheChartSerie{Label: l.T("tranche.chart.room")}
	for i, line := range lines {
		if i == instChartMerchants || line.Allocated == 0 {
			break
		}
		d.Chart.Labels = append(d.Chart.Labels, line.ReceiptNo+" "+line.BusinessName)
		this.Data = append(this.Data, line.Allocated)
		earlier.Data = append(earlier.Data, line.AlreadyAllocated)
		room.Data = append(room.Data, line.Cap-line.Allocated)
	}
	d.Chart.Datasets = []trancheChartSerie{this, earlier, room}
	if t.Approved() {
		if d.Orders, d.NextOrders, err = s.Store.ListPurchaseOrders(c, u, t.ID, c.Query("cursor"), 100); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (s *Server) renderTranche(c *gin.Context, status int, errMsg string) {
	d, err := s.trancheData(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if errMsg != "" {
		d.Error, d.Message = errMsg, ""
	}
	s.render(c, status, "tranche_view", "tranche.title", d)
}

func (s *Server) pageTranche(c *gin.Context) { s.renderTranche(c, http.StatusOK, "") }

// pageTrancheProgress is the htmx partial that refreshes the notification progress.
func (s *Server) pageTrancheProgress(c *gin.Context) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	p := s.pageFor(c, "tranche.title", &tranchePage{Tranche: t, Live: t.Status == models.TrancheApproved})
	if err := s.Web.RenderPartial(c.Writer, "tranche_view", "tranche_progress", p); err != nil {
		s.Log.Error("render failed", "err", err.Error())
	}
}

// pageTrancheAction runs act on the :id tranche for a form, then shows the
// tranche announcing flash, or again with the refusal.
func (s *Server) pageTrancheAction(c *gin.Context, flash string, act func(t *models.Tranche) error) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := act(t); err != nil {
		s.instPageError(c, err, func(status int, msg string, _ map[string]string) { s.renderTranche(c, status, msg) })
		return
	}
	c.Redirect(http.StatusSeeOther, "/tranches/"+t.ID.String()+"?msg="+flash)
}

func (s *Server) pagePreviewTranche(c *gin.Context) {
	s.pageTrancheAction(c, "previewed", func(t *models.Tranche) error { return s.instPreviewTranche(c, t) })
}

func (s *Server) pageApproveTranche(c *gin.Context) {
	s.pageTrancheAction(c, "approved", func(t *models.Tranche) error {
		version, _ := strconv.Atoi(c.PostForm("preview_version"))
		_, err := s.instApproveTranche(c, t, version)
		return err
	})
}

func (s *Server) pageReceivePurchaseOrder(c *gin.Context) {
	po, err := s.receivePurchaseOrder(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/tranches/"+po.TrancheID.String()+"?msg=received#po-"+po.ID.String())
}

type feeWaiversPage struct {
	Program  *models.Program
	List     *feeWaiverList
	Runnable bool
	CanRun   bool
	Live     bool
	Message  string
	Error    string
}

func (s *Server) renderFeeWaivers(c *gin.Context, status int, errMsg string) {
	u := currentUser(c)
	p, err := s.Store.StaffProgram(c, u, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	list, err := s.feeWaiverList(c, p.Code, c.Query("cursor"), 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	setup, err := s.Store.FeeWaiverSetup(c, p.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	d := &feeWaiversPage{Program: p, List: list, Runnable: setup.CheckFeeWaiverRunnable(s.Store.Now()) == nil,
		CanRun: u.HasRole(models.RoleProgramAdmin), Live: list.LastRun != nil && list.LastRun.Status == "running",
		Message: instFlashFrom(c), Error: errMsg}
	if errMsg != "" {
		d.Message = ""
	}
	s.render(c, status, "feewaiver_list", "feewaiver.title", d)
}

func (s *Server) pageFeeWaivers(c *gin.Context) { s.renderFeeWaivers(c, http.StatusOK, "") }

func (s *Server) pageRunFeeWaivers(c *gin.Context) {
	p, err := s.requestFeeWaiverRun(c, c.Param("code"))
	if err != nil {
		s.instPageError(c, err, func(status int, msg string, _ map[string]string) { s.renderFeeWaivers(c, status, msg) })
		return
	}
	c.Redirect(http.StatusSeeOther, "/programs/"+url.PathEscape(p.Code)+"/fee-waivers?msg=run")
}

// instGoodsRowsShown is how many rows the goods form offers beyond the current goods.
const instGoodsRowsShown = 3

type instGoodsPage struct {
	Claim    *models.Claim
	Rows     []models.GoodsItem
	Editable bool
	Message  string
	Error    string
	Fields   map[string]string
}

func (s *Server) renderGoods(c *gin.Context, status int, rows []models.GoodsItem, errMsg string, fields map[string]string) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	claim, err := s.Store.ClaimForViewer(c, currentUser(c), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	d := &instGoodsPage{Claim: claim, Editable: models.GoodsEditable(claim.Status) && claim.MerchantID == u.ID,
		Message: instFlashFrom(c), Error: errMsg, Fields: fields}
	if rows == nil {
		rows = slices.Clone(claim.Goods)
	}
	if d.Editable {
		for range instGoodsRowsShown {
			rows = append(rows, models.GoodsItem{})
		}
	}
	d.Rows = rows
	s.render(c, status, "instruments_goods", "instruments.goods.title", d)
}

func (s *Server) pageGoods(c *gin.Context) { s.renderGoods(c, http.StatusOK, nil, "", nil) }

// instGoodsFromForm reads the goods rows of the form; empty rows are skipped and
// numbers that are not numbers are named like any field problem.
func instGoodsFromForm(c *gin.Context) ([]models.GoodsItem, map[string]string) {
	problems := map[string]string{}
	skus, names := c.PostFormArray("goods_sku"), c.PostFormArray("goods_name")
	prices, qtys := c.PostFormArray("goods_unit_price"), c.PostFormArray("goods_quantity")
	perishable := map[string]bool{}
	for _, v := range c.PostFormArray("goods_perishable") {
		perishable[v] = true
	}
	at := func(list []string, i int) string {
		if i < len(list) {
			return strings.TrimSpace(list[i])
		}
		return ""
	}
	goods := []models.GoodsItem{}
	for i := 0; i < len(skus) && i < 60; i++ {
		if at(skus, i)+at(names, i)+at(prices, i)+at(qtys, i) == "" {
			continue
		}
		prefix := "goods[" + strconv.Itoa(len(goods)) + "]."
		number := func(field, v string) int64 {
			if v == "" {
				return 0
			}
			n, err := rules.ParseWon(v)
			if err != nil {
				problems[prefix+field] = "invalid_number"
			}
			return n
		}
		goods = append(goods, models.GoodsItem{SKU: at(skus, i), Name: at(names, i), UnitPrice: number("unit_price", at(prices, i)),
			Quantity: number("quantity", at(qtys, i)), Perishable: perishable[strconv.Itoa(i)]})
	}
	return goods, problems
}

func (s *Server) pageGoodsSubmit(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	goods, problems := instGoodsFromForm(c)
	if len(problems) > 0 {
		s.renderGoods(c, http.StatusUnprocessableEntity, goods, "error.validation_failed", problems)
		return
	}
	if _, err := s.Store.ReplaceGoods(c, currentUser(c), id, goods, c.ClientIP()); err != nil {
		s.instPageError(c, err, func(status int, msg string, fields map[string]string) { s.renderGoods(c, status, goods, msg, fields) })
		return
	}
	c.Redirect(http.StatusSeeOther, "/claims/"+id.String()+"/goods?msg=goods")
}
