package models

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PublicMinCell is the small-cell suppression threshold of the open data: a
// count from 1 to PublicMinCell-1 is withheld (and so is the amount that
// belongs to it), because a handful of claims in a region or category could
// point at particular merchants.
const PublicMinCell = 5

// PublicStats is a program's open data: aggregates only, never a name,
// business number, phone or account.
type PublicStats struct {
	Program              PublicProgram `json:"program"`
	GeneratedAt          time.Time     `json:"generated_at"`
	SuppressionThreshold int           `json:"suppression_threshold"`
	Totals               PublicCell    `json:"totals"`
	ByStage              []PublicCell  `json:"by_stage"`
	ByInstrument         []PublicCell  `json:"by_instrument"`
	ByRegion             []PublicCell  `json:"by_region"`
	ByCategory           []PublicCell  `json:"by_category"`
}

// PublicProgram is what the open data says about the program itself.
type PublicProgram struct {
	Code     string    `json:"code"`
	Name     string    `json:"name"`
	Agency   string    `json:"agency"`
	Platform string    `json:"platform"`
	Outage   Outage    `json:"outage"`
	Window   Window    `json:"claim_window"`
	Status   string    `json:"status"`
	Updated  time.Time `json:"-"`
}

// PublicCell is one line of an open-data table. A nil number is withheld;
// Suppressed says so explicitly for readers of the CSV.
type PublicCell struct {
	Key        string `json:"key"`
	Label      string `json:"label"` // filled in by the caller, in its language
	Claims     *int64 `json:"claims"`
	PaidClaims *int64 `json:"paid_claims"`
	PaidAmount *int64 `json:"paid_amount"`
	Suppressed bool   `json:"suppressed"`
}

// Public stages group the claim statuses the way a citizen reads them.
const (
	PublicStageInProgress = "in_progress"
	PublicStageApproved   = "approved"
	PublicStagePaid       = "paid"
	PublicStageRejected   = "rejected"
)

// PublicStages in display order.
var PublicStages = []string{PublicStageInProgress, PublicStageApproved, PublicStagePaid, PublicStageRejected}

const publicStageSQL = `CASE
	WHEN status IN ('paid', 'closed') THEN 'paid'
	WHEN status = 'rejected' THEN 'rejected'
	WHEN status IN ('auto_approved', 'approved', 'entitled', 'paying') THEN 'approved'
	ELSE 'in_progress' END`

type publicRawCell struct {
	key                      string
	claims, paidClaims, paid int64
}

// ProgramPublicStats computes the open data of a program that is not a draft.
func (s *Store) ProgramPublicStats(ctx context.Context, program string) (*PublicStats, error) {
	out := &PublicStats{GeneratedAt: s.Now(), SuppressionThreshold: PublicMinCell}
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		p, err := programByCode(ctx, tx, program)
		if err != nil {
			return err
		}
		if p.Status == "draft" {
			return Coded(ENOTFOUND, "program_not_found", "no such program")
		}
		out.Program = PublicProgram{Code: p.Code, Name: p.Name, Agency: p.AgencyName, Platform: p.Outage.Platform,
			Outage: p.Outage, Window: p.ClaimWindow, Status: p.Status}
		group := func(expr string) ([]publicRawCell, error) {
			rows, err := tx.Query(ctx, `SELECT `+expr+`, count(*), count(*) FILTER (WHERE paid_total > 0), coalesce(sum(paid_total), 0)
				FROM claims WHERE program_code = $1 GROUP BY 1 ORDER BY 1`, program)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, func(r pgx.CollectableRow) (publicRawCell, error) {
				var c publicRawCell
				err := r.Scan(&c.key, &c.claims, &c.paidClaims, &c.paid)
				return c, err
			})
		}
		total, err := group(`'total'`)
		if err != nil {
			return err
		}
		if len(total) == 0 {
			total = []publicRawCell{{key: "total"}}
		}
		out.Totals = publicSuppressCells(total)[0]
		stages, err := group(publicStageSQL)
		if err != nil {
			return err
		}
		out.ByStage = publicSuppressCells(publicOrdered(stages, PublicStages))
		regions, err := group("region")
		if err != nil {
			return err
		}
		out.ByRegion = publicSuppressCells(regions)
		categories, err := group("category")
		if err != nil {
			return err
		}
		out.ByCategory = publicSuppressCells(categories)
		rows, err := tx.Query(ctx, `SELECT instrument, count(DISTINCT claim_id),
				count(DISTINCT claim_id) FILTER (WHERE status = 'paid'), coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0)
			FROM entitlements WHERE program_code = $1 AND status <> 'reversed' GROUP BY 1`, program)
		if err != nil {
			return err
		}
		instruments, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (publicRawCell, error) {
			var c publicRawCell
			err := r.Scan(&c.key, &c.claims, &c.paidClaims, &c.paid)
			return c, err
		})
		if err != nil {
			return err
		}
		out.ByInstrument = publicSuppressCells(publicOrdered(instruments, Instruments))
		return nil
	})
	return out, err
}

// publicOrdered returns one cell per key in keys' order, zero where absent.
func publicOrdered(cells []publicRawCell, keys []string) []publicRawCell {
	out := make([]publicRawCell, len(keys))
	for i, k := range keys {
		out[i].key = k
		for _, c := range cells {
			if c.key == k {
				out[i] = c
			}
		}
	}
	return out
}

// publicSuppressCells withholds small counts. Primary suppression hides every count
// from 1 to PublicMinCell-1. Because a table's total is public, a single
// hidden cell could be recovered by subtraction, so when exactly one cell of
// a table is hidden the next smallest non-zero cell is hidden as well
// (secondary suppression). Claims and paid claims are judged separately; a
// paid amount is shown only when its paid-claims count is.
func publicSuppressCells(cells []publicRawCell) []PublicCell {
	claims := make([]int64, len(cells))
	paid := make([]int64, len(cells))
	for i, c := range cells {
		claims[i], paid[i] = c.claims, c.paidClaims
	}
	hideClaims, hidePaid := publicSuppress(claims), publicSuppress(paid)
	out := make([]PublicCell, len(cells))
	for i, c := range cells {
		cell := PublicCell{Key: c.key}
		if hideClaims[i] {
			cell.Suppressed = true
		} else {
			cell.Claims = publicPtr(c.claims)
		}
		if hidePaid[i] || hideClaims[i] {
			cell.Suppressed = true
		} else {
			cell.PaidClaims, cell.PaidAmount = publicPtr(c.paidClaims), publicPtr(c.paid)
		}
		out[i] = cell
	}
	return out
}

func publicSuppress(counts []int64) []bool {
	hide := make([]bool, len(counts))
	hidden := 0
	for i, n := range counts {
		if n > 0 && n < PublicMinCell {
			hide[i] = true
			hidden++
		}
	}
	if hidden == 1 && len(counts) > 1 {
		next := -1
		for i, n := range counts {
			if !hide[i] && n > 0 && (next < 0 || n < counts[next]) {
				next = i
			}
		}
		if next >= 0 {
			hide[next] = true
		}
	}
	return hide
}

func publicPtr[T any](v T) *T { return &v }
