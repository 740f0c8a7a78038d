package models

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/rules"
)

// Fee waiver (수수료 면제). After a program's promotion period ends, the
// commission each merchant paid on sales in the period — at the category's
// rate, never more than was actually charged (rules.WaiveFees) — is refunded:
// one entitlement per claim, source key "feewaiver:<program>:<claim>",
// truncated to 10 won. FeeWaiverWorkflow runs it in pages; running it again
// adds lines for claims filed since and never duplicates one.

// FeeWaiverSetup is a program's fee-waiver rules.
type FeeWaiverSetup struct {
	Program        string           `json:"program"`
	HasPeriod      bool             `json:"has_period"`
	From           rules.Date       `json:"from,omitzero"` // zero without a period
	To             rules.Date       `json:"to,omitzero"`
	RateBP         int64            `json:"rate_bp"`
	CategoryRateBP map[string]int64 `json:"category_rate_bp"`
}

// Params are the setup as rules.WaiveFees takes it.
func (f FeeWaiverSetup) Params() rules.FeeWaiverParams {
	return rules.FeeWaiverParams{From: f.From, To: f.To, RateBP: f.RateBP, CategoryRateBP: f.CategoryRateBP}
}

// Ends is when the promotion is over: midnight KST after its last day.
func (f FeeWaiverSetup) Ends() time.Time { return f.To.AddDays(1).Start() }

// RateFor is the rate of a category.
func (f FeeWaiverSetup) RateFor(category string) int64 {
	if bp, ok := f.CategoryRateBP[category]; ok {
		return bp
	}
	return f.RateBP
}

func feeWaiverSetup(ctx context.Context, q Querier, program string) (FeeWaiverSetup, error) {
	p, err := programByCode(ctx, q, program)
	if err != nil {
		return FeeWaiverSetup{}, err
	}
	f := FeeWaiverSetup{Program: p.Code, RateBP: int64(p.Rules.FeeRateBP), CategoryRateBP: map[string]int64{}}
	if p.Rules.FeeWaiverStartsOn != nil && p.Rules.FeeWaiverEndsOn != nil {
		f.HasPeriod = true
		f.From, f.To = dateOf(*p.Rules.FeeWaiverStartsOn), dateOf(*p.Rules.FeeWaiverEndsOn)
	}
	rows, err := q.Query(ctx, `SELECT category, rate_bp FROM fee_rates WHERE program_code = $1`, program)
	if err != nil {
		return f, err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var bp int64
		if err := rows.Scan(&c, &bp); err != nil {
			return f, err
		}
		f.CategoryRateBP[c] = bp
	}
	return f, rows.Err()
}

// FeeWaiverSetup loads a program's fee-waiver rules.
func (s *Store) FeeWaiverSetup(ctx context.Context, program string) (FeeWaiverSetup, error) {
	return feeWaiverSetup(ctx, s.Pool, program)
}

// CheckFeeWaiverRunnable says whether a program's fee waiver may run at now:
// 422 no_fee_waiver_period without a period, 409 promotion_not_over before it ends.
func (f FeeWaiverSetup) CheckFeeWaiverRunnable(now time.Time) error {
	if !f.HasPeriod {
		return FieldError("no_fee_waiver_period", "fee_waiver_ends_on", "required", "the program has no fee-waiver period")
	}
	if now.Before(f.Ends()) {
		e := Coded(ECONFLICT, "promotion_not_over", "the promotion period has not ended yet")
		e.Data = map[string]any{"ends_at": f.Ends()}
		return e
	}
	return nil
}

// FeeWaiverSourceKey is the entitlement source key of a claim's fee waiver.
func FeeWaiverSourceKey(program string, claimID uuid.UUID) string {
	return "feewaiver:" + program + ":" + claimID.String()
}

// FeeWaiverRun is one run of a program's fee waiver.
type FeeWaiverRun struct {
	RunKey      string     `json:"run_key"`
	Program     string     `json:"program"`
	Trigger     string     `json:"trigger"` // timer | manual
	Status      string     `json:"status"`  // running | done
	ClaimsTotal int64      `json:"claims_total"`
	ClaimsDone  int64      `json:"claims_done"`
	Entitled    int64      `json:"entitled"` // the program's merchants with a fee-waiver entitlement
	Amount      int64      `json:"amount"`   // and its total
	Unfunded    int64      `json:"unfunded"` // lines the budget could not cover
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

const runColumns = `run_key, program_code, trigger, status, claims_total, claims_done, entitled, amount, unfunded, started_at, finished_at`

func scanRun(row pgx.Row) (*FeeWaiverRun, error) {
	r := &FeeWaiverRun{}
	err := row.Scan(&r.RunKey, &r.Program, &r.Trigger, &r.Status, &r.ClaimsTotal, &r.ClaimsDone, &r.Entitled, &r.Amount, &r.Unfunded,
		&r.StartedAt, &r.FinishedAt)
	return r, err
}

// feeWaiverClaims is the SQL condition for the claims a fee waiver covers:
// every claim of the program that is not rejected.
const feeWaiverClaims = `c.program_code = $1 AND c.status <> 'rejected'`

// StartFeeWaiverRun records the start of a run (idempotent per run key).
func (s *Store) StartFeeWaiverRun(ctx context.Context, program, runKey, trigger string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO fee_waiver_runs (run_key, program_code, trigger, claims_total, started_at)
		VALUES ($2, $1, $3, (SELECT count(*) FROM claims c WHERE `+feeWaiverClaims+`), $4)
		ON CONFLICT (run_key) DO NOTHING`, program, runKey, trigger, s.Now())
	return err
}

// FeeWaiverPage is one page of a fee-waiver run.
type FeeWaiverPage struct {
	Next     uuid.UUID `json:"next"` // cursor: the last claim looked at
	Done     bool      `json:"done"`
	Claims   int       `json:"claims"`   // claims looked at
	Lines    int       `json:"lines"`    // lines written (claims with sales in the period)
	Entitled int       `json:"entitled"` // entitlements created
	Amount   int64     `json:"amount"`
	Unfunded int       `json:"unfunded"`
}

// RunFeeWaiverPage computes, in one transaction, the fee waiver of up to limit
// claims after the cursor: their sales-ledger rows in the period through
// rules.WaiveFees, a line per claim with sales, and an entitlement for each
// positive amount. Lines already entitled are left alone, so a page retried or
// run again changes nothing; a line the budget cannot cover is kept as
// unfunded and entitled by a later run once the budget allows.
func (s *Store) RunFeeWaiverPage(ctx context.Context, program, runKey string, after uuid.UUID, limit int) (FeeWaiverPage, error) {
	var page FeeWaiverPage
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		page = FeeWaiverPage{Next: after}
		setup, err := feeWaiverSetup(ctx, tx, program)
		if err != nil {
			return err
		}
		if !setup.HasPeriod {
			return setup.CheckFeeWaiverRunnable(time.Time{})
		}
		type claimRef struct {
			id       uuid.UUID
			brn      string
			entitled bool
		}
		rows, err := tx.Query(ctx, `SELECT c.id, c.brn, coalesce(l.status = 'entitled', false)
			FROM claims c LEFT JOIN fee_waiver_lines l ON l.program_code = c.program_code AND l.claim_id = c.id
			WHERE `+feeWaiverClaims+` AND c.id > $2 ORDER BY c.id LIMIT $3`, program, after, limit)
		if err != nil {
			return err
		}
		claims, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimRef, error) {
			var c claimRef
			err := r.Scan(&c.id, &c.brn, &c.entitled)
			return c, err
		})
		if err != nil {
			return err
		}
		page.Claims, page.Done = len(claims), len(claims) < limit
		if len(claims) == 0 {
			return nil
		}
		page.Next = claims[len(claims)-1].id
		brns := make([]string, 0, len(claims))
		for _, c := range claims {
			if !c.entitled {
				brns = append(brns, c.brn)
			}
		}
		sales := map[string][]rules.SalesRow{}
		rows, err = tx.Query(ctx, `SELECT brn, day, category, gross_sales, commission FROM sales_ledger
			WHERE program_code = $1 AND brn = ANY($2) AND day BETWEEN $3 AND $4`,
			program, brns, setup.From.Start().Format(time.DateOnly), setup.To.Start().Format(time.DateOnly))
		if err != nil {
			return err
		}
		for rows.Next() {
			var brn string
			var day time.Time
			var r rules.SalesRow
			if err := rows.Scan(&brn, &day, &r.Category, &r.GrossSales, &r.Commission); err != nil {
				rows.Close()
				return err
			}
			r.Date = dateOf(day)
			sales[brn] = append(sales[brn], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := s.Now()
		for _, c := range claims {
			if c.entitled || len(sales[c.brn]) == 0 {
				continue
			}
			f, err := rules.WaiveFees(setup.Params(), sales[c.brn])
			if err != nil {
				return err
			}
			status := "zero"
			var entitlement *uuid.UUID
			if f.Amount > 0 {
				status = "entitled"
				err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
					id, created, err := s.PostEntitlement(ctx, sp, NewEntitlement{ClaimID: c.id, Program: program, Instrument: InstrumentFeeWaiver,
						Amount: f.Amount, SourceKey: FeeWaiverSourceKey(program, c.id), Memo: "fee waiver " + setup.From.String() + "~" + setup.To.String()})
					if created {
						page.Entitled++
						page.Amount += f.Amount
					}
					entitlement = &id
					return err
				})
				switch {
				case isCode(err, "insufficient_balance"):
					status, entitlement = "unfunded", nil
					page.Unfunded++
				case err != nil:
					return err
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO fee_waiver_lines (program_code, claim_id, rows_in_period, gross_sales, commission, rate_bp,
					waived, amount, remainder, status, entitlement_id, run_key, computed_at)
				VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
				ON CONFLICT (program_code, claim_id) DO UPDATE SET rows_in_period = EXCLUDED.rows_in_period, gross_sales = EXCLUDED.gross_sales,
					commission = EXCLUDED.commission, rate_bp = EXCLUDED.rate_bp, waived = EXCLUDED.waived, amount = EXCLUDED.amount,
					remainder = EXCLUDED.remainder, status = EXCLUDED.status, entitlement_id = EXCLUDED.entitlement_id,
					run_key = EXCLUDED.run_key, computed_at = EXCLUDED.computed_at
				WHERE fee_waiver_lines.status <> 'entitled'`,
				program, c.id, len(f.Rows), f.GrossSales, f.Commission, mainRate(f), f.Waived, f.Amount, f.Remainder, status, entitlement, runKey, now); err != nil {
				return err
			}
			page.Lines++
		}
		_, err = tx.Exec(ctx, `UPDATE fee_waiver_runs SET claims_done = least(claims_total,
				(SELECT count(*) FROM claims c WHERE `+feeWaiverClaims+` AND c.id <= $3)) WHERE run_key = $2`, program, runKey, page.Next)
		return err
	})
	return page, err
}

// mainRate is the rate of the category with the most sales in the period (the
// rate shown for a merchant; each row was waived at its own category's rate).
func mainRate(f rules.FeeWaiver) int64 {
	gross := map[string]int64{}
	var best string
	for _, r := range f.Rows {
		gross[r.Category] += r.GrossSales
		if best == "" || gross[r.Category] > gross[best] || gross[r.Category] == gross[best] && r.Category < best {
			best = r.Category
		}
	}
	for _, r := range f.Rows {
		if r.Category == best {
			return r.RateBP
		}
	}
	return f.Params.RateBP
}

// FinishFeeWaiverRun marks a run done with the program's totals.
func (s *Store) FinishFeeWaiverRun(ctx context.Context, runKey string) (*FeeWaiverRun, error) {
	r, err := scanRun(s.Pool.QueryRow(ctx, `UPDATE fee_waiver_runs r SET status = 'done', finished_at = coalesce(r.finished_at, $2),
			claims_done = r.claims_total,
			entitled = (SELECT count(*) FROM fee_waiver_lines l WHERE l.program_code = r.program_code AND l.status = 'entitled'),
			amount = (SELECT coalesce(sum(amount), 0) FROM fee_waiver_lines l WHERE l.program_code = r.program_code AND l.status = 'entitled'),
			unfunded = (SELECT count(*) FROM fee_waiver_lines l WHERE l.program_code = r.program_code AND l.status = 'unfunded')
		WHERE run_key = $1 RETURNING `+runColumns, runKey, s.Now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Coded(ENOTFOUND, "not_found", "no such fee-waiver run")
	}
	return r, err
}

// LatestFeeWaiverRun returns the program's most recent run, nil if none.
func (s *Store) LatestFeeWaiverRun(ctx context.Context, program string) (*FeeWaiverRun, error) {
	r, err := scanRun(s.Pool.QueryRow(ctx, `SELECT `+runColumns+` FROM fee_waiver_runs WHERE program_code = $1
		ORDER BY started_at DESC, run_key DESC LIMIT 1`, program))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// FeeWaiverLine is one merchant's fee waiver.
type FeeWaiverLine struct {
	ClaimID      uuid.UUID `json:"claim_id"`
	ReceiptNo    string    `json:"receipt_no"`
	BRN          string    `json:"brn"`
	BusinessName string    `json:"business_name"`
	Category     string    `json:"category"`
	RowsInPeriod int       `json:"rows_in_period"`
	GrossSales   int64     `json:"gross_sales"`
	Commission   int64     `json:"commission"`
	RateBP       int64     `json:"rate_bp"`
	Waived       int64     `json:"waived"`
	Amount       int64     `json:"amount"`    // refunded: waived truncated to 10 won
	Remainder    int64     `json:"remainder"` // 끝수
	Status       string    `json:"status"`    // entitled | zero | unfunded
	ComputedAt   time.Time `json:"computed_at"`
}

const feeLineColumns = `l.claim_id, c.receipt_no, c.brn, c.business_name, c.category, l.rows_in_period, l.gross_sales, l.commission,
	l.rate_bp, l.waived, l.amount, l.remainder, l.status, l.computed_at`

func scanFeeLine(r pgx.Row) (FeeWaiverLine, error) {
	var l FeeWaiverLine
	err := r.Scan(&l.ClaimID, &l.ReceiptNo, &l.BRN, &l.BusinessName, &l.Category, &l.RowsInPeriod, &l.GrossSales, &l.Commission,
		&l.RateBP, &l.Waived, &l.Amount, &l.Remainder, &l.Status, &l.ComputedAt)
	return l, err
}

// ListFeeWaivers returns a page of a program's fee-waiver lines by receipt
// number (keyset pagination) for staff of its agency.
func (s *Store) ListFeeWaivers(ctx context.Context, v *User, program, cursor string, limit int) ([]FeeWaiverLine, string, error) {
	p, err := s.StaffProgram(ctx, v, program)
	if err != nil {
		return nil, "", err
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil {
			return nil, "", FieldError("validation_failed", "cursor", "invalid_cursor", "invalid cursor")
		}
		after = string(b)
	}
	limit = clampLimit(limit)
	rows, err := s.Pool.Query(ctx, `SELECT `+feeLineColumns+` FROM fee_waiver_lines l JOIN claims c ON c.id = l.claim_id
		WHERE l.program_code = $1 AND c.receipt_no > $2 ORDER BY c.receipt_no LIMIT $3`, p.Code, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FeeWaiverLine, error) { return scanFeeLine(r) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[limit-1].ReceiptNo))
	}
	if out == nil {
		out = []FeeWaiverLine{}
	}
	return out, next, nil
}
