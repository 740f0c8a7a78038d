package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// Reviewer pages (Korean first): the queue, the approver's pending list, the
// claim file with its sales chart and decision form, and the merchant's page
// for answering info requests, appealing and adding documents.

type reviewQueuePage struct {
	Programs   []*models.Program
	Filter     models.QueueFilter
	Page       *models.QueuePage
	Statuses   []string
	Flags      []string
	Regions    []string
	Categories []string
	Sorts      []string
	MinAmount  string
	MaxAmount  string
	NextURL    string
	StatusURL  map[string]string
	Error      string
	Fields     map[string]string
}

func (s *Server) pageReviewHome(c *gin.Context) {
	u := currentUser(c)
	if u.HasRole(models.RoleApprover) && !u.HasRole(models.RoleReviewer) {
		c.Redirect(http.StatusSeeOther, "/review/approvals")
		return
	}
	c.Redirect(http.StatusSeeOther, "/review/queue")
}

func (s *Server) reviewQueueData(c *gin.Context, forced string) (*reviewQueuePage, int, error) {
	u := currentUser(c)
	if !models.CanReview(u) {
		return nil, 0, models.Coded(models.EFORBIDDEN, "forbidden", "only agency staff see the review queue")
	}
	programs, err := s.Store.AgencyPrograms(c, u)
	if err != nil {
		return nil, 0, err
	}
	d := &reviewQueuePage{Programs: programs, Statuses: models.ClaimStatuses, Flags: models.RiskFlagCodes, Regions: models.Regions,
		Categories: models.Categories, Sorts: models.QueueSorts, MinAmount: c.Query("min_amount"), MaxAmount: c.Query("max_amount")}
	f, ferr := reviewQueueFilter(c)
	if forced != "" {
		f.Status = forced
	}
	if err := s.reviewDefaultProgram(c, &f); err != nil {
		return nil, 0, err
	}
	d.Filter = f
	status := http.StatusOK
	page, err := s.Store.ReviewQueue(c, u, f)
	if ferr == nil && err != nil {
		ferr = err
	}
	if ferr != nil {
		e := asDomainError(ferr)
		if e.Kind != models.EINVALID {
			return nil, 0, ferr
		}
		// Show the form with the problem and the unfiltered queue.
		d.Error, d.Fields, status = "error."+e.Code, e.Fields, statusOf[e.Kind]
		page, err = s.Store.ReviewQueue(c, u, models.QueueFilter{Program: f.Program, Status: forced})
		if err != nil {
			return nil, 0, err
		}
	}
	d.Page = page
	q := c.Request.URL.Query()
	if page.NextCursor != "" {
		q.Set("cursor", page.NextCursor)
		d.NextURL = c.Request.URL.Path + "?" + q.Encode()
	}
	d.StatusURL = map[string]string{}
	for _, st := range append([]string{""}, models.ClaimStatuses...) {
		sq := url.Values{"program": {f.Program}}
		if st != "" {
			sq.Set("status", st)
		}
		d.StatusURL[st] = "/review/queue?" + sq.Encode()
	}
	return d, status, nil
}

func (s *Server) pageReviewQueue(c *gin.Context) {
	d, status, err := s.reviewQueueData(c, "")
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "review_queue", "title.review_queue", d)
}

func (s *Server) pageApprovals(c *gin.Context) {
	d, status, err := s.reviewQueueData(c, models.StatusPendingSecondApproval)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "review_approvals", "title.review_approvals", d)
}

// reviewChart is a server-rendered SVG bar chart of a seller's daily sales
// (no script: the CSP forbids inline scripts, and none is needed).
type reviewChart struct {
	Width, Height           int
	Left, Top, PlotW, PlotH float64
	Bars                    []reviewChartBar
	Ticks                   []reviewChartTick
	YTicks                  []reviewChartTick
	OutageX, OutageW        float64
	HasOutage               bool
	Max                     int64
}

type reviewChartBar struct {
	X, Y, W, H float64
	Outage     bool
	Title      string
}

type reviewChartTick struct {
	X, Y  float64
	Label string
}

func reviewSalesChart(points []models.SalesPoint) *reviewChart {
	if len(points) == 0 {
		return nil
	}
	ch := &reviewChart{Width: 880, Height: 240, Left: 80, Top: 12, PlotW: 780, PlotH: 190}
	for _, p := range points {
		ch.Max = max(ch.Max, p.Sales)
	}
	scale := ch.Max
	if scale == 0 {
		scale = 1
	}
	bw := ch.PlotW / float64(len(points))
	first := -1
	for i, p := range points {
		h := float64(p.Sales) / float64(scale) * ch.PlotH
		x := ch.Left + float64(i)*bw
		ch.Bars = append(ch.Bars, reviewChartBar{X: x + bw*0.1, Y: ch.Top + ch.PlotH - h, W: bw * 0.8, H: h, Outage: p.Outage,
			Title: p.Date.String() + " " + rules.FormatWon(p.Sales)})
		if p.Outage {
			if first < 0 {
				first = i
				ch.OutageX = x
			}
			ch.OutageW = x + bw - ch.OutageX
			ch.HasOutage = true
		}
		if i%7 == 0 {
			ch.Ticks = append(ch.Ticks, reviewChartTick{X: x, Y: ch.Top + ch.PlotH + 16, Label: fmt.Sprintf("%02d-%02d", p.Date.Month, p.Date.Day)})
		}
	}
	for k := 0; k <= 4; k++ {
		v := scale * int64(k) / 4
		ch.YTicks = append(ch.YTicks, reviewChartTick{X: ch.Left - 6, Y: ch.Top + ch.PlotH - float64(k)/4*ch.PlotH + 4, Label: rules.FormatNumber(v)})
	}
	return ch
}

type reviewClaimPage struct {
	File          *models.ReviewFile
	Chart         *reviewChart
	IdemKey       string
	Reasons       []string
	DefaultAmount int64
	CanDecide     bool
	Pending       bool
	OpenInfo      *models.InfoRequestView
	Done          string
	Error         string
}

func (s *Server) pageReviewClaim(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	rf, err := s.Store.ReviewFileFor(c, u, id, c.ClientIP())
	if err != nil {
		s.fail(c, err)
		return
	}
	st := rf.Claim.Status
	d := reviewClaimPage{File: rf, Chart: reviewSalesChart(rf.Sales), IdemKey: uuid.NewString(), Reasons: models.RejectReasons,
		Pending: st == models.StatusPendingSecondApproval, Done: c.Query("done"), Error: c.Query("error")}
	if d.Error != "" {
		d.Error = "error." + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r == '_' {
				return r
			}
			return -1
		}, d.Error)
	}
	if rf.Offer != nil {
		d.DefaultAmount = rf.Offer.Compensation
	}
	if d.Pending && rf.FirstApprover != nil {
		for _, dec := range rf.Decisions {
			if dec.Amount != nil && dec.StatusAfter == models.StatusPendingSecondApproval {
				d.DefaultAmount = *dec.Amount
			}
		}
	}
	staff := u.HasRole(models.RoleReviewer) || u.HasRole(models.RoleApprover)
	d.CanDecide = staff && (st == models.StatusInReview || d.Pending) && u.ID != rf.Claim.MerchantID
	for i := range rf.InfoRequests {
		if rf.InfoRequests[i].Open() {
			d.OpenInfo = &rf.InfoRequests[i]
		}
	}
	s.render(c, http.StatusOK, "review_claim", "title.review_claim", d)
}

func reviewFormAmount(v string) (*int64, bool) {
	v = strings.NewReplacer(",", "", "원", "", " ", "").Replace(v)
	if v == "" {
		return nil, true
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil || fmt.Sprint(n) != strings.TrimLeft(v, "+") {
		return nil, false
	}
	return &n, true
}

// formResult redirects back to a page with the outcome: ?done=<status> or
// ?error=<code> (codes are fixed snake_case strings, never user input).
func (s *Server) reviewFormResult(c *gin.Context, back string, status int, body []byte, err error) {
	if err != nil {
		e := asDomainError(err)
		if e.Kind == models.EINTERNAL || e.Kind == models.ENOTFOUND {
			s.fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, back+"?error="+url.QueryEscape(e.Code))
		return
	}
	done := "ok"
	var res struct {
		Status string `json:"status"`
	}
	if status == http.StatusOK && json.Unmarshal(body, &res) == nil && res.Status != "" {
		done = res.Status
	}
	c.Redirect(http.StatusSeeOther, back+"?done="+url.QueryEscape(done))
}

func (s *Server) pageDecisionSubmit(c *gin.Context) {
	amount, ok := reviewFormAmount(c.PostForm("amount"))
	back := "/review/claims/" + c.Param("id")
	if !ok {
		c.Redirect(http.StatusSeeOther, back+"?error=invalid_amount")
		return
	}
	in := DecisionBody{Action: c.PostForm("action"), Amount: amount, ReasonCode: c.PostForm("reason_code"), Reason: c.PostForm("reason")}
	if in.Action != models.ActionApprove {
		in.Amount = nil
	}
	body, _ := json.Marshal(in)
	key := c.PostForm("idempotency_key")
	status, resp, err := s.reviewDecide(c, in, key, models.RequestHash("FORM", c.Request.URL.Path, body))
	s.reviewFormResult(c, back, status, resp, err)
}

type reviewRespondPage struct {
	Claim          *models.Claim
	File           *models.ReviewFile
	OpenInfo       *models.InfoRequestView
	CanAppeal      bool
	AppealDeadline time.Time
	RejectReason   string
	RejectCode     string
	IdemKey        string
	Done           string
	Error          string
}

// pageRespond is the merchant's page for what the reviewers asked: answer an
// info request, appeal a rejection, add documents.
func (s *Server) pageRespond(c *gin.Context) {
	cl, err := s.reviewMerchantClaim(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	rf, err := s.Store.ClaimExtras(c, cl)
	if err != nil {
		s.fail(c, err)
		return
	}
	d := reviewRespondPage{Claim: cl, File: rf, IdemKey: uuid.NewString(), Done: c.Query("done")}
	if e := c.Query("error"); e != "" {
		d.Error = "error." + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r == '_' {
				return r
			}
			return -1
		}, e)
	}
	for i := range rf.InfoRequests {
		if rf.InfoRequests[i].Open() && cl.Status == models.StatusInfoRequested {
			d.OpenInfo = &rf.InfoRequests[i]
		}
	}
	if cl.Status == models.StatusRejected && rf.Appeal == nil {
		p, err := s.Store.ProgramByCode(c, cl.Program)
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, dec := range rf.Decisions {
			if dec.Action == models.ActionReject {
				d.AppealDeadline = dec.At.Add(time.Duration(p.Rules.AppealDays) * 24 * time.Hour)
				d.RejectReason, d.RejectCode = dec.Reason, dec.ReasonCode
			}
		}
		d.CanAppeal = s.Store.Now().Before(d.AppealDeadline)
	}
	s.render(c, http.StatusOK, "review_respond", "title.review_respond", d)
}

func (s *Server) pageInfoSubmit(c *gin.Context) {
	note := c.PostForm("note")
	status, body, err := s.reviewAnswerInfo(c, note, c.PostForm("idempotency_key"), models.RequestHash("FORM", c.Request.URL.Path, []byte(note)))
	s.reviewFormResult(c, "/claims/"+c.Param("id")+"/respond", status, body, err)
}

func (s *Server) pageAppealSubmit(c *gin.Context) {
	reason := c.PostForm("reason")
	status, body, err := s.reviewFileAppeal(c, reason, c.PostForm("idempotency_key"), models.RequestHash("FORM", c.Request.URL.Path, []byte(reason)))
	s.reviewFormResult(c, "/claims/"+c.Param("id")+"/respond", status, body, err)
}

func (s *Server) pageDocumentSubmit(c *gin.Context) {
	back := "/claims/" + c.Param("id") + "/respond"
	if currentUser(c).IsStaff() {
		back = "/review/claims/" + c.Param("id")
	}
	_, _, err := s.reviewAddDocument(c)
	s.reviewFormResult(c, back, http.StatusCreated, nil, err)
}
