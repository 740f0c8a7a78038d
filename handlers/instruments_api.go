package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
	"github.com/relief/relief/workflows/feewaiver"
)

// The instruments area: goods offers, pre-purchase tranches and purchase
// orders, fee waivers. State changes that belong to a workflow (preview,
// approval, fee-waiver runs) go through Temporal updates; the rest are one
// PostgreSQL transaction each.

// instWorkflowTimeout bounds how long a request waits on a workflow update.
const instWorkflowTimeout = time.Minute

var instErrNoTemporal = models.Coded(models.EUNAVAILABLE, "workflow_unavailable", "the workflow service is not configured")

// instGoodsBody is the body of PUT /api/v1/claims/{id}/goods.
type instGoodsBody struct {
	Goods []models.GoodsItem `json:"goods"`
}

func (s *Server) apiReplaceGoods(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in instGoodsBody
	if err := bindJSON(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.Goods == nil {
		s.fail(c, models.FieldError("validation_failed", "goods", "required", "goods is required (an empty list withdraws the offer)"))
		return
	}
	goods, err := s.Store.ReplaceGoods(c, currentUser(c), id, in.Goods, c.ClientIP())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, instGoodsBody{Goods: goods})
}

// instReplayable is replayable with the instruments' scope: the caller's.
func (s *Server) instReplayable(c *gin.Context, body []byte, run func() (int, any, error)) {
	s.replayable(c, "instruments:"+currentUser(c).ID.String(), body, run)
}

func (s *Server) apiBudgets(c *gin.Context) {
	p, err := s.Store.StaffProgram(c, currentUser(c), c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	budgets, err := s.Store.ProgramBudgets(c, p.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": budgets})
}

func (s *Server) apiListTranches(c *gin.Context) {
	tranches, err := s.Store.ListTranches(c, currentUser(c), c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	listJSON(c, tranches, "")
}

// instCreateTranche writes the tranche (replaying a stored answer for a repeated
// Idempotency-Key, committed with the tranche), then starts its workflow.
func (s *Server) instCreateTranche(c *gin.Context, program string, in models.TrancheInput, body []byte, key string) (int, []byte, error) {
	if len(key) > 200 {
		return 0, nil, models.FieldError("validation_failed", "Idempotency-Key", "too_long", "the Idempotency-Key is over 200 characters")
	}
	u := currentUser(c)
	hash := models.RequestHash(c.Request.Method, c.Request.URL.Path, body)
	status, out, err := createOnce(s, c, "tranches:"+u.ID.String(), key, hash, func(tx pgx.Tx) (*models.Tranche, error) {
		return s.Store.CreateTranche(c, tx, u, program, in, c.ClientIP())
	})
	if err != nil {
		return 0, nil, err
	}
	var t models.Tranche
	if err := json.Unmarshal(out, &t); err == nil && s.Temporal != nil {
		ctx, cancel := context.WithTimeout(c, 10*time.Second)
		defer cancel()
		// Best effort: a preview or approval starts it later if this fails.
		if err := allocation.Start(ctx, s.Temporal, &t); err != nil {
			s.Log.Warn("tranche workflow not started yet", "tranche", t.ID.String(), "err", err.Error())
		}
	}
	return status, out, nil
}

func (s *Server) apiCreateTranche(c *gin.Context) {
	apiCreate(s, c, func(in models.TrancheInput, key string, body []byte) (int, []byte, error) {
		return s.instCreateTranche(c, c.Param("code"), in, body, key)
	})
}

// trancheParam loads the :id tranche for staff of its agency.
func (s *Server) trancheParam(c *gin.Context) (*models.Tranche, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return nil, models.Coded(models.ENOTFOUND, "tranche_not_found", "no such tranche")
	}
	return s.Store.TrancheForViewer(c, currentUser(c), id)
}

func (s *Server) apiGetTranche(c *gin.Context) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

// previewItem and instPreviewLine are a draft line as the API shows it.
type instPreviewLine struct {
	ClaimID          uuid.UUID            `json:"claim_id"`
	ReceiptNo        string               `json:"receipt_no"`
	Tier             int                  `json:"tier"`
	Weight           int64                `json:"weight"`
	Offer            int64                `json:"offer"`
	AlreadyAllocated int64                `json:"already_allocated"`
	Cap              int64                `json:"cap"`
	Allocated        int64                `json:"allocated"`
	Units            int64                `json:"units"`
	Items            []models.PreviewItem `json:"items"`
	Explanation      []string             `json:"explanation"`
}

// tranchePreviewResponse is the answer to POST /api/v1/tranches/{id}/preview.
type tranchePreviewResponse struct {
	TrancheID      uuid.UUID         `json:"tranche_id"`
	Status         string            `json:"status"`
	PreviewVersion int               `json:"preview_version"`
	Budget         int64             `json:"budget"`
	TotalAllocated int64             `json:"total_allocated"`
	Unallocated    int64             `json:"unallocated"`
	Lines          []instPreviewLine `json:"lines"`
}

func (s *Server) tranchePreviewBody(c *gin.Context, id uuid.UUID) (*tranchePreviewResponse, error) {
	p, err := s.Store.TranchePreview(c, currentUser(c), id)
	if err != nil {
		return nil, err
	}
	lang := langFromRequest(c.Request)
	t := p.Tranche
	out := &tranchePreviewResponse{TrancheID: t.ID, Status: t.Status, PreviewVersion: t.PreviewVersion, Budget: t.Budget,
		TotalAllocated: t.TotalAllocated, Unallocated: t.Unallocated, Lines: make([]instPreviewLine, 0, len(p.Lines))}
	for _, l := range p.Lines {
		out.Lines = append(out.Lines, instPreviewLine{ClaimID: l.ClaimID, ReceiptNo: l.ReceiptNo, Tier: l.Tier, Weight: l.Weight, Offer: l.Offer,
			AlreadyAllocated: l.AlreadyAllocated, Cap: l.Cap, Allocated: l.Allocated, Units: l.Units(), Items: l.Items, Explanation: l.Explanation(lang)})
	}
	return out, nil
}

func (s *Server) apiGetPreview(c *gin.Context) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.tranchePreviewBody(c, t.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// instPreviewTranche asks the tranche's workflow for a new draft.
func (s *Server) instPreviewTranche(c *gin.Context, t *models.Tranche) error {
	u := currentUser(c)
	if !u.HasRole(models.RoleProgramAdmin) && !u.HasRole(models.RoleApprover) {
		return models.Coded(models.EFORBIDDEN, "forbidden", "program admins and approvers preview tranches")
	}
	if t.Approved() {
		return models.Coded(models.ECONFLICT, "tranche_already_approved", "the tranche is already approved")
	}
	if s.Temporal == nil {
		return instErrNoTemporal
	}
	ctx, cancel := context.WithTimeout(c, instWorkflowTimeout)
	defer cancel()
	_, err := allocation.Preview(ctx, s.Temporal, t, u.ID)
	return err
}

// trancheUpdate answers a workflow update on the :id tranche, replayable
// with an Idempotency-Key: in, when not nil, receives the optional JSON body.
func (s *Server) trancheUpdate(c *gin.Context, in any, update func(t *models.Tranche) (any, error)) {
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if in != nil && len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSON(body, in); err != nil {
			s.fail(c, err)
			return
		}
	}
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.instReplayable(c, body, func() (int, any, error) {
		out, err := update(t)
		return http.StatusOK, out, err
	})
}

func (s *Server) apiPreviewTranche(c *gin.Context) {
	s.trancheUpdate(c, nil, func(t *models.Tranche) (any, error) {
		if err := s.instPreviewTranche(c, t); err != nil {
			return nil, err
		}
		return s.tranchePreviewBody(c, t.ID)
	})
}

// trancheApproveBody is the optional body of POST /api/v1/tranches/{id}/approve.
type trancheApproveBody struct {
	PreviewVersion int `json:"preview_version"`
}

func (s *Server) instApproveTranche(c *gin.Context, t *models.Tranche, version int) (models.ApproveResult, error) {
	u := currentUser(c)
	if !u.HasRole(models.RoleApprover) {
		return models.ApproveResult{}, models.Coded(models.EFORBIDDEN, "forbidden", "only approvers approve tranches")
	}
	if t.Approved() {
		return models.ApproveResult{}, models.Coded(models.ECONFLICT, "tranche_already_approved", "the tranche is already approved")
	}
	if version < 0 {
		return models.ApproveResult{}, models.FieldError("validation_failed", "preview_version", "out_of_range", "preview_version is a draft version")
	}
	if s.Temporal == nil {
		return models.ApproveResult{}, instErrNoTemporal
	}
	ctx, cancel := context.WithTimeout(c, instWorkflowTimeout)
	defer cancel()
	return allocation.Approve(ctx, s.Temporal, t, allocation.ApproveRequest{ApproverID: u.ID, PreviewVersion: version})
}

func (s *Server) apiApproveTranche(c *gin.Context) {
	var in trancheApproveBody
	s.trancheUpdate(c, &in, func(t *models.Tranche) (any, error) {
		return s.instApproveTranche(c, t, in.PreviewVersion)
	})
}

func (s *Server) apiListPurchaseOrders(c *gin.Context) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	limit, err := limitParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	pos, next, err := s.Store.ListPurchaseOrders(c, currentUser(c), t.ID, c.Query("cursor"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": pos, "next_cursor": next})
}

// receivePurchaseOrder marks the :id purchase order received.
func (s *Server) receivePurchaseOrder(c *gin.Context) (*models.PurchaseOrder, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return nil, models.Coded(models.ENOTFOUND, "purchase_order_not_found", "no such purchase order")
	}
	return s.Store.ReceivePurchaseOrder(c, currentUser(c), id, c.ClientIP())
}

func (s *Server) apiReceivePurchaseOrder(c *gin.Context) {
	po, err := s.receivePurchaseOrder(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, po)
}

// trancheSheet builds the tranche's allocation workbook into memory (a
// tranche is thousands of lines at most), so a failure is still an error
// answer rather than half a file.
func (s *Server) trancheSheet(c *gin.Context, t *models.Tranche) ([]byte, string, error) {
	u := currentUser(c)
	wb, err := s.programWorkbook(c, t.Program, "선매입 배정표 "+t.Name, u.Name+" <"+u.Email+">", s.Store.Now())
	if err != nil {
		return nil, "", err
	}
	defer wb.Close()
	wb.AddInfo("차수 상태", t.Status)
	if err := exports.WriteAllocations(wb, exports.Tranche{Name: t.Name, Budget: t.Budget}, s.Store.AllocationRows(c, t.ID)); err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	_, sum, err := wb.Save(&buf)
	if err != nil {
		return nil, "", err
	}
	if err := s.Store.Audit(c, nil, models.AuditEntry{ActorID: &u.ID, Actor: u.Email, Action: "export.tranche_sheet",
		Subject: "tranche:" + t.ID.String(), IP: c.ClientIP(), Details: map[string]any{"sha256": sum, "bytes": buf.Len(), "program": t.Program}}); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), sum, nil
}

func (s *Server) apiTrancheSheet(c *gin.Context) {
	t, err := s.trancheParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	data, sum, err := s.trancheSheet(c, t)
	if err != nil {
		s.fail(c, err)
		return
	}
	sendWorkbook(c, fmt.Sprintf("allocation-%s-T%d.xlsx", t.Program, t.Seq), sum, data)
}

// requestFeeWaiverRun checks the caller and the period, then asks the
// program's workflow for a run (starting the workflow if needed).
func (s *Server) requestFeeWaiverRun(c *gin.Context, code string) (*models.Program, error) {
	u := currentUser(c)
	if !u.HasRole(models.RoleProgramAdmin) {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "only program admins run fee waivers")
	}
	p, err := s.Store.StaffProgram(c, u, code)
	if err != nil {
		return nil, err
	}
	setup, err := s.Store.FeeWaiverSetup(c, p.Code)
	if err != nil {
		return nil, err
	}
	if err := setup.CheckFeeWaiverRunnable(s.Store.Now()); err != nil {
		return nil, err
	}
	if s.Temporal == nil {
		return nil, instErrNoTemporal
	}
	ctx, cancel := context.WithTimeout(c, instWorkflowTimeout)
	defer cancel()
	return p, feewaiver.RequestRun(ctx, s.Temporal, p.Code, u.ID, feewaiver.DefaultSettlementLag)
}

// feeWaiverRunAccepted is the 202 answer to a fee-waiver run.
type feeWaiverRunAccepted struct {
	Program string `json:"program"`
	Status  string `json:"status"`
}

func (s *Server) apiRunFeeWaivers(c *gin.Context) {
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.instReplayable(c, body, func() (int, any, error) {
		p, err := s.requestFeeWaiverRun(c, c.Param("code"))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, feeWaiverRunAccepted{Program: p.Code, Status: "accepted"}, nil
	})
}

// feeWaiverList is the answer to GET /api/v1/programs/{code}/fee-waivers.
type feeWaiverList struct {
	Items      []models.FeeWaiverLine `json:"items"`
	NextCursor string                 `json:"next_cursor"`
	Period     *feeWaiverPeriod       `json:"period"`
	LastRun    *models.FeeWaiverRun   `json:"last_run"`
}

type feeWaiverPeriod struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	EndsAt time.Time `json:"ends_at"`
	RateBP int64     `json:"rate_bp"`
}

func (s *Server) feeWaiverList(c *gin.Context, code, cursor string, limit int) (*feeWaiverList, error) {
	lines, next, err := s.Store.ListFeeWaivers(c, currentUser(c), code, cursor, limit)
	if err != nil {
		return nil, err
	}
	setup, err := s.Store.FeeWaiverSetup(c, code)
	if err != nil {
		return nil, err
	}
	run, err := s.Store.LatestFeeWaiverRun(c, code)
	if err != nil {
		return nil, err
	}
	out := &feeWaiverList{Items: lines, NextCursor: next, LastRun: run}
	if setup.HasPeriod {
		out.Period = &feeWaiverPeriod{From: setup.From.String(), To: setup.To.String(), EndsAt: setup.Ends(), RateBP: setup.RateBP}
	}
	return out, nil
}

func (s *Server) apiListFeeWaivers(c *gin.Context) {
	limit, err := limitParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.feeWaiverList(c, c.Param("code"), c.Query("cursor"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
