package models

import (
	"cmp"
	"context"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
)

// Export kinds (API.md, "Exports"): the {kind} of /programs/{code}/exports/{kind}.xlsx.
const (
	ExportClaims      = "claims"
	ExportAllocations = "allocations"
	ExportFeeWaivers  = "fee-waivers"
	ExportPayouts     = "payouts"
	ExportSummary     = "summary"
)

// ExportKinds in display order.
var ExportKinds = []string{ExportClaims, ExportAllocations, ExportFeeWaivers, ExportPayouts, ExportSummary}

// IsExportKind reports whether kind names an export.
func IsExportKind(kind string) bool { return contains(ExportKinds, kind) }

// exportFetchSize is how many rows one FETCH brings. Each FETCH is its own
// statement, so the pool's statement_timeout bounds a batch, not a whole
// export that a slow client reads for minutes.
const exportFetchSize = 1000

var exportCursorSeq atomic.Int64

// ExportSnapshot runs fn in a read-only REPEATABLE READ transaction, so the
// row count, the rows and the dashTotals of one workbook all come from the same
// instant. With dedicated set it uses a connection of its own, outside the
// pool: a long background export then never holds one of the connections
// requests need, and the job's progress updates go through the pool without
// waiting on a connection the export itself holds.
func (s *Store) ExportSnapshot(ctx context.Context, dedicated bool, fn func(tx pgx.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	if !dedicated {
		return pgx.BeginTxFunc(ctx, s.Pool, opts, fn)
	}
	conn, err := pgx.ConnectConfig(ctx, s.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgx.BeginTxFunc(ctx, conn, opts, fn)
}

// exportCursor declares a server-side cursor for query in tx and yields its
// rows batch by batch: memory holds one batch, whatever the export's size.
func exportCursor[T any](ctx context.Context, tx pgx.Tx, query string, args []any, scan func(pgx.Rows) (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		name := "export_cur_" + strconv.FormatInt(exportCursorSeq.Add(1), 10)
		if _, err := tx.Exec(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+query, args...); err != nil {
			yield(zero, err)
			return
		}
		fetch := "FETCH " + strconv.Itoa(exportFetchSize) + " FROM " + name
		for {
			rows, err := tx.Query(ctx, fetch)
			if err != nil {
				yield(zero, err)
				return
			}
			n := 0
			for rows.Next() {
				n++
				v, err := scan(rows)
				if err != nil {
					rows.Close()
					yield(zero, err)
					return
				}
				if !yield(v, nil) {
					rows.Close()
					return
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				yield(zero, err)
				return
			}
			if n < exportFetchSize {
				_, err := tx.Exec(ctx, "CLOSE "+name)
				if err != nil {
					yield(zero, err)
				}
				return
			}
		}
	}
}

func exportCount(ctx context.Context, q Querier, query string, args ...any) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, query, args...).Scan(&n)
	return n, err
}

// ClaimRegisterCount is the number of lines ClaimRegisterRows yields.
func ClaimRegisterCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	return exportCount(ctx, tx, `SELECT count(*) FROM claims WHERE program_code = $1`, program)
}

// ClaimRegisterRows yields a program's claims, oldest first, for the claims
// register. Category is the code; the caller turns it into a label.
func ClaimRegisterRows(ctx context.Context, tx pgx.Tx, program string) iter.Seq2[exports.ClaimRow, error] {
	return exportCursor(ctx, tx, `SELECT receipt_no, brn, business_name, representative, category, region, status,
			claimed_loss, coalesce(estimated_loss, 0), approved_compensation, prepurchase_allocated, fee_waived,
			owed_total, paid_total, created_at
		FROM claims WHERE program_code = $1 ORDER BY created_at, id`, []any{program},
		func(r pgx.Rows) (exports.ClaimRow, error) {
			var c exports.ClaimRow
			err := r.Scan(&c.ReceiptNo, &c.BRN, &c.BusinessName, &c.Representative, &c.Category, &c.Region, &c.Status,
				&c.ClaimedLoss, &c.EstimatedLoss, &c.Approved, &c.Prepurchase, &c.FeeWaived, &c.OwedTotal, &c.PaidTotal, &c.ReceivedAt)
			return c, err
		})
}

// exportInstrumentLabels are the Korean names of the relief instruments.
var exportInstrumentLabels = map[string]string{
	InstrumentCompensation: "직접 보상", InstrumentPrepurchase: "정부 선매입", InstrumentFeeWaiver: "수수료 면제",
}

// exportInstrumentLabel returns the Korean name of an instrument code.
func exportInstrumentLabel(code string) string {
	if l, ok := exportInstrumentLabels[code]; ok {
		return l
	}
	return code
}

// ProgramSummary computes the summary workbook's tables with SQL group-bys:
// claims and claimed amount per status (lifecycle order), claims and owed
// amount per region and per category (largest first), and merchants and
// amount per instrument from the live (not reversed) entitlements. Labels are
// codes except for instruments; the caller localises statuses and categories.
func ProgramSummary(ctx context.Context, q Querier, program string) (exports.Summary, error) {
	var s exports.Summary
	var err error
	if s.ByStatus, err = summaryTallies(ctx, q, `SELECT status, count(*), coalesce(sum(claimed_loss), 0) FROM claims
		WHERE program_code = $1 GROUP BY status`, program); err != nil {
		return s, err
	}
	summarySortByLifecycle(s.ByStatus)
	if s.ByRegion, err = summaryTallies(ctx, q, `SELECT region, count(*), coalesce(sum(owed_total), 0) FROM claims
		WHERE program_code = $1 GROUP BY region ORDER BY count(*) DESC, region`, program); err != nil {
		return s, err
	}
	if s.ByCategory, err = summaryTallies(ctx, q, `SELECT category, count(*), coalesce(sum(owed_total), 0) FROM claims
		WHERE program_code = $1 GROUP BY category ORDER BY count(*) DESC, category`, program); err != nil {
		return s, err
	}
	byInstrument, err := summaryTallies(ctx, q, `SELECT instrument, count(DISTINCT claim_id), coalesce(sum(amount), 0) FROM entitlements
		WHERE program_code = $1 AND status <> 'reversed' GROUP BY instrument`, program)
	if err != nil {
		return s, err
	}
	for _, code := range Instruments {
		for _, t := range byInstrument {
			if t.Label == code {
				s.ByInstrument = append(s.ByInstrument, exports.Tally{Label: exportInstrumentLabel(code), Count: t.Count, Amount: t.Amount})
			}
		}
	}
	return s, nil
}

func summaryTallies(ctx context.Context, q Querier, query string, args ...any) ([]exports.Tally, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (exports.Tally, error) {
		var t exports.Tally
		err := r.Scan(&t.Label, &t.Count, &t.Amount)
		return t, err
	})
}

// summaryStatusRank orders statuses by the lifecycle; unknown ones go last.
func summaryStatusRank(status string) int {
	for i, s := range ClaimStatuses {
		if s == status {
			return i
		}
	}
	return len(ClaimStatuses)
}

func summarySortByLifecycle(ts []exports.Tally) {
	slices.SortStableFunc(ts, func(a, b exports.Tally) int {
		if c := cmp.Compare(summaryStatusRank(a.Label), summaryStatusRank(b.Label)); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
}

// SummaryLines is the number of table lines a summary has (its "rows").
func SummaryLines(s exports.Summary) int64 {
	return int64(len(s.ByStatus) + len(s.ByRegion) + len(s.ByCategory) + len(s.ByInstrument))
}

// ExportTime is the instant a workbook says it was generated, to the second.
func (s *Store) ExportTime() time.Time { return s.Now().Truncate(time.Second) }
