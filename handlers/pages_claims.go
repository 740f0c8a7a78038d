package handlers

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
)

const goodsRows = 3

type bankOption struct{ Code, Name string }

type claimFormPage struct {
	Program    *models.Program
	Input      models.ClaimInput
	GoodsRows  []models.GoodsItem
	Fields     map[string]string
	Error      string
	IdemKey    string
	Categories []string
	Regions    []string
	Banks      []bankOption
	// Schedule lists the staggered application days (홀짝제 / 5부제), if any,
	// and OpensOn the day a not_your_day BRN may apply (for the error text).
	Schedule []models.StaggerDay
	OpensOn  string
}

func bankOptions() []bankOption {
	out := make([]bankOption, 0, len(models.Banks))
	for code, name := range models.Banks {
		out = append(out, bankOption{code, name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

func (s *Server) claimForm(p *models.Program, in models.ClaimInput) claimFormPage {
	rows := append([]models.GoodsItem(nil), in.Goods...)
	for len(rows) < goodsRows {
		rows = append(rows, models.GoodsItem{})
	}
	if in.Bank.BankCode == "" {
		in.Bank.BankCode = "004"
	}
	return claimFormPage{Program: p, Input: in, GoodsRows: rows, IdemKey: uuid.NewString(),
		Categories: models.Categories, Regions: models.Regions, Banks: bankOptions(), Schedule: p.StaggerSchedule()}
}

func (s *Server) pageClaimForm(c *gin.Context) {
	p, err := s.Store.ProgramByCode(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "claim_new", "title.claim_new", s.claimForm(p, models.ClaimInput{Phone: currentUser(c).Phone}))
}

// claimInputFromForm reads the HTML form into the same input the API takes;
// number fields that are not numbers are reported like any other field problem.
func claimInputFromForm(c *gin.Context, program string) (models.ClaimInput, map[string]string) {
	problems := map[string]string{}
	number := func(field, v string) int64 {
		v = strings.NewReplacer(",", "", " ", "", "원", "").Replace(v)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			problems[field] = "invalid_number"
		}
		return n
	}
	in := models.ClaimInput{
		Program: program, BRN: c.PostForm("brn"), BusinessName: c.PostForm("business_name"),
		Representative: c.PostForm("representative"), Phone: c.PostForm("phone"), Category: c.PostForm("category"),
		Region: c.PostForm("region"), ClaimedLoss: number("claimed_loss", c.PostForm("claimed_loss")),
		AcceptOffer: c.PostForm("accept_offer") == "true",
		Bank:        models.BankInput{BankCode: c.PostForm("bank_code"), AccountNumber: c.PostForm("account_number"), Holder: c.PostForm("holder")},
	}
	skus, names := c.PostFormArray("goods_sku"), c.PostFormArray("goods_name")
	prices, qtys, perish := c.PostFormArray("goods_unit_price"), c.PostFormArray("goods_quantity"), c.PostFormArray("goods_perishable")
	at := func(list []string, i int) string {
		if i < len(list) {
			return list[i]
		}
		return ""
	}
	for i := 0; i < len(skus) && i < 50; i++ {
		if strings.TrimSpace(at(skus, i)+at(names, i)+at(prices, i)+at(qtys, i)) == "" {
			continue // empty row
		}
		prefix := "goods[" + strconv.Itoa(len(in.Goods)) + "]."
		in.Goods = append(in.Goods, models.GoodsItem{SKU: at(skus, i), Name: at(names, i),
			UnitPrice: number(prefix+"unit_price", at(prices, i)), Quantity: number(prefix+"quantity", at(qtys, i)),
			Perishable: at(perish, i) == "true"})
	}
	return in, problems
}

func (s *Server) pageClaimSubmit(c *gin.Context) {
	p, err := s.Store.ProgramByCode(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	in, problems := claimInputFromForm(c, p.Code)
	again := func(status int, e *models.Error) {
		form := s.claimForm(p, in)
		form.Error, form.Fields = "error."+e.Code, e.Fields
		if day, ok := e.Data["opens_on"].(string); ok {
			form.OpensOn = day
		}
		s.render(c, status, "claim_new", "title.claim_new", form)
	}
	if len(problems) > 0 {
		again(http.StatusUnprocessableEntity, &models.Error{Code: "validation_failed", Fields: problems})
		return
	}
	key := c.PostForm("idempotency_key")
	if key == "" {
		key = uuid.NewString()
	}
	body, _ := json.Marshal(in)
	status, resp, err := s.Store.FileClaim(c, currentUser(c), key, models.RequestHash("FORM", c.Request.URL.Path, body), &in)
	if err != nil {
		e := asDomainError(err)
		if e.Code == "duplicate_claim" {
			// Their own earlier claim: show it instead of an error page.
			if id, ok := e.Data["id"].(uuid.UUID); ok {
				if _, err := s.Store.ClaimForViewer(c, currentUser(c), id); err == nil {
					c.Redirect(http.StatusSeeOther, "/claims/"+id.String())
					return
				}
			}
		}
		if e.Kind == models.EINTERNAL || e.Kind == models.EUNAVAILABLE || e.Kind == models.EFORBIDDEN {
			s.fail(c, err)
			return
		}
		again(statusOf[e.Kind], e)
		return
	}
	var filed models.Filed
	if err := json.Unmarshal(resp, &filed); err != nil || status != http.StatusAccepted {
		s.fail(c, err)
		return
	}
	s.metrics.claimsFiled.Inc()
	c.Redirect(http.StatusSeeOther, "/claims/"+filed.ID.String()+"?filed=1")
}

type claimPage struct {
	Claim     *models.Claim
	JustFiled bool
	Live      bool // keep polling the timeline while the workflow is still moving
	// The account correction form: shown to the claim's merchant while the
	// bank's account check has failed.
	CanCorrectBank bool
	Banks          []bankOption
	BankInput      models.BankInput
	BankError      string            // a message id
	BankFields     map[string]string // field → problem code
	Message        string            // a message id (?msg=)
}

// claimFlashes are the ?msg= values the claim page announces.
var claimFlashes = map[string]string{"account_corrected": "claim.account.corrected"}

func (s *Server) loadClaimPage(c *gin.Context) (*claimPage, error) {
	id, err := claimID(c)
	if err != nil {
		return nil, err
	}
	claim, err := s.Store.ClaimForViewer(c, currentUser(c), id)
	if err != nil {
		return nil, err
	}
	live := claim.Status == models.StatusReceived || claim.Status == models.StatusVerifying
	v := currentUser(c)
	page := &claimPage{Claim: claim, JustFiled: c.Query("filed") == "1", Live: live,
		Message: claimFlashes[c.Query("msg")]}
	if claim.AccountCheckFailed && v.HasRole(models.RoleMerchant) && !v.IsStaff() && claim.MerchantID == v.ID {
		page.CanCorrectBank = true
		page.Banks = bankOptions()
		page.BankInput = models.BankInput{BankCode: claim.Bank.BankCode, Holder: claim.Bank.Holder}
	}
	return page, nil
}

// pageCorrectBank is the claim page's account correction form: the same
// processing as PUT /api/v1/claims/{id}/bank, then back to the claim page.
func (s *Server) pageCorrectBank(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	in := models.BankInput{BankCode: c.PostForm("bank_code"), AccountNumber: c.PostForm("account_number"), Holder: c.PostForm("holder")}
	err = s.Store.InTx(c, func(tx pgx.Tx) error {
		_, _, err := s.Store.CorrectClaimBank(c, tx, currentUser(c), id, in, c.ClientIP())
		return err
	})
	if err != nil {
		e := s.pageRefusal(c, err, models.ENOTFOUND, models.EFORBIDDEN)
		if e == nil {
			return
		}
		page, lerr := s.loadClaimPage(c)
		if lerr != nil {
			s.fail(c, lerr)
			return
		}
		page.BankInput, page.BankError, page.BankFields = in, "error."+e.Code, e.Fields
		s.render(c, statusOf[e.Kind], "claim", "title.claim", page)
		return
	}
	c.Redirect(http.StatusSeeOther, "/claims/"+id.String()+"?msg=account_corrected")
}

func (s *Server) pageClaim(c *gin.Context) {
	page, err := s.loadClaimPage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "claim", "title.claim", page)
}

// pageClaimTimeline is the htmx partial that refreshes the status and timeline.
func (s *Server) pageClaimTimeline(c *gin.Context) {
	page, err := s.loadClaimPage(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	p := s.pageFor(c, "title.claim", page)
	if err := s.Web.RenderPartial(c.Writer, "claim", "timeline", p); err != nil {
		s.Log.Error("render failed", "err", err.Error())
	}
}

type claimsPage struct {
	Claims []*models.Claim
	Next   string
}

func (s *Server) pageClaims(c *gin.Context) {
	claims, next, err := s.Store.ListClaims(c, currentUser(c), models.ClaimFilter{Cursor: c.Query("cursor")})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "claims", "title.claims", claimsPage{Claims: claims, Next: next})
}
