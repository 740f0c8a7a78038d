package models

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Program is a relief program run by an agency for one outage.
type Program struct {
	Code        string    `json:"code"`
	Name        string    `json:"name"`
	Agency      string    `json:"agency"`
	AgencyName  string    `json:"agency_name"`
	Status      string    `json:"status"`
	Outage      Outage    `json:"outage"`
	ClaimWindow Window    `json:"claim_window"`
	Rules       Rules     `json:"rules"`
	CreatedAt   time.Time `json:"-"`
}

// Outage is the platform and the time it was down.
type Outage struct {
	Platform string    `json:"platform"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
}

// Window is the claim window.
type Window struct {
	OpensAt  time.Time `json:"opens_at"`
	ClosesAt time.Time `json:"closes_at"`
}

// Rules are the program's money and process parameters. Money in won, rates in
// basis points.
type Rules struct {
	CompensationRateBP int        `json:"compensation_rate_bp"`
	CompensationFloor  int64      `json:"compensation_floor"`
	CompensationCap    int64      `json:"compensation_cap"`
	FastTrackLimit     int64      `json:"fast_track_limit"`
	FourEyesThreshold  int64      `json:"four_eyes_threshold"`
	PrepurchaseCap     int64      `json:"prepurchase_cap"`
	FeeWaiverStartsOn  *time.Time `json:"fee_waiver_starts_on"`
	FeeWaiverEndsOn    *time.Time `json:"fee_waiver_ends_on"`
	FeeRateBP          int        `json:"fee_rate_bp"`
	StaggerMode        string     `json:"stagger_mode"`
	StaggerStartsOn    *time.Time `json:"stagger_starts_on"`
	InfoRequestDays    int        `json:"info_request_days"`
	AppealDays         int        `json:"appeal_days"`
	RuleVersion        string     `json:"rule_version"`
}

const programColumns = `p.code, p.name, p.agency_code, a.name, p.status, p.platform, p.outage_starts_at, p.outage_ends_at,
	p.window_opens_at, p.window_closes_at, p.compensation_rate_bp, p.compensation_floor, p.compensation_cap,
	p.fast_track_limit, p.four_eyes_threshold, p.prepurchase_cap, p.fee_waiver_starts_on, p.fee_waiver_ends_on,
	p.fee_rate_bp, p.stagger_mode, p.stagger_starts_on, p.info_request_days, p.appeal_days, p.rule_version, p.created_at`

func scanProgram(row pgx.Row) (*Program, error) {
	p := &Program{}
	r := &p.Rules
	err := row.Scan(&p.Code, &p.Name, &p.Agency, &p.AgencyName, &p.Status, &p.Outage.Platform, &p.Outage.StartsAt, &p.Outage.EndsAt,
		&p.ClaimWindow.OpensAt, &p.ClaimWindow.ClosesAt, &r.CompensationRateBP, &r.CompensationFloor, &r.CompensationCap,
		&r.FastTrackLimit, &r.FourEyesThreshold, &r.PrepurchaseCap, &r.FeeWaiverStartsOn, &r.FeeWaiverEndsOn,
		&r.FeeRateBP, &r.StaggerMode, &r.StaggerStartsOn, &r.InfoRequestDays, &r.AppealDays, &r.RuleVersion, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Coded(ENOTFOUND, "program_not_found", "no such program")
	}
	return p, err
}

// ListPrograms returns every program, newest outage first.
func (s *Store) ListPrograms(ctx context.Context) ([]*Program, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+programColumns+` FROM programs p JOIN agencies a ON a.code = p.agency_code
		WHERE p.status <> 'draft' ORDER BY p.outage_starts_at DESC, p.code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Program
	for rows.Next() {
		p, err := scanProgram(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ProgramByCode loads one program; 404 program_not_found when absent.
func (s *Store) ProgramByCode(ctx context.Context, code string) (*Program, error) {
	return programByCode(ctx, s.Pool, code)
}

func programByCode(ctx context.Context, q Querier, code string) (*Program, error) {
	return scanProgram(q.QueryRow(ctx, `SELECT `+programColumns+` FROM programs p JOIN agencies a ON a.code = p.agency_code WHERE p.code = $1`, code))
}

// WindowOpen reports whether claims are accepted at t.
func (p *Program) WindowOpen(t time.Time) bool {
	return p.Status == "open" && !t.Before(p.ClaimWindow.OpensAt) && t.Before(p.ClaimWindow.ClosesAt)
}

var kst = time.FixedZone("KST", 9*3600)

// ApplicationDay applies staggered application days (홀짝제 / 5부제) by the last
// digit of the BRN, counted in KST days from StaggerStartsOn. On day k of
// odd_even, odd digits go on even k (the first day) and even digits on odd k;
// five_day gives day k to digits k+1 and k+6 (mod 10), as the COVID sites did.
// After the staggered days everyone may apply. It returns whether lastDigit may
// apply at now and, if not, the first day it may.
func (p *Program) ApplicationDay(lastDigit int, now time.Time) (time.Time, bool) {
	r := p.Rules
	if r.StaggerMode == "none" || r.StaggerMode == "" || r.StaggerStartsOn == nil {
		return now, true
	}
	start := time.Date(r.StaggerStartsOn.Year(), r.StaggerStartsOn.Month(), r.StaggerStartsOn.Day(), 0, 0, 0, 0, kst)
	today := now.In(kst)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, kst)
	period := 2
	if r.StaggerMode == "five_day" {
		period = 5
	}
	allowed := func(k int) bool {
		if k < 0 || k >= period {
			return true // before or after the staggered days the window rules alone apply
		}
		if period == 2 {
			return (lastDigit%2 == 1) == (k == 0)
		}
		return lastDigit == (k+1)%10 || lastDigit == (k+6)%10
	}
	k := int(today.Sub(start).Hours() / 24)
	if allowed(k) {
		return today, true
	}
	for d := k + 1; ; d++ {
		if allowed(d) {
			return start.AddDate(0, 0, d), false
		}
	}
}

// CheckApplicationDay is ApplicationDay as the intake rule: nil when
// lastDigit may apply at now, else 422 not_your_day naming the BRN field and
// carrying opens_on, the first KST day (YYYY-MM-DD) this digit may apply.
func (p *Program) CheckApplicationDay(lastDigit int, now time.Time) error {
	day, ok := p.ApplicationDay(lastDigit, now)
	if ok {
		return nil
	}
	return &Error{Kind: EINVALID, Code: "not_your_day", Message: "today is not this business number's application day; it opens on " + day.Format(time.DateOnly),
		Fields: map[string]string{"brn": "not_your_day"}, Data: map[string]any{"opens_on": day.Format(time.DateOnly)}}
}

// StaggerDay is one day of a staggered schedule and the BRN last digits that
// may apply on it.
type StaggerDay struct {
	Date   time.Time `json:"date"` // midnight KST
	Digits []int     `json:"digits"`
}

// StaggerSchedule lists the staggered days in order (nil when the program
// does not stagger); from the day after the last one, every digit may apply.
func (p *Program) StaggerSchedule() []StaggerDay {
	r := p.Rules
	if r.StaggerMode == "none" || r.StaggerMode == "" || r.StaggerStartsOn == nil {
		return nil
	}
	start := time.Date(r.StaggerStartsOn.Year(), r.StaggerStartsOn.Month(), r.StaggerStartsOn.Day(), 0, 0, 0, 0, kst)
	period := 2
	if r.StaggerMode == "five_day" {
		period = 5
	}
	out := make([]StaggerDay, period)
	for k := range period {
		out[k].Date = start.AddDate(0, 0, k)
		for i := 1; i <= 10; i++ { // 1…9, then 0, as the notices list them (1·6 … 5·0)
			d := i % 10
			if _, ok := p.ApplicationDay(d, out[k].Date.Add(12*time.Hour)); ok {
				out[k].Digits = append(out[k].Digits, d)
			}
		}
	}
	return out
}

// StaggerOpenToAllOn is the first KST day on which every digit may apply
// again (the zero time when the program does not stagger).
func (p *Program) StaggerOpenToAllOn() time.Time {
	days := p.StaggerSchedule()
	if len(days) == 0 {
		return time.Time{}
	}
	return days[len(days)-1].Date.AddDate(0, 0, 1)
}

// SetStagger sets a program's staggered application days: mode "none",
// "odd_even" (홀짝제) or "five_day" (5부제), counted from startsOn (a KST
// date). Intake in this process sees it at once, other processes within
// ProgramCacheTTL.
func (s *Store) SetStagger(ctx context.Context, code, mode string, startsOn time.Time) error {
	var starts *string
	switch mode {
	case "none":
	case "odd_even", "five_day":
		d := startsOn.In(kst).Format(time.DateOnly)
		starts = &d
	default:
		return FieldError("validation_failed", "stagger_mode", "unknown_stagger_mode", "stagger mode must be none, odd_even or five_day")
	}
	tag, err := s.Pool.Exec(ctx, `UPDATE programs SET stagger_mode = $2, stagger_starts_on = $3::date WHERE code = $1`, code, mode, starts)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return Coded(ENOTFOUND, "program_not_found", "no such program")
	}
	s.ForgetPrograms()
	return nil
}
