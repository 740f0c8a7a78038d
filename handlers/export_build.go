package handlers

import (
	"context"
	"iter"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
)

// exportJobThreshold is the size above which the UI builds an export as a
// background job instead of a direct download (DESIGN.md, "Web UI").
const exportJobThreshold = 10_000

// exportDirectMaxRows bounds a direct download: the request holds a web
// slot and a database connection while it streams, so bigger exports go
// through POST /api/v1/exports.
const exportDirectMaxRows = 200_000

// exportProgressEvery is how often a running job reports its row count.
const exportProgressEvery = 500 * time.Millisecond

// exportRequest is one export to build: what, of which program, for whom.
type exportRequest struct {
	program *models.Program
	kind    string
	user    *models.User
	full    bool // full account numbers (finance only)
}

// exportTitles are the workbooks' titles (Korean: the files go to agencies and banks).
var exportTitles = map[string]string{
	models.ExportClaims:      "피해접수대장",
	models.ExportAllocations: "선매입 배정 내역",
	models.ExportFeeWaivers:  "수수료 면제 내역",
	models.ExportPayouts:     "지급 내역",
	models.ExportSummary:     "사업 요약",
}

// staffProgram loads a program for a staff member of its agency. Merchants
// are refused (403); staff of another agency are told the program does not
// exist (404), exactly as for a program that does not.
func (s *Server) staffProgram(ctx context.Context, u *models.User, code string) (*models.Program, error) {
	if u == nil {
		return nil, models.Coded(models.EUNAUTHORIZED, "unauthorized", "please sign in")
	}
	if !u.IsStaff() {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "only the agency's staff may see this")
	}
	p, err := s.Store.ProgramByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if p.Agency != u.Agency {
		return nil, models.Coded(models.ENOTFOUND, "program_not_found", "no such program")
	}
	return p, nil
}

// exportRequestFor checks that the signed-in user may export kind of the program.
// Who may comes first: a merchant is refused whatever the kind.
func (s *Server) exportRequestFor(c *gin.Context, code, kind string) (*exportRequest, error) {
	u := currentUser(c)
	p, err := s.staffProgram(c, u, code)
	if err != nil {
		return nil, err
	}
	if !models.IsExportKind(kind) {
		return nil, models.FieldError("validation_failed", "kind", "unknown_export_kind", "unknown export kind")
	}
	return &exportRequest{program: p, kind: kind, user: u, full: u.HasRole(models.RoleFinance)}, nil
}

func (r *exportRequest) accounts() string {
	if r.full {
		return "full"
	}
	return "masked"
}

// filename is the download's name: ASCII, so every browser and mail client keeps it.
func (r *exportRequest) filename(at time.Time) string {
	return r.program.Code + "_" + r.kind + "_" + at.In(exports.KST).Format("20060102-1504") + ".xlsx"
}

// exportProgress is told rows done and total as a build goes; an error stops it.
type exportProgress func(done, total int64) error

// buildExport writes the export's sheets from one database snapshot and
// returns the workbook ready to Save (the caller closes it) and its row count.
// A direct download uses a pooled connection; a job (dedicated) its own.
// maxRows > 0 refuses an export with more rows before anything is written.
func (s *Server) buildExport(ctx context.Context, r *exportRequest, dedicated bool, maxRows int64, progress exportProgress) (*exports.Workbook, int64, error) {
	wb, err := exports.NewWorkbook(exports.Meta{
		Title:       exportTitles[r.kind],
		Program:     exports.Program{Code: r.program.Code, Name: r.program.Name},
		GeneratedAt: s.Store.ExportTime(),
		GeneratedBy: r.user.Name + " <" + r.user.Email + ">",
		RuleVersion: r.program.Rules.RuleVersion,
	})
	if err != nil {
		return nil, 0, err
	}
	var rows int64
	err = s.Store.ExportSnapshot(ctx, dedicated, func(tx pgx.Tx) error {
		var err error
		rows, err = s.writeExport(ctx, tx, wb, r, maxRows, progress)
		return err
	})
	if err != nil {
		_ = wb.Close()
		return nil, 0, err
	}
	return wb, rows, nil
}

func (s *Server) writeExport(ctx context.Context, tx pgx.Tx, wb *exports.Workbook, r *exportRequest, maxRows int64, progress exportProgress) (int64, error) {
	code := r.program.Code
	total, err := s.exportRowCount(ctx, tx, r)
	if err != nil {
		return 0, err
	}
	if maxRows > 0 && total > maxRows {
		e := models.Coded(models.EINVALID, "export_too_large", "this export is too large to download directly: create an export job (POST /api/v1/exports)")
		e.Data = map[string]any{"rows": total, "max_rows": maxRows}
		return 0, e
	}
	var done int64
	if progress != nil {
		if err := progress(0, total); err != nil {
			return 0, err
		}
	}
	switch r.kind {
	case models.ExportClaims:
		label := s.categoryLabel()
		rows := mapRows(models.ClaimRegisterRows(ctx, tx, code), func(c exports.ClaimRow) exports.ClaimRow {
			c.Category = label(c.Category)
			return c
		})
		err = exports.WriteClaims(wb, countRows(rows, &done, total, progress))
	case models.ExportPayouts:
		view := exports.MaskedAccounts
		if r.full {
			view = exports.FullAccounts
		}
		err = exports.WritePayouts(wb, view, countRows(s.payoutRows(ctx, tx, code), &done, total, progress))
	case models.ExportAllocations:
		err = s.writeAllocations(ctx, tx, wb, code, &done, total, progress)
	case models.ExportFeeWaivers:
		err = s.writeFeeWaivers(ctx, tx, wb, r.program, &done, total, progress)
	case models.ExportSummary:
		var sum exports.Summary
		if sum, err = s.exportSummary(ctx, tx, code); err == nil {
			err = exports.WriteSummary(wb, sum)
			done = models.SummaryLines(sum)
		}
	}
	if err != nil {
		return done, err
	}
	if progress != nil {
		if err := progress(done, done); err != nil {
			return done, err
		}
	}
	return done, nil
}

// exportRowCount is the number of data rows the export will have.
func (s *Server) exportRowCount(ctx context.Context, tx pgx.Tx, r *exportRequest) (int64, error) {
	switch r.kind {
	case models.ExportClaims:
		return models.ClaimRegisterCount(ctx, tx, r.program.Code)
	case models.ExportPayouts:
		return s.payoutCount(ctx, tx, r.program.Code)
	case models.ExportAllocations:
		return s.allocationCount(ctx, tx, r.program.Code)
	case models.ExportFeeWaivers:
		return s.feeWaiverCount(ctx, tx, r.program.Code)
	case models.ExportSummary:
		sum, err := models.ProgramSummary(ctx, tx, r.program.Code)
		return models.SummaryLines(sum), err
	}
	return 0, models.ErrNotFound
}

// exportSummary is the program summary with Korean category labels.
func (s *Server) exportSummary(ctx context.Context, q models.Querier, code string) (exports.Summary, error) {
	sum, err := models.ProgramSummary(ctx, q, code)
	if err != nil {
		return sum, err
	}
	label := s.categoryLabel()
	for i := range sum.ByCategory {
		sum.ByCategory[i].Label = label(sum.ByCategory[i].Label)
	}
	return sum, nil
}

// categoryLabel maps a category code to its Korean label (the workbooks are Korean).
func (s *Server) categoryLabel() func(string) string {
	ko := s.Web.Localizer("ko")
	seen := map[string]string{} // a handful of categories, looked up once each
	return func(code string) string {
		if l, ok := seen[code]; ok {
			return l
		}
		l := ko.T("category." + code)
		if l == "category."+code {
			l = code
		}
		seen[code] = l
		return l
	}
}

func mapRows[T any](rows iter.Seq2[T, error], f func(T) T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for r, err := range rows {
			if err == nil {
				r = f(r)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// countRows counts rows into *done as they pass and reports progress at most
// every exportProgressEvery; a progress error ends the rows with that error.
func countRows[T any](rows iter.Seq2[T, error], done *int64, total int64, progress exportProgress) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		last := time.Now()
		for r, err := range rows {
			if err == nil {
				*done++
				if progress != nil && time.Since(last) >= exportProgressEvery {
					last = time.Now()
					err = progress(*done, max(total, *done))
				}
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}
