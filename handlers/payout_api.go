package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout"
)

// payoutBatchID parses :id; a malformed id is simply not found.
func payoutBatchID(c *gin.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.Nil, models.ErrNotFound
	}
	return id, nil
}

// payoutBatchParam loads the :id batch for the signed-in viewer (with its
// lines when withLines).
func (s *Server) payoutBatchParam(c *gin.Context, withLines bool) (*models.PayoutBatch, error) {
	id, err := payoutBatchID(c)
	if err != nil {
		return nil, err
	}
	return s.Store.PayoutBatchForViewer(c, currentUser(c), id, withLines)
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(c *gin.Context) (string, error) {
	key := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if len(key) > 200 {
		return "", &models.Error{Kind: models.EMALFORMED, Code: "malformed_idempotency_key", Message: "Idempotency-Key: at most 200 characters",
			Fields: map[string]string{"Idempotency-Key": "too_long"}}
	}
	return key, nil
}

// createPayoutBatch creates the batch (once per Idempotency-Key when one is
// given) and starts its workflow. The batch is durable before the workflow
// starts; should the start fail, a retry with the same key or the approval
// (update-with-start) starts it.
func (s *Server) createPayoutBatch(c *gin.Context, u *models.User, in models.PayoutBatchInput, key string, reqHash []byte) (int, []byte, error) {
	if err := models.RequireFinance(u); err != nil {
		return 0, nil, err
	}
	status, body, err := createOnce(s, c, "payout-batches:"+u.ID.String(), key, reqHash, func(tx pgx.Tx) (*models.PayoutBatchCreated, error) {
		return s.Store.CreatePayoutBatch(c, tx, u, in)
	})
	if err != nil {
		return 0, nil, err
	}
	var created models.PayoutBatchCreated
	if json.Unmarshal(body, &created) == nil && created.ID != uuid.Nil {
		s.startPayout(c, created.ID)
	}
	return status, body, nil
}

// startPayout starts the batch's workflow, logging (not failing) when
// Temporal does not answer: the batch is safe in PostgreSQL meanwhile.
func (s *Server) startPayout(c *gin.Context, id uuid.UUID) {
	if s.Temporal == nil {
		s.Log.Warn("payout batch created without a Temporal client; approval will start its workflow", "batch", id)
		return
	}
	ctx, cancel := context.WithTimeout(c, 10*time.Second)
	defer cancel()
	if err := payout.Start(ctx, s.Temporal, id, payout.Tuning{}); err != nil {
		s.Log.Warn("payout workflow not started yet; approval or a replay starts it", "batch", id, "err", err.Error())
	}
}

func (s *Server) apiCreatePayoutBatch(c *gin.Context) {
	apiCreate(s, c, func(in models.PayoutBatchInput, key string, body []byte) (int, []byte, error) {
		return s.createPayoutBatch(c, currentUser(c), in, key, models.RequestHash(c.Request.Method, c.Request.URL.Path, body))
	})
}

func (s *Server) apiListPayoutBatches(c *gin.Context) {
	limit, err := limitParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	items, next, err := s.Store.ListPayoutBatches(c, currentUser(c), c.Query("program"), limit, c.Query("cursor"))
	if err != nil {
		s.fail(c, err)
		return
	}
	listJSON(c, items, next)
}

func (s *Server) apiGetPayoutBatch(c *gin.Context) {
	b, err := s.payoutBatchParam(c, true)
	if err != nil {
		s.fail(c, err)
		return
	}
	if b.Lines == nil {
		b.Lines = []models.PayoutLine{}
	}
	c.JSON(http.StatusOK, b)
}

// approvePayoutBatch sends the approve Update. The workflow's validator
// refuses the creator and a second approval; the database refuses them again.
func (s *Server) approvePayoutBatch(c *gin.Context, u *models.User, id uuid.UUID) (*models.PayoutBatch, error) {
	if err := models.RequireFinance(u); err != nil {
		return nil, err
	}
	if _, err := s.Store.PayoutBatchForViewer(c, u, id, false); err != nil {
		return nil, err
	}
	if s.Temporal == nil {
		return nil, models.Coded(models.EUNAVAILABLE, "unavailable", "the workflow service is not configured")
	}
	ctx, cancel := context.WithTimeout(c, 30*time.Second)
	defer cancel()
	_, err := payout.Approve(ctx, s.Temporal, id, payout.ApproveRequest{ApproverID: u.ID, RequestID: c.GetString(ctxRequestID)})
	if errors.Is(err, payout.ErrWorkflowGone) {
		// The workflow has finished: the database says what happened.
		b, lerr := s.Store.PayoutBatchByID(c, id)
		switch {
		case lerr != nil:
			err = lerr
		case b.ApprovedBy != nil && *b.ApprovedBy == u.ID:
			err = nil
		case b.ApprovedBy != nil:
			err = models.ErrPayoutAlreadyApproved
		case b.Status == models.BatchCompleted:
			err = models.ErrPayoutBatchClosed
		default:
			err = models.Coded(models.EUNAVAILABLE, "unavailable", "the batch's workflow is not running; retry shortly")
		}
	}
	if err != nil {
		return nil, err
	}
	return s.Store.PayoutBatchByID(c, id)
}

func (s *Server) apiApprovePayoutBatch(c *gin.Context) {
	u := currentUser(c)
	id, err := payoutBatchID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.replayable(c, "payout-approve:"+u.ID.String(), nil, func() (int, any, error) {
		b, err := s.approvePayoutBatch(c, u, id)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, gin.H{"id": b.ID, "status": b.Status, "approved_count": b.ApprovedCount, "approved_total": b.ApprovedTotal}, nil
	})
}

// payoutBankFile serves the bank bulk-transfer workbook of an approved batch
// in the layout of the debit bank's uploader (?bank=004). Account numbers are
// decrypted, so only finance may download it; every download is audit-logged
// with the file's SHA-256, every refusal with its reason.
func (s *Server) payoutBankFile(c *gin.Context) {
	u := currentUser(c)
	id, err := payoutBatchID(c)
	if err == nil {
		err = models.RequireFinance(u)
	}
	var b *models.PayoutBatch
	if err == nil {
		b, err = s.Store.PayoutBatchForViewer(c, u, id, false)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	bankCode := strings.TrimSpace(c.Query("bank"))
	refuse := func(e error) {
		var de *models.Error
		if errors.As(e, &de) && de.Kind != models.EINTERNAL && de.Kind != models.EUNAVAILABLE {
			_ = s.Store.AuditPayoutRejection(c, u, id, "payout.bank_file_refused", models.ResultFileMeta{Bank: bankCode, IP: c.ClientIP()}, de)
		}
		s.fail(c, e)
	}
	if err := models.CheckBulkBank(bankCode); err != nil {
		refuse(err)
		return
	}
	if b.ApprovedBy == nil {
		refuse(models.ErrPayoutNotApproved)
		return
	}
	m, err := exports.BankFileFor(bankCode)
	if err != nil {
		refuse(models.CheckBulkBank(bankCode))
		return
	}
	now := s.Store.Now()
	wb, err := s.programWorkbook(c, b.Program, "대량이체 "+m.BankName, u.Email, now)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer wb.Close()
	if b.Channel == models.ChannelAPI {
		wb.AddInfo("이체 방식", "API 이체 배치의 지시 기록 — 이미 은행 API로 이체되었으므로 업로드하지 마십시오")
	} else {
		wb.AddInfo("이체 방식", "대량이체 파일 업로드")
	}
	err = exports.WriteBankFile(wb, m, exports.BankBatch{ID: b.ID.String(), PayDate: now, Count: *b.ApprovedCount, Total: *b.ApprovedTotal},
		s.Store.PayoutFileLines(c, b.ID))
	var verr *exports.ValidationError
	if errors.As(err, &verr) {
		refuse(&models.Error{Kind: models.EINVALID, Code: "invalid_bank_file", Message: "some lines cannot go into the bank file",
			Data: map[string]any{"errors": verr.Errors}})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	var buf bytes.Buffer
	n, sum, err := wb.Save(&buf)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Store.AuditPayoutFile(c, u, b.ID, "payout.bank_file", map[string]any{"bank": bankCode, "template": m.Version,
		"sha256": sum, "bytes": n, "lines": *b.ApprovedCount, "total": *b.ApprovedTotal}, c.ClientIP()); err != nil {
		s.fail(c, err) // no audit entry, no file
		return
	}
	sendWorkbook(c, "payout-"+b.ID.String()[:8]+"-"+bankCode+".xlsx", sum, buf.Bytes())
}

// importPayoutResults reads the multipart result file and reconciles it.
// Any refusal (bad file, unknown keys, changed amounts, wrong total,
// unsupported bank) changes nothing and is audit-logged.
func (s *Server) importPayoutResults(c *gin.Context, u *models.User, id uuid.UUID) (*models.PayoutImport, error) {
	if err := models.RequireFinance(u); err != nil {
		return nil, err
	}
	if _, err := s.Store.PayoutBatchForViewer(c, u, id, false); err != nil {
		return nil, err
	}
	meta := models.ResultFileMeta{IP: c.ClientIP()}
	imp, err := s.readAndImport(c, u, id, &meta)
	if err != nil {
		var de *models.Error
		if errors.As(err, &de) && de.Kind != models.EINTERNAL && de.Kind != models.EUNAVAILABLE {
			if aerr := s.Store.AuditPayoutRejection(c, u, id, "payout.results_rejected", meta, de); aerr != nil {
				return nil, aerr
			}
		}
		return nil, err
	}
	if s.Temporal != nil {
		ctx, cancel := context.WithTimeout(c, 5*time.Second)
		defer cancel()
		if err := payout.NotifyResults(ctx, s.Temporal, id); err != nil {
			s.Log.Warn("payout results imported; workflow not signalled (it looks by itself)", "batch", id, "err", err.Error())
		}
	}
	return imp, nil
}

func (s *Server) readAndImport(c *gin.Context, u *models.User, id uuid.UUID, meta *models.ResultFileMeta) (*models.PayoutImport, error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, exports.MaxResultFileBytes+(1<<20))
	fh, err := c.FormFile("file")
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || (err != nil && strings.Contains(err.Error(), "too large")):
		return nil, models.Coded(models.ETOOLARGE, "too_large", "the result file is too large")
	case errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) || err != nil:
		return nil, models.FieldError("validation_failed", "file", "required", "a result file (multipart field file) is required")
	}
	meta.Filename = fh.Filename
	meta.Bank = strings.TrimSpace(c.PostForm("bank"))
	if meta.Bank != "" {
		if err := models.CheckBulkBank(meta.Bank); err != nil {
			return nil, err
		}
	}
	format, err := exports.ResultFormatOf(fh.Filename)
	if err != nil {
		return nil, models.FieldError("unsupported_format", "file", "unsupported_format", "only .xlsx and .csv result files are accepted")
	}
	data, err := readUpload(fh)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	meta.SHA256, meta.Bytes = hex.EncodeToString(sum[:]), int64(len(data))
	if format == exports.XLSX && !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return nil, models.FieldError("unreadable_file", "file", "not_xlsx", "the file is not an .xlsx workbook")
	}
	var rows []exports.TransferResult
	err = exports.ParseBankResults(bytes.NewReader(data), format, func(r exports.TransferResult) error {
		rows = append(rows, r)
		return nil
	})
	var verr *exports.ValidationError
	switch {
	case errors.As(err, &verr):
		return nil, &models.Error{Kind: models.EINVALID, Code: "invalid_result_file", Message: "the result file has invalid rows",
			Fields: map[string]string{"file": "invalid_rows"}, Data: map[string]any{"errors": verr.Errors}}
	case err != nil:
		return nil, models.FieldError("unreadable_file", "file", "unreadable", "the result file cannot be read")
	}
	return s.Store.ImportPayoutResults(c, u, id, rows, *meta)
}

func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	if fh.Size > exports.MaxResultFileBytes {
		return nil, models.Coded(models.ETOOLARGE, "too_large", "the result file is too large")
	}
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, exports.MaxResultFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > exports.MaxResultFileBytes {
		return nil, models.Coded(models.ETOOLARGE, "too_large", "the result file is too large")
	}
	return data, nil
}

func (s *Server) apiPayoutResults(c *gin.Context) {
	id, err := payoutBatchID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	imp, err := s.importPayoutResults(c, currentUser(c), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, imp)
}

// payoutReconParam loads the :id batch and its reconciliation.
func (s *Server) payoutReconParam(c *gin.Context) (*models.PayoutBatch, *models.PayoutRecon, error) {
	b, err := s.payoutBatchParam(c, false)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.Store.PayoutReconciliation(c, b)
	if err != nil {
		return nil, nil, err
	}
	return b, r, nil
}

func (s *Server) apiPayoutReconciliation(c *gin.Context) {
	_, r, err := s.payoutReconParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

var reconColumns = []exports.Column{
	{Header: "은행코드", Kind: exports.Account, Width: 8}, {Header: "은행명", Kind: exports.Text, Width: 14},
	{Header: "건수", Kind: exports.Integer}, {Header: "지급대상액", Kind: exports.Amount}, {Header: "발송액", Kind: exports.Amount},
	{Header: "지급완료액", Kind: exports.Amount}, {Header: "실패액", Kind: exports.Amount}, {Header: "은행처리중", Kind: exports.Amount},
	{Header: "미발송액", Kind: exports.Amount}, {Header: "지급건수", Kind: exports.Integer}, {Header: "실패건수", Kind: exports.Integer},
}

// payoutReconciliationSheet serves the batch's reconciliation as .xlsx, by
// payee bank, to the won (no personal data; logged like every export).
func (s *Server) payoutReconciliationSheet(c *gin.Context) {
	u := currentUser(c)
	b, r, err := s.payoutReconParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	wb, err := s.programWorkbook(c, b.Program, "지급 대사표", u.Email, s.Store.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	defer wb.Close()
	sheet, err := wb.NewSheet(exports.SheetSpec{Name: "은행별 대사", Columns: reconColumns})
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, x := range r.ByBank {
		if err := sheet.WriteRow([]any{x.BankCode, x.BankName, int64(x.Lines), x.Owed, x.Sent, x.Settled, x.Failed, x.AtBank, x.Pending,
			int64(x.PaidLines), int64(x.FailedLines)}); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := sheet.Close(); err != nil {
		s.fail(c, err)
		return
	}
	wb.AddInfo("지급 배치", b.ID.String())
	wb.AddInfo("배치 상태", b.Status)
	wb.AddInfo("원장 지급액", r.LedgerPaid)
	wb.AddInfo("이체 확정액", r.SettlementsPaid)
	if r.Balanced {
		wb.AddInfo("대사 결과", "일치")
	} else {
		wb.AddInfo("대사 결과", "불일치 — 확인 필요")
	}
	var buf bytes.Buffer
	n, sum, err := wb.Save(&buf)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Store.AuditPayoutFile(c, u, b.ID, "payout.reconciliation_sheet", map[string]any{"sha256": sum, "bytes": n}, c.ClientIP()); err != nil {
		s.fail(c, err)
		return
	}
	sendWorkbook(c, "payout-"+b.ID.String()[:8]+"-reconciliation.xlsx", sum, buf.Bytes())
}
