package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
)

// payoutLinesShown caps the lines table of the batch page; the API and the
// reconciliation sheet have them all.
const payoutLinesShown = 500

type payoutsPage struct {
	Batches     []*models.PayoutBatch
	Next        string
	Programs    []*models.Program
	Instruments []string
	Finance     bool
	Input       models.PayoutBatchInput
	IdemKey     string
	Error       string
	Fields      map[string]string
}

func (s *Server) payoutsPageData(c *gin.Context, u *models.User) (*payoutsPage, error) {
	batches, next, err := s.Store.ListPayoutBatches(c, u, "", 50, c.Query("cursor"))
	if err != nil {
		return nil, err
	}
	programs, err := s.Store.ListPrograms(c)
	if err != nil {
		return nil, err
	}
	mine := []*models.Program{}
	for _, p := range programs {
		if p.Agency == u.Agency {
			mine = append(mine, p)
		}
	}
	d := &payoutsPage{Batches: batches, Next: next, Programs: mine, Instruments: models.Instruments,
		Finance: u.HasRole(models.RoleFinance), IdemKey: uuid.NewString()}
	if len(mine) > 0 {
		d.Input.Program = mine[0].Code
	}
	return d, nil
}

// pagePayouts: GET /payouts — the batches and the form that makes one.
func (s *Server) pagePayouts(c *gin.Context) {
	d, err := s.payoutsPageData(c, currentUser(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "payout_list", "payout.title", d)
}

func (s *Server) pageCreatePayoutBatch(c *gin.Context) {
	u := currentUser(c)
	in := models.PayoutBatchInput{Program: c.PostForm("program"), Cutoff: c.PostForm("cutoff"),
		Instrument: c.PostForm("instrument"), Channel: c.PostForm("channel")}
	key := c.PostForm("idempotency_key")
	if key == "" {
		key = uuid.NewString()
	}
	body, _ := json.Marshal(in)
	_, resp, err := s.createPayoutBatch(c, u, in, key, models.RequestHash("FORM", c.Request.URL.Path, body))
	if err != nil {
		e := s.pageRefusal(c, err, models.EFORBIDDEN)
		if e == nil {
			return
		}
		d, derr := s.payoutsPageData(c, u)
		if derr != nil {
			s.fail(c, derr)
			return
		}
		d.Input, d.Error, d.Fields = in, "error."+e.Code, e.Fields
		s.render(c, statusOf[e.Kind], "payout_list", "payout.title", d)
		return
	}
	s.redirectCreated(c, resp, "/payouts/")
}

type payoutBatchPage struct {
	Batch      *models.PayoutBatch
	Lines      []models.PayoutLine
	MoreLines  int
	Finance    bool
	IsCreator  bool
	CanApprove bool
	Live       bool
	Percent    int
	Banks      []bankOption
	Message    string // message id (success)
	Error      string // message id (failure)
	Import     *models.PayoutImport
	RowErrors  []exports.RowError
}

func bulkBanks() []bankOption {
	out := []bankOption{}
	for _, code := range exports.SupportedBanks() {
		out = append(out, bankOption{Code: code, Name: exports.BankName(code)})
	}
	return out
}

func (s *Server) payoutBatchPageData(c *gin.Context) (*payoutBatchPage, error) {
	u := currentUser(c)
	b, err := s.payoutBatchParam(c, false)
	if err != nil {
		return nil, err
	}
	d := &payoutBatchPage{Batch: b, Finance: u.HasRole(models.RoleFinance), IsCreator: b.CreatedBy == u.ID, Banks: bulkBanks()}
	d.CanApprove = d.Finance && !d.IsCreator && b.Status == models.BatchAwaitingApproval
	d.Live = b.Status == models.BatchChecking || b.Status == models.BatchTransferring
	if b.LineCount > 0 {
		switch b.Status {
		case models.BatchChecking:
			d.Percent = 0
		default:
			d.Percent = b.Done() * 100 / b.LineCount
		}
	}
	return d, nil
}

// pageMessages are the outcomes a redirect may announce (?msg= / ?err=).
var pageMessages = []string{"created", "approved"}

func (s *Server) pagePayoutBatch(c *gin.Context) {
	d, err := s.payoutBatchPageData(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if m := c.Query("msg"); slices.Contains(pageMessages, m) {
		d.Message = "payout.msg." + m
	}
	if e := c.Query("err"); e != "" && len(e) < 64 {
		d.Error = "error." + e
	}
	s.renderPayoutBatch(c, http.StatusOK, d)
}

func (s *Server) renderPayoutBatch(c *gin.Context, status int, d *payoutBatchPage) {
	lines, err := s.Store.PayoutLines(c, d.Batch.ID, "", payoutLinesShown)
	if err != nil {
		s.fail(c, err)
		return
	}
	d.Lines = lines
	if d.Batch.LineCount > len(lines) {
		d.MoreLines = d.Batch.LineCount - len(lines)
	}
	s.render(c, status, "payout_batch", "payout.batch.title", d)
}

// pagePayoutProgress is the htmx partial that refreshes status and progress.
func (s *Server) pagePayoutProgress(c *gin.Context) {
	d, err := s.payoutBatchPageData(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	if err := s.Web.RenderPartial(c.Writer, "payout_batch", "payout_progress", s.pageFor(c, "payout.batch.title", d)); err != nil {
		s.Log.Error("render failed", "err", err.Error())
	}
}

func (s *Server) pageApprovePayoutBatch(c *gin.Context) {
	id, err := payoutBatchID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.approvePayoutBatch(c, currentUser(c), id); err != nil {
		e := asDomainError(err)
		if e.Kind == models.EINTERNAL || e.Kind == models.ENOTFOUND {
			s.fail(c, err)
			return
		}
		c.Redirect(http.StatusSeeOther, "/payouts/"+id.String()+"?err="+url.QueryEscape(e.Code))
		return
	}
	c.Redirect(http.StatusSeeOther, "/payouts/"+id.String()+"?msg=approved")
}

func (s *Server) pagePayoutResults(c *gin.Context) {
	id, err := payoutBatchID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	imp, err := s.importPayoutResults(c, currentUser(c), id)
	d, derr := s.payoutBatchPageData(c)
	if derr != nil {
		s.fail(c, derr)
		return
	}
	status := http.StatusOK
	if err != nil {
		e := s.pageRefusal(c, err, models.ENOTFOUND)
		if e == nil {
			return
		}
		status = statusOf[e.Kind]
		d.Error = "error." + e.Code
		if rows, ok := e.Data["errors"].([]exports.RowError); ok {
			d.RowErrors = rows
		}
	} else {
		d.Import = imp
		d.Message = "payout.msg.imported"
	}
	s.renderPayoutBatch(c, status, d)
}

type payoutReconPage struct {
	Batch *models.PayoutBatch
	Recon *models.PayoutRecon
}

func (s *Server) pagePayoutReconciliation(c *gin.Context) {
	b, r, err := s.payoutReconParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "payout_recon", "payout.recon.title", payoutReconPage{Batch: b, Recon: r})
}
