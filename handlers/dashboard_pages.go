package handlers

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
)

// chartSpec is what web/static/dashboard_charts.js draws: it travels in a
// data-chart attribute (no inline script), and the same numbers are in the
// table beside each chart.
type chartSpec struct {
	Type       string         `json:"type"` // bar | doughnut
	Labels     []string       `json:"labels"`
	Datasets   []chartDataset `json:"datasets"`
	Stacked    bool           `json:"stacked,omitempty"`
	Horizontal bool           `json:"horizontal,omitempty"`
	Unit       string         `json:"unit"` // count | won | hours
}

type chartDataset struct {
	Label string `json:"label"`
	Data  []any  `json:"data"` // numbers; nil is a gap (a withheld cell)
}

func (c chartSpec) JSON() string {
	b, err := json.Marshal(c)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func floats[T int64 | float64](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// labeled is a row of a dashboard table with its display label.
type labeled[T any] struct {
	Label string
	Row   T
}

type dashboardPage struct {
	Program     *models.Program
	D           *models.Dashboard
	Daily       chartSpec
	DailyRows   []labeled[[]int64] // per day: counts per status, then the day's total
	Statuses    []string           // status labels, the daily table's columns
	Processing  chartSpec
	ProcRows    []labeled[models.DashboardProcessing]
	Instruments chartSpec
	InstRows    []instrumentRow
	Tranches    chartSpec
	TrancheRows []trancheRow
	Backlog     chartSpec
	BackRows    []labeled[models.DashboardBacklog]
	SLADays     int64
	Regions     breakdownView
	Categories  breakdownView
}

type instrumentRow struct {
	Label  string
	Row    models.DashboardInstrument
	Unpaid int64
}

type trancheRow struct {
	Row     models.DashboardTranche
	UsedPct string // ordered / budget
}

// breakdownView is one region or category section; it carries the
// localizer because the template block renders it on its own.
type breakdownView struct {
	L     *web.Localizer
	Title string // message id
	ID    string // table id
	Chart chartSpec
	Rows  []labeled[models.DashboardBreakdown]
}

// apiDashboard answers GET /api/v1/programs/{code}/dashboard with the numbers
// the dashboard page draws (staff of the program's agency).
func (s *Server) apiDashboard(c *gin.Context) {
	p, err := s.staffProgram(c, currentUser(c), c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	d, err := s.Store.ProgramDashboard(c, p.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, d)
}

// pageDashboard shows GET /programs/{code}/dashboard.
func (s *Server) pageDashboard(c *gin.Context) {
	p, err := s.staffProgram(c, currentUser(c), c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	d, err := s.Store.ProgramDashboard(c, p.Code)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "dashboard_program", "dashboard.title", buildDashboardPage(s.localizer(c), p, d))
}

func buildDashboardPage(l *web.Localizer, p *models.Program, d *models.Dashboard) dashboardPage {
	pg := dashboardPage{Program: p, D: d, SLADays: d.SLAHours / 24}
	status := func(code string) string { return l.T("status." + code) }

	pg.Daily = chartSpec{Type: "bar", Labels: d.Daily.Days, Stacked: true, Unit: "count"}
	for i, st := range d.Daily.Statuses {
		pg.Statuses = append(pg.Statuses, status(st))
		pg.Daily.Datasets = append(pg.Daily.Datasets, chartDataset{Label: status(st), Data: floats(d.Daily.Counts[i])})
	}
	for j, day := range d.Daily.Days {
		row := make([]int64, 0, len(d.Daily.Statuses)+1)
		for i := range d.Daily.Statuses {
			row = append(row, d.Daily.Counts[i][j])
		}
		pg.DailyRows = append(pg.DailyRows, labeled[[]int64]{day, append(row, d.Daily.Totals[j])})
	}

	pg.Processing = chartSpec{Type: "bar", Unit: "hours"}
	p50, p90, p95 := []float64{}, []float64{}, []float64{}
	for _, m := range d.Processing {
		label := l.T("dashboard.milestone." + m.Milestone)
		pg.Processing.Labels = append(pg.Processing.Labels, label)
		p50, p90, p95 = append(p50, round1(m.P50)), append(p90, round1(m.P90)), append(p95, round1(m.P95))
		pg.ProcRows = append(pg.ProcRows, labeled[models.DashboardProcessing]{label, m})
	}
	pg.Processing.Datasets = []chartDataset{{"p50", floats(p50)}, {"p90", floats(p90)}, {"p95", floats(p95)}}

	pg.Instruments = chartSpec{Type: "bar", Unit: "won"}
	var owed, paid []int64
	for _, in := range d.Instruments {
		label := l.T("exports.instrument." + in.Instrument)
		pg.Instruments.Labels = append(pg.Instruments.Labels, label)
		owed, paid = append(owed, in.Owed), append(paid, in.Paid)
		pg.InstRows = append(pg.InstRows, instrumentRow{label, in, in.Owed - in.Paid})
	}
	// Owed against paid; the budgets (an order of magnitude larger) are in the table.
	pg.Instruments.Datasets = []chartDataset{{l.T("dashboard.owed"), floats(owed)}, {l.T("dashboard.paid"), floats(paid)}}

	pg.Tranches = chartSpec{Type: "bar", Unit: "won"}
	var tBudget, tOrdered, tReceived []int64
	for _, t := range d.Tranches {
		pg.Tranches.Labels = append(pg.Tranches.Labels, t.Name)
		tBudget, tOrdered, tReceived = append(tBudget, t.Budget), append(tOrdered, t.Ordered), append(tReceived, t.Received)
		used := "–"
		if t.Budget > 0 {
			used = strconv.FormatFloat(float64(t.Ordered)*100/float64(t.Budget), 'f', 1, 64) + "%"
		}
		pg.TrancheRows = append(pg.TrancheRows, trancheRow{t, used})
	}
	pg.Tranches.Datasets = []chartDataset{
		{l.T("dashboard.budget"), floats(tBudget)}, {l.T("dashboard.ordered"), floats(tOrdered)}, {l.T("dashboard.received"), floats(tReceived)},
	}

	pg.Backlog = chartSpec{Type: "bar", Unit: "count"}
	var waiting, over []int64
	for _, b := range d.Backlog {
		label := status(b.Status)
		pg.Backlog.Labels = append(pg.Backlog.Labels, label)
		waiting, over = append(waiting, b.Claims), append(over, b.OverSLA)
		pg.BackRows = append(pg.BackRows, labeled[models.DashboardBacklog]{label, b})
	}
	pg.Backlog.Datasets = []chartDataset{{l.T("dashboard.waiting"), floats(waiting)}, {l.T("dashboard.over_sla"), floats(over)}}

	breakdown := func(title, id string, rows []models.DashboardBreakdown, label func(string) string) breakdownView {
		v := breakdownView{L: l, Title: title, ID: id, Chart: chartSpec{Type: "bar", Horizontal: true, Unit: "count"}}
		var claims []int64
		for _, r := range rows {
			v.Chart.Labels = append(v.Chart.Labels, label(r.Key))
			claims = append(claims, r.Claims)
			v.Rows = append(v.Rows, labeled[models.DashboardBreakdown]{label(r.Key), r})
		}
		v.Chart.Datasets = []chartDataset{{l.T("dashboard.claims"), floats(claims)}}
		return v
	}
	pg.Regions = breakdown("dashboard.regions", "tbl-regions", d.Regions, func(k string) string { return k })
	pg.Categories = breakdown("dashboard.categories", "tbl-categories", d.Categories, func(k string) string {
		if t := l.T("category." + k); t != "category."+k {
			return t
		}
		return k
	})
	return pg
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
