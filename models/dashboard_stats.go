package models

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// DashboardReviewSLA is how long a claim may wait in a review step (received,
// verifying, in review, second approval, appeal) before it counts as an SLA
// breach on the dashboard. Waiting for the merchant (info_requested) is
// measured against the program's info_request_days instead.
const DashboardReviewSLA = 7 * 24 * time.Hour

// dashMaxDays bounds the daily chart: the most recent days with claims.
const dashMaxDays = 120

// dashBacklogStatuses are the statuses in which a claim waits for someone.
var dashBacklogStatuses = []string{StatusReceived, StatusVerifying, StatusInReview, StatusInfoRequested,
	StatusPendingSecondApproval, StatusAppealed}

// Dashboard is a program's operational picture for its agency's staff.
// Amounts are won; durations are hours.
type Dashboard struct {
	Program     string                `json:"program"`
	GeneratedAt time.Time             `json:"generated_at"`
	Totals      DashboardBreakdown    `json:"totals"`
	Daily       DashboardDaily        `json:"daily"`
	Processing  []DashboardProcessing `json:"processing"`
	Instruments []DashboardInstrument `json:"instruments"`
	Tranches    []DashboardTranche    `json:"tranches"`
	Backlog     []DashboardBacklog    `json:"backlog"`
	SLAHours    int64                 `json:"review_sla_hours"`
	Regions     []DashboardBreakdown  `json:"regions"`
	Categories  []DashboardBreakdown  `json:"categories"`
}

// DashboardDaily counts claims filed per day (KST) by their current status:
// Counts[i][j] is the number of claims filed on Days[j] now in Statuses[i].
type DashboardDaily struct {
	Days     []string  `json:"days"`
	Statuses []string  `json:"statuses"`
	Counts   [][]int64 `json:"counts"`
	Totals   []int64   `json:"totals"` // per day
}

// DashboardProcessing is how long claims took from filing to a milestone.
type DashboardProcessing struct {
	Milestone string  `json:"milestone"` // auto_approved | decided | paid
	Claims    int64   `json:"claims"`
	P50       float64 `json:"p50_hours"`
	P90       float64 `json:"p90_hours"`
	P95       float64 `json:"p95_hours"`
	Max       float64 `json:"max_hours"`
}

// DashboardInstrument is what one instrument owes and has paid, and its budget.
type DashboardInstrument struct {
	Instrument string `json:"instrument"`
	Claims     int64  `json:"claims"`
	Owed       int64  `json:"owed"` // live entitlements, paid or not
	Paid       int64  `json:"paid"`
	Budget     int64  `json:"budget"`    // funded into the instrument's budget
	Remaining  int64  `json:"remaining"` // budget not yet entitled
}

// DashboardBacklog is the waiting work in one status.
type DashboardBacklog struct {
	Status     string  `json:"status"`
	Claims     int64   `json:"claims"`
	OverSLA    int64   `json:"over_sla"`
	OldestDays float64 `json:"oldest_days"`
}

// DashboardBreakdown is claims and money for one region, category or the whole program.
type DashboardBreakdown struct {
	Key     string `json:"key"`
	Claims  int64  `json:"claims"`
	Claimed int64  `json:"claimed"`
	Owed    int64  `json:"owed"`
	Paid    int64  `json:"paid"`
}

// ProgramDashboard computes the dashboard in one read-only snapshot.
func (s *Store) ProgramDashboard(ctx context.Context, program string) (*Dashboard, error) {
	d := &Dashboard{Program: program, GeneratedAt: s.Now(), SLAHours: int64(DashboardReviewSLA / time.Hour)}
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		p, err := programByCode(ctx, tx, program)
		if err != nil {
			return err
		}
		steps := []func() error{
			func() (err error) { d.Totals, err = dashTotals(ctx, tx, program); return },
			func() (err error) { d.Daily, err = dashDaily(ctx, tx, program); return },
			func() (err error) { d.Processing, err = dashProcessing(ctx, tx, program); return },
			func() (err error) { d.Instruments, err = dashInstrumentMoney(ctx, tx, program); return },
			func() (err error) { d.Tranches, err = dashTranches(ctx, tx, program); return },
			func() (err error) { d.Backlog, err = dashBacklog(ctx, tx, p, d.GeneratedAt); return },
			func() (err error) { d.Regions, err = dashBreakdown(ctx, tx, program, "region"); return },
			func() (err error) { d.Categories, err = dashBreakdown(ctx, tx, program, "category"); return },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if d.Tranches == nil {
		d.Tranches = []DashboardTranche{}
	}
	if d.Regions == nil {
		d.Regions = []DashboardBreakdown{}
	}
	if d.Categories == nil {
		d.Categories = []DashboardBreakdown{}
	}
	return d, err
}

func dashTotals(ctx context.Context, q Querier, program string) (DashboardBreakdown, error) {
	b := DashboardBreakdown{Key: "total"}
	err := q.QueryRow(ctx, `SELECT count(*), coalesce(sum(claimed_loss), 0), coalesce(sum(owed_total), 0), coalesce(sum(paid_total), 0)
		FROM claims WHERE program_code = $1`, program).Scan(&b.Claims, &b.Claimed, &b.Owed, &b.Paid)
	return b, err
}

// dashBreakdown groups claims by column, which is one of two fixed names (never user input).
func dashBreakdown(ctx context.Context, q Querier, program, column string) ([]DashboardBreakdown, error) {
	if column != "region" && column != "category" {
		panic("breakdown: unsupported column " + column)
	}
	rows, err := q.Query(ctx, `SELECT `+column+`, count(*), coalesce(sum(claimed_loss), 0), coalesce(sum(owed_total), 0), coalesce(sum(paid_total), 0)
		FROM claims WHERE program_code = $1 GROUP BY 1 ORDER BY count(*) DESC, 1`, program)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DashboardBreakdown, error) {
		var b DashboardBreakdown
		err := r.Scan(&b.Key, &b.Claims, &b.Claimed, &b.Owed, &b.Paid)
		return b, err
	})
}

func dashDaily(ctx context.Context, q Querier, program string) (DashboardDaily, error) {
	var d DashboardDaily
	rows, err := q.Query(ctx, `WITH days AS (
			SELECT (created_at AT TIME ZONE 'Asia/Seoul')::date AS day, status FROM claims WHERE program_code = $1
		), recent AS (
			SELECT DISTINCT day FROM days ORDER BY day DESC LIMIT $2
		)
		SELECT to_char(d.day, 'YYYY-MM-DD'), d.status, count(*) FROM days d JOIN recent r ON r.day = d.day
		GROUP BY d.day, d.status ORDER BY d.day`, program, dashMaxDays)
	if err != nil {
		return d, err
	}
	type cell struct {
		day, status string
		n           int64
	}
	cells, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cell, error) {
		var c cell
		err := r.Scan(&c.day, &c.status, &c.n)
		return c, err
	})
	if err != nil || len(cells) == 0 {
		return DashboardDaily{Days: []string{}, Statuses: []string{}, Counts: [][]int64{}, Totals: []int64{}}, err
	}
	// Every calendar day from the first to the last, so gaps show as zero.
	first, _ := time.Parse(time.DateOnly, cells[0].day)
	last, _ := time.Parse(time.DateOnly, cells[len(cells)-1].day)
	dayIndex := map[string]int{}
	for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
		dayIndex[t.Format(time.DateOnly)] = len(d.Days)
		d.Days = append(d.Days, t.Format(time.DateOnly))
	}
	present := map[string]bool{}
	for _, c := range cells {
		present[c.status] = true
	}
	statusIndex := map[string]int{}
	for _, st := range append(append([]string{}, ClaimStatuses...), dashUnknownStatuses(present)...) {
		if present[st] {
			statusIndex[st] = len(d.Statuses)
			d.Statuses = append(d.Statuses, st)
			d.Counts = append(d.Counts, make([]int64, len(d.Days)))
		}
	}
	d.Totals = make([]int64, len(d.Days))
	for _, c := range cells {
		d.Counts[statusIndex[c.status]][dayIndex[c.day]] += c.n
		d.Totals[dayIndex[c.day]] += c.n
	}
	return d, nil
}

// dashUnknownStatuses are statuses other areas may add that this list does not know yet.
func dashUnknownStatuses(present map[string]bool) []string {
	var out []string
	for st := range present {
		if !contains(ClaimStatuses, st) {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}

// dashProcessing measures filing → first automatic approval, filing → first
// reviewer decision (approve or reject) and filing → paid, from the timeline.
func dashProcessing(ctx context.Context, q Querier, program string) ([]DashboardProcessing, error) {
	rows, err := q.Query(ctx, `WITH milestones AS (
			SELECT c.id, m.milestone, min(e.at) - c.created_at AS took
			FROM claims c
			JOIN claim_events e ON e.claim_id = c.id
			JOIN (VALUES ('auto_approved', 'auto_approved'), ('decided', 'approved'), ('decided', 'rejected'), ('paid', 'paid'))
				AS m(milestone, status) ON m.status = e.status
			WHERE c.program_code = $1
			GROUP BY c.id, c.created_at, m.milestone
		)
		SELECT milestone, count(*),
			extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY took)) / 3600,
			extract(epoch FROM percentile_cont(0.9) WITHIN GROUP (ORDER BY took)) / 3600,
			extract(epoch FROM percentile_cont(0.95) WITHIN GROUP (ORDER BY took)) / 3600,
			extract(epoch FROM max(took)) / 3600
		FROM milestones GROUP BY milestone`, program)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DashboardProcessing, error) {
		var p DashboardProcessing
		err := r.Scan(&p.Milestone, &p.Claims, &p.P50, &p.P90, &p.P95, &p.Max)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	out := []DashboardProcessing{}
	for _, m := range []string{"auto_approved", "decided", "paid"} {
		p := DashboardProcessing{Milestone: m}
		for _, g := range got {
			if g.Milestone == m {
				p = g
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// dashInstrumentMoney: owed and paid from the live entitlements, budget from the
// ledger (what funding put into the instrument's budget account, and what is left).
func dashInstrumentMoney(ctx context.Context, q Querier, program string) ([]DashboardInstrument, error) {
	out := make([]DashboardInstrument, len(Instruments))
	index := map[string]int{}
	for i, in := range Instruments {
		out[i].Instrument = in
		index[in] = i
	}
	rows, err := q.Query(ctx, `SELECT instrument, count(DISTINCT claim_id), coalesce(sum(amount), 0),
			coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0)
		FROM entitlements WHERE program_code = $1 AND status <> 'reversed' GROUP BY instrument`, program)
	if err != nil {
		return nil, err
	}
	var in string
	var claims, owed, paid int64
	if _, err := pgx.ForEachRow(rows, []any{&in, &claims, &owed, &paid}, func() error {
		if i, ok := index[in]; ok {
			out[i].Claims, out[i].Owed, out[i].Paid = claims, owed, paid
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT a.instrument, a.balance,
			coalesce((SELECT sum(l.amount) FROM ledger_lines l JOIN ledger_transactions t ON t.id = l.tx_id
				WHERE l.account_id = a.id AND t.kind = 'funding'), 0)
		FROM ledger_accounts a WHERE a.program_code = $1 AND a.kind = 'budget'`, program)
	if err != nil {
		return nil, err
	}
	var balance, funded int64
	if _, err := pgx.ForEachRow(rows, []any{&in, &balance, &funded}, func() error {
		if i, ok := index[in]; ok {
			out[i].Budget, out[i].Remaining = funded, balance
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// dashBacklog: claims waiting in each dashBacklog status, how many have waited past
// their SLA since they entered it, and the oldest wait.
func dashBacklog(ctx context.Context, q Querier, p *Program, now time.Time) ([]DashboardBacklog, error) {
	infoSLA := time.Duration(p.Rules.InfoRequestDays) * 24 * time.Hour
	rows, err := q.Query(ctx, `WITH waiting AS (
			SELECT c.status, $2::timestamptz - coalesce(
				(SELECT max(e.at) FROM claim_events e WHERE e.claim_id = c.id AND e.status = c.status), c.created_at) AS waited
			FROM claims c WHERE c.program_code = $1 AND c.status = ANY($3)
		)
		SELECT status, count(*),
			count(*) FILTER (WHERE waited > CASE WHEN status = 'info_requested' THEN $5::interval ELSE $4::interval END),
			coalesce(extract(epoch FROM max(waited)) / 86400, 0)
		FROM waiting GROUP BY status`, p.Code, now, dashBacklogStatuses, DashboardReviewSLA, infoSLA)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DashboardBacklog, error) {
		var b DashboardBacklog
		err := r.Scan(&b.Status, &b.Claims, &b.OverSLA, &b.OldestDays)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	out := []DashboardBacklog{}
	for _, st := range dashBacklogStatuses {
		line := DashboardBacklog{Status: st}
		for _, g := range got {
			if g.Status == st {
				line = g
			}
		}
		out = append(out, line)
	}
	return out, nil
}

// DashboardTranche is one pre-purchase tranche's budget and how much of it is used.
type DashboardTranche struct {
	Name      string `json:"name"`
	Status    string `json:"status"`
	Budget    int64  `json:"budget"`
	Allocated int64  `json:"allocated"` // the (draft or approved) allocation
	Ordered   int64  `json:"ordered"`   // purchase orders made
	Received  int64  `json:"received"`  // goods received: entitled, owed to merchants
}

// dashTranches reads the instruments area's tranches and purchase orders.
func dashTranches(ctx context.Context, q Querier, program string) ([]DashboardTranche, error) {
	rows, err := q.Query(ctx, `SELECT t.name, t.status, t.budget, t.total_allocated,
			coalesce(sum(po.amount), 0), coalesce(sum(po.entitled), 0)
		FROM tranches t LEFT JOIN purchase_orders po ON po.tranche_id = t.id
		WHERE t.program_code = $1 GROUP BY t.id ORDER BY t.seq`, program)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DashboardTranche, error) {
		var t DashboardTranche
		err := r.Scan(&t.Name, &t.Status, &t.Budget, &t.Allocated, &t.Ordered, &t.Received)
		return t, err
	})
}
