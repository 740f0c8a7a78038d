package handlers

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
)

// publicCacheSeconds lets proxies and browsers serve the open data for a
// minute: a public page under a surge must not cost a query per visitor.
const publicCacheSeconds = "60"

// publicSection is one table of the open data.
type publicSection struct {
	ID    string // csv section name and table id
	Title string // message id
	Cells []models.PublicCell
	Chart chartSpec
}

type publicPage struct {
	Stats    *models.PublicStats
	Sections []publicSection
}

// publicProgram serves /public/programs/{code}, .json and .csv: a program's
// aggregates for anyone, without signing in. Only counts and sums leave the
// database, small cells are withheld (models.PublicMinCell), and nothing
// about a single merchant is ever included.
func (s *Server) publicProgram(c *gin.Context) {
	code, format := c.Param("code"), "html"
	for _, ext := range []string{"json", "csv"} {
		if base, ok := strings.CutSuffix(code, "."+ext); ok {
			code, format = base, ext
		}
	}
	stats, err := s.Store.ProgramPublicStats(c, code)
	if err != nil {
		s.fail(c, err)
		return
	}
	l := s.localizer(c)
	if format != "html" {
		l = s.Web.Localizer("ko") // open data files are Korean, whatever the browser says
	}
	sections := publicSections(l, stats)
	c.Header("Cache-Control", "public, max-age="+publicCacheSeconds)
	switch format {
	case "json":
		c.Header("Access-Control-Allow-Origin", "*")
		c.JSON(http.StatusOK, stats)
	case "csv":
		c.Header("Access-Control-Allow-Origin", "*")
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="`+stats.Program.Code+`.csv"`)
		c.Status(http.StatusOK)
		writePublicCSV(c.Writer, stats, sections)
	default:
		p := s.pageFor(c, "public.title", publicPage{Stats: stats, Sections: sections})
		c.Header("Content-Type", "text/html; charset=utf-8")
		c.Status(http.StatusOK)
		if err := s.Web.Render(c.Writer, "public_program", p); err != nil {
			s.Log.Error("render failed", "page", "public_program", "err", err.Error())
		}
	}
}

// publicSections labels the cells (in place, so the JSON carries the labels
// too) and builds a chart per table; withheld cells are gaps in the chart.
func publicSections(l *web.Localizer, st *models.PublicStats) []publicSection {
	label := func(prefix string) func(string) string {
		return func(k string) string {
			if prefix == "" {
				return k
			}
			if t := l.T(prefix + k); t != prefix+k {
				return t
			}
			return k
		}
	}
	st.Totals.Label = l.T("public.total")
	sections := []publicSection{
		{ID: "stage", Title: "public.by_stage", Cells: st.ByStage},
		{ID: "instrument", Title: "public.by_instrument", Cells: st.ByInstrument},
		{ID: "region", Title: "public.by_region", Cells: st.ByRegion},
		{ID: "category", Title: "public.by_category", Cells: st.ByCategory},
	}
	prefixes := map[string]string{"stage": "public.stage.", "instrument": "exports.instrument.", "region": "", "category": "category."}
	for i := range sections {
		sec := &sections[i]
		name := label(prefixes[sec.ID])
		sec.Chart = chartSpec{Type: "bar", Unit: "count", Horizontal: sec.ID == "region" || sec.ID == "category"}
		var claims []any
		for j := range sec.Cells {
			cell := &sec.Cells[j]
			cell.Label = name(cell.Key)
			sec.Chart.Labels = append(sec.Chart.Labels, cell.Label)
			if cell.Claims != nil {
				claims = append(claims, float64(*cell.Claims))
			} else {
				claims = append(claims, nil)
			}
		}
		sec.Chart.Datasets = []chartDataset{{l.T("dashboard.claims"), claims}}
	}
	return sections
}

// writePublicCSV writes one line per table cell; withheld numbers are empty
// with suppressed=1. Text is neutralised against formula injection, as in
// the workbooks, because the CSV is meant to be opened in a spreadsheet.
func writePublicCSV(w http.ResponseWriter, st *models.PublicStats, sections []publicSection) {
	_, _ = w.Write([]byte("\uFEFF")) // Excel reads UTF-8 Korean only with a BOM
	cw := csv.NewWriter(w)
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	line := func(section string, c models.PublicCell) []string {
		suppressed := "0"
		if c.Suppressed {
			suppressed = "1"
		}
		return []string{exports.Neutralize(st.Program.Code), section, exports.Neutralize(c.Key), exports.Neutralize(c.Label),
			num(c.Claims), num(c.PaidClaims), num(c.PaidAmount), suppressed}
	}
	_ = cw.Write([]string{"program", "section", "key", "label", "claims", "paid_claims", "paid_amount", "suppressed"})
	_ = cw.Write(line("total", st.Totals))
	for _, sec := range sections {
		for _, c := range sec.Cells {
			_ = cw.Write(line(sec.ID, c))
		}
	}
	cw.Flush()
}
