package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
)

const xlsxContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// auditTimeout bounds writing an export's audit entry after the download
// ended, whether or not the client is still there.
const auditTimeout = 10 * time.Second

// apiExportDownload streams GET /api/v1/programs/{code}/exports/{kind}.xlsx.
// The sheets are built first (rows from database cursors into the streaming
// writer, which spills to disk), so a database error is still a proper error
// answer; then the archive streams to the client while Save hashes exactly
// the bytes written, and the hash goes to the audit log.
func (s *Server) apiExportDownload(c *gin.Context) {
	kind, ok := strings.CutSuffix(c.Param("file"), ".xlsx")
	if !ok || !models.IsExportKind(kind) {
		s.fail(c, models.ErrNotFound)
		return
	}
	r, err := s.exportRequestFor(c, c.Param("code"), kind)
	if err != nil {
		s.fail(c, err)
		return
	}
	wb, rows, err := s.buildExport(c, r, false, exportDirectMaxRows, nil)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer wb.Close()
	at := s.Store.Now()
	setDownloadHeaders(c, r.filename(at))
	c.Status(http.StatusOK)
	n, sum, saveErr := wb.Save(c.Writer)
	if saveErr != nil {
		// The client went away or the archive failed half-way: what left is still
		// audited, by its size; there is no hash of a file nobody has whole.
		s.Log.Warn("export download interrupted", "request_id", c.GetString(ctxRequestID), "kind", kind, "bytes", n, "err", saveErr.Error())
	}
	details := map[string]any{"kind": kind, "rows": rows, "bytes": n, "accounts": r.accounts(), "via": "direct", "complete": saveErr == nil}
	if saveErr == nil {
		details["sha256"] = sum
	}
	s.auditExport(c, r.user, "export.download", r.program.Code, details)
}

func setDownloadHeaders(c *gin.Context, filename string) {
	c.Header("Content-Type", xlsxContentType)
	c.Header("Content-Disposition", `attachment; filename="`+filename+`"`)
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
}

// auditExport appends an audit entry even when the request's context has
// ended (a client that disconnected still received data).
func (s *Server) auditExport(c *gin.Context, u *models.User, action, program string, details map[string]any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), auditTimeout)
	defer cancel()
	if err := s.Store.Audit(ctx, nil, models.AuditEntry{ActorID: &u.ID, Actor: u.Email, Action: action,
		Subject: "program:" + program, IP: c.ClientIP(), Details: details}); err != nil {
		s.Log.Error("export audit failed", "request_id", c.GetString(ctxRequestID), "action", action, "err", err.Error())
	}
}

type exportJobRequest struct {
	Program string `json:"program"`
	Kind    string `json:"kind"`
}

// apiCreateExportJob answers POST /api/v1/exports {program, kind} with 202 {id}.
// An Idempotency-Key makes a retried request return the same job.
func (s *Server) apiCreateExportJob(c *gin.Context, jobs *exportRunner) {
	u := currentUser(c)
	if !u.IsStaff() {
		s.fail(c, models.Coded(models.EFORBIDDEN, "forbidden", "only the agency's staff may export"))
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req exportJobRequest
	if err := decodeJSON(body, &req); err != nil {
		s.fail(c, err)
		return
	}
	key := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if len(key) > 200 {
		s.fail(c, models.FieldError("validation_failed", "Idempotency-Key", "too_long", "the Idempotency-Key is over 200 characters"))
		return
	}
	if key == "" {
		key = uuid.NewString() // no replay protection asked for: every request is new
	}
	r, err := s.exportRequestFor(c, req.Program, req.Kind)
	if err != nil {
		s.fail(c, err)
		return
	}
	status, resp, _, err := s.Store.Idempotent(c, "exports:"+u.ID.String(), key, models.RequestHash(c.Request.Method, c.Request.URL.Path, body),
		func(tx pgx.Tx) (int, []byte, error) {
			job, err := s.Store.CreateExportJob(c, tx, r.program.Code, r.kind, u.ID, r.full)
			if err != nil {
				return 0, nil, err
			}
			b, err := json.Marshal(job)
			return http.StatusAccepted, b, err
		})
	if err != nil {
		s.fail(c, err)
		return
	}
	jobs.kick()
	var job models.ExportJob
	if json.Unmarshal(resp, &job) == nil {
		c.Header("Location", "/api/v1/exports/"+job.ID.String())
	}
	c.Data(status, "application/json; charset=utf-8", resp)
}

// exportJobFor loads the :id job of the signed-in user (404 for anyone else)
// and nudges the runner while it is unfinished: the poll is also what resumes
// a job whose replica crashed.
func (s *Server) exportJobFor(c *gin.Context, jobs *exportRunner) (*models.ExportJob, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return nil, models.ErrNotFound
	}
	job, err := s.Store.ExportJobFor(c, currentUser(c), id)
	if err != nil {
		return nil, err
	}
	if job.Status == models.ExportQueued || job.Status == models.ExportRunning {
		jobs.kick()
	}
	return job, nil
}

// apiExportJob answers GET /api/v1/exports/{id} with the job's progress.
func (s *Server) apiExportJob(c *gin.Context, jobs *exportRunner) {
	job, err := s.exportJobFor(c, jobs)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, job)
}

// apiExportJobFile answers GET /api/v1/exports/{id}/file with the stored
// workbook, streamed piece by piece; the hash of the bytes sent is audited.
func (s *Server) apiExportJobFile(c *gin.Context, jobs *exportRunner) {
	job, err := s.exportJobFor(c, jobs)
	if err != nil {
		s.fail(c, err)
		return
	}
	if job.Status != models.ExportDone {
		e := models.Coded(models.ECONFLICT, "export_not_ready", "the export is not finished yet")
		e.Data = map[string]any{"status": job.Status}
		s.fail(c, e)
		return
	}
	u := currentUser(c)
	// The requester must still be staff of the program's agency.
	p, err := s.staffProgram(c, u, job.Program)
	if err != nil {
		s.fail(c, err)
		return
	}
	r := &exportRequest{program: p, kind: job.Kind, user: u, full: job.FullAccounts}
	setDownloadHeaders(c, r.filename(job.CreatedAt))
	c.Header("Content-Length", strconv.FormatInt(job.Bytes, 10))
	c.Status(http.StatusOK)
	h := sha256.New()
	n, copyErr := s.Store.WriteExportFile(c, job, io.MultiWriter(c.Writer, h))
	details := map[string]any{"kind": job.Kind, "job": job.ID.String(), "bytes": n, "accounts": r.accounts(), "via": "job",
		"complete": copyErr == nil}
	if copyErr == nil {
		details["sha256"] = hex.EncodeToString(h.Sum(nil))
		if details["sha256"] != job.SHA256 {
			s.Log.Error("export file does not match its recorded hash", "job", job.ID.String())
		}
	} else {
		s.Log.Warn("export file download interrupted", "job", job.ID.String(), "bytes", n, "err", copyErr.Error())
	}
	s.auditExport(c, u, "export.download", job.Program, details)
}
