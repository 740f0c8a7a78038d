package handlers

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/upload"
)

// ledgerPolicy is the upload gate for sales ledgers: the shared spreadsheet
// policy (magic bytes, name agreement, zip-bomb and macro checks), sized for a
// million-row ledger.
var ledgerPolicy = func() upload.Policy {
	p := upload.Spreadsheet
	p.MaxBytes = models.MaxLedgerUpload
	p.MaxUnpacked = 2 << 30
	return p
}()

// ledgerImportTimeout bounds one background import.
const ledgerImportTimeout = 30 * time.Minute

// receiveLedger checks the uploaded file, keeps a private copy for the
// background import, records the import and starts it. The import runs in
// this process (a goroutine): the file is here, a million rows take seconds,
// and a crash leaves the import's heartbeat stale, so it is marked failed and
// the admin uploads again — nothing half-written, the swap is one transaction.
func (s *Server) receiveLedger(c *gin.Context) (*models.LedgerImport, error) {
	u := currentUser(c)
	if !u.HasRole(models.RoleProgramAdmin) || !u.IsStaff() {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "only program administrators import ledgers")
	}
	p, err := s.Store.ProgramByCode(c, c.Param("code"))
	if err != nil {
		return nil, err
	}
	if p.Agency != u.Agency {
		return nil, models.Coded(models.ENOTFOUND, "program_not_found", "no such program")
	}
	f, err := ledgerPolicy.FromRequest(c.Writer, c.Request, "file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tmp, err := os.CreateTemp("", "relief-ledger-*."+string(f.Kind))
	if err != nil {
		return nil, err
	}
	path := tmp.Name()
	_, err = io.Copy(tmp, f)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	sum, _ := hex.DecodeString(f.SHA256)
	li, err := s.Store.NewLedgerImport(c, u, p.Code, f.Name, string(f.Kind), f.Size, sum)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	go s.runLedgerImport(li.ID, path, string(f.Kind))
	return li, nil
}

func (s *Server) runLedgerImport(id uuid.UUID, path, format string) {
	defer os.Remove(path)
	ctx, cancel := context.WithTimeout(context.Background(), ledgerImportTimeout)
	defer cancel()
	start := time.Now()
	res, err := s.Store.RunLedgerImport(ctx, id, path, format)
	if err != nil {
		s.Log.Error("ledger import failed", "import_id", id.String(), "err", err.Error())
		return
	}
	s.Log.Info("ledger import finished", "import_id", id.String(), "rows", res.Rows, "errors", res.ErrorCount,
		"seconds", time.Since(start).Seconds())
}

func (s *Server) apiLedgerImport(c *gin.Context) {
	li, err := s.receiveLedger(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"import_id": li.ID, "status": li.Status})
}

func (s *Server) ledgerLoadImport(c *gin.Context) (*models.LedgerImport, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return nil, models.ErrNotFound
	}
	return s.Store.LedgerImportFor(c, currentUser(c), id)
}

func (s *Server) apiLedgerImportStatus(c *gin.Context) {
	li, err := s.ledgerLoadImport(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, li)
}

type ledgerPage struct {
	Program *models.Program
	Stats   *models.LedgerStats
	Imports []*models.LedgerImport
	Columns []string
	Error   string
}

func (s *Server) ledgerAdminProgram(c *gin.Context, code string) (*models.Program, error) {
	u := currentUser(c)
	if !u.IsStaff() || !u.HasRole(models.RoleProgramAdmin) {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "only program administrators import ledgers")
	}
	p, err := s.Store.ProgramByCode(c, code)
	if err == nil && p.Agency != u.Agency {
		err = models.Coded(models.ENOTFOUND, "program_not_found", "no such program")
	}
	return p, err
}

func (s *Server) pageLedgerHome(c *gin.Context) {
	u := currentUser(c)
	if !u.IsStaff() || !u.HasRole(models.RoleProgramAdmin) {
		s.fail(c, models.Coded(models.EFORBIDDEN, "forbidden", "only program administrators import ledgers"))
		return
	}
	programs, err := s.Store.AgencyPrograms(c, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	if len(programs) == 0 {
		s.fail(c, models.Coded(models.ENOTFOUND, "program_not_found", "no such program"))
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/programs/"+programs[0].Code+"/ledger")
}

func (s *Server) renderLedgerPage(c *gin.Context, status int, p *models.Program, errMsg string) {
	stats, err := s.Store.SalesLedgerStats(c, p.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	imports, err := s.Store.RecentLedgerImports(c, p.Code, 10)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "ledger_import", "title.ledger", ledgerPage{Program: p, Stats: stats, Imports: imports,
		Columns: models.LedgerColumns, Error: errMsg})
}

func (s *Server) pageLedger(c *gin.Context) {
	p, err := s.ledgerAdminProgram(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderLedgerPage(c, http.StatusOK, p, "")
}

func (s *Server) pageLedgerUpload(c *gin.Context) {
	p, err := s.ledgerAdminProgram(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	li, err := s.receiveLedger(c)
	if err != nil {
		e := asDomainError(err)
		if e.Kind == models.EINTERNAL || e.Kind == models.EUNAVAILABLE || e.Kind == models.EFORBIDDEN {
			s.fail(c, err)
			return
		}
		s.renderLedgerPage(c, statusOf[e.Kind], p, "error."+e.Code)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/imports/"+li.ID.String())
}

type ledgerImportPage struct {
	Import *models.LedgerImport
}

func (s *Server) pageImport(c *gin.Context) {
	li, err := s.ledgerLoadImport(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "ledger_import_status", "title.ledger_import", ledgerImportPage{Import: li})
}

// pageImportProgress is the htmx partial the progress bar polls.
func (s *Server) pageImportProgress(c *gin.Context) {
	li, err := s.ledgerLoadImport(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.reviewPartial(c, "ledger_import_status", "progress", "title.ledger_import", ledgerImportPage{Import: li})
}

// renderPartial writes one block of a page (htmx swaps).
func (s *Server) reviewPartial(c *gin.Context, page, block, title string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := s.Web.RenderPartial(c.Writer, page, block, s.pageFor(c, title, data)); err != nil {
		s.Log.Error("render failed", "page", page, "block", block, "err", err.Error())
	}
}
