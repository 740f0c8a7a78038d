package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
)

// exportKindView is one line of the exports page.
type exportKindView struct {
	Kind   string
	Rows   int64
	Direct bool // small enough to download at once; bigger ones go through a job
}

// exportJobView is one job on the exports page; it carries the localizer so
// the same block renders in the page and as the htmx polling partial.
type exportJobView struct {
	L   *web.Localizer
	Job *models.ExportJob
}

type exportsPage struct {
	Program   *models.Program
	Kinds     []exportKindView
	Jobs      []exportJobView
	Full      bool
	Threshold int64
}

// pageExports shows GET /programs/{code}/exports: every export with its size,
// a direct download for small ones, background jobs with live progress.
func (s *Server) pageExports(c *gin.Context) {
	u := currentUser(c)
	p, err := s.staffProgram(c, u, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	data := exportsPage{Program: p, Full: u.HasRole(models.RoleFinance), Threshold: exportJobThreshold}
	err = s.Store.ExportSnapshot(c, false, func(tx pgx.Tx) error {
		for _, kind := range models.ExportKinds {
			n, err := s.exportRowCount(c, tx, &exportRequest{program: p, kind: kind, user: u})
			if err != nil {
				return err
			}
			data.Kinds = append(data.Kinds, exportKindView{Kind: kind, Rows: n, Direct: n <= exportJobThreshold})
		}
		return nil
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	jobs, err := s.Store.ExportJobsFor(c, u, p.Code, 20)
	if err != nil {
		s.fail(c, err)
		return
	}
	l := s.localizer(c)
	for _, j := range jobs {
		data.Jobs = append(data.Jobs, exportJobView{L: l, Job: j})
	}
	s.render(c, http.StatusOK, "export_list", "exports.title", data)
}

// pageCreateExportJob handles the exports page's form: it queues a job and
// answers with the job's progress block (htmx) or the page again (no script).
func (s *Server) pageCreateExportJob(c *gin.Context, jobs *exportRunner) {
	r, err := s.exportRequestFor(c, c.Param("code"), c.PostForm("kind"))
	if err != nil {
		s.fail(c, err)
		return
	}
	var job *models.ExportJob
	err = s.Store.InTx(c, func(tx pgx.Tx) error {
		job, err = s.Store.CreateExportJob(c, tx, r.program.Code, r.kind, r.user.ID, r.full)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	jobs.kick()
	if c.GetHeader("HX-Request") == "" {
		c.Redirect(http.StatusSeeOther, "/programs/"+r.program.Code+"/exports")
		return
	}
	s.renderExportJob(c, job)
}

// pageExportJobProgress is the htmx poll of one job's progress block.
func (s *Server) pageExportJobProgress(c *gin.Context, jobs *exportRunner) {
	job, err := s.exportJobFor(c, jobs)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderExportJob(c, job)
}

func (s *Server) renderExportJob(c *gin.Context, job *models.ExportJob) {
	p := s.pageFor(c, "exports.title", exportJobView{L: s.localizer(c), Job: job})
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := s.Web.RenderPartial(c.Writer, "export_list", "export_job_partial", p); err != nil {
		s.Log.Error("render failed", "page", "export_list", "err", err.Error())
	}
}
