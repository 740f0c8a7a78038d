package handlers

import (
	"context"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
)

// Row sources of the instruments' and payouts' exports.

func (s *Server) payoutCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	return models.PayoutLineCount(ctx, tx, program)
}

func (s *Server) payoutRows(ctx context.Context, tx pgx.Tx, program string) iter.Seq2[exports.PayoutRow, error] {
	return s.Store.PayoutLineRows(ctx, tx, program)
}

func (s *Server) allocationCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	return models.AllocationLineCount(ctx, tx, program)
}

// writeAllocations adds one sheet per approved tranche. A program without an
// approved tranche gets a single empty sheet, so the file still says so.
func (s *Server) writeAllocations(ctx context.Context, tx pgx.Tx, wb *exports.Workbook, program string, done *int64, total int64, progress exportProgress) error {
	tranches, err := models.AllocationTranches(ctx, tx, program)
	if err != nil {
		return err
	}
	if len(tranches) == 0 {
		return exports.WriteAllocations(wb, exports.Tranche{Name: "없음"}, func(func(exports.AllocationLine, error) bool) {})
	}
	for _, t := range tranches {
		// The instruments area's iterator, read in this export's snapshot.
		lines := countRows(models.AllocationRows(ctx, tx, t.ID), done, total, progress)
		if err := exports.WriteAllocations(wb, exports.Tranche{Name: t.Name, Budget: t.Budget}, lines); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) feeWaiverCount(ctx context.Context, tx pgx.Tx, program string) (int64, error) {
	n, _, err := models.FeeWaiverCount(ctx, tx, program)
	return n, err
}

func (s *Server) writeFeeWaivers(ctx context.Context, tx pgx.Tx, wb *exports.Workbook, p *models.Program, done *int64, total int64, progress exportProgress) error {
	_, facts, err := models.FeeWaiverCount(ctx, tx, p.Code)
	if err != nil {
		return err
	}
	var period exports.Period
	if r := p.Rules; r.FeeWaiverStartsOn != nil && r.FeeWaiverEndsOn != nil {
		period = exports.Period{From: dateKST(*r.FeeWaiverStartsOn), To: dateKST(*r.FeeWaiverEndsOn)}
	}
	wb.AddInfo("끝수 합계 (10원 미만, 예산 잔류)", facts.Remainder)
	wb.AddInfo("예산 부족으로 미확정된 업체 수", facts.Unfunded)
	label := s.categoryLabel()
	rows := mapRows(models.FeeWaiverRows(ctx, tx, p.Code), func(r exports.FeeWaiverRow) exports.FeeWaiverRow {
		r.Category = label(r.Category)
		return r
	})
	return exports.WriteFeeWaivers(wb, period, countRows(rows, done, total, progress))
}

// dateKST reads a DATE column (scanned as midnight UTC) as that calendar day in KST.
func dateKST(d time.Time) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, exports.KST)
}
