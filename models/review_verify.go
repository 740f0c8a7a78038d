package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/rules"
)

// Automated verification of a claim (the ClaimWorkflow's verify activity):
// estimated loss from the sales ledger, risk flags with reasons, and the fast
// track. Flags:
//
//	business_closed / business_suspended  the NTS adapter says so (休폐업 조회)
//	shared_account      the payout account is used by a claim of another BRN
//	claim_above_estimate the claimed loss is above estimate × review_claim_ratio_bp
//	not_in_ledger       the platform's ledger has no sales for the BRN
//
// accept_offer + compensation within fast_track_limit + no flags → auto_approved
// with approved_compensation = the computed compensation; otherwise in_review.

// Risk flag codes.
const (
	FlagBusinessClosed     = "business_closed"
	FlagBusinessSuspended  = "business_suspended"
	FlagSharedAccount      = "shared_account"
	FlagClaimAboveEstimate = "claim_above_estimate"
	FlagNotInLedger        = "not_in_ledger"
)

// RiskFlagCodes in display order.
var RiskFlagCodes = []string{FlagBusinessClosed, FlagBusinessSuspended, FlagSharedAccount, FlagClaimAboveEstimate, FlagNotInLedger}

// Business statuses of the NTS adapter.
const (
	BusinessActive    = "active"
	BusinessSuspended = "suspended" // 휴업
	BusinessClosed    = "closed"    // 폐업
)

// BusinessStatusChecker asks the tax office whether a business operates
// (NTS 사업자등록 상태조회). Production uses the public API; dev and tests the sandbox.
type BusinessStatusChecker interface {
	BusinessStatus(ctx context.Context, brn string) (string, error)
}

// NTSSandbox is the deterministic sandbox: a BRN's seed index n (the inverse of
// rules.ValidBRNFromSeed: digits AAA BB CCCC and a check digit give n = ((AAA−101)·89 + BB−1)·10,000 + CCCC)
// decides: n ≡ 13 (mod 97) is closed, n ≡ 29 (mod 97) is suspended, anything
// else (and any BRN outside the seed space) is active. About 2% of the demo's
// sellers are closed or suspended.
type NTSSandbox struct{}

// BusinessStatus implements BusinessStatusChecker.
func (NTSSandbox) BusinessStatus(_ context.Context, brn string) (string, error) {
	n, ok := BRNSeedIndex(brn)
	switch {
	case !ok:
		return BusinessActive, nil
	case n%97 == 13:
		return BusinessClosed, nil
	case n%97 == 29:
		return BusinessSuspended, nil
	}
	return BusinessActive, nil
}

// BRNSeedIndex inverts rules.ValidBRNFromSeed for a 10-digit BRN.
func BRNSeedIndex(brn string) (int, bool) {
	if len(brn) != 10 {
		return 0, false
	}
	a, e1 := strconv.Atoi(brn[:3])
	b, e2 := strconv.Atoi(brn[3:5])
	c, e3 := strconv.Atoi(brn[5:9])
	if e1 != nil || e2 != nil || e3 != nil || a < 101 || a > 999 || b < 1 || b > 89 {
		return 0, false
	}
	return ((a-101)*89+b-1)*10_000 + c, true
}

// ReviewRules are the program parameters the claim workflow decides with.
type ReviewRules struct {
	FourEyesThreshold int64 `json:"four_eyes_threshold"`
	CompensationCap   int64 `json:"compensation_cap"`
	FastTrackLimit    int64 `json:"fast_track_limit"`
	InfoRequestDays   int   `json:"info_request_days"`
	AppealDays        int   `json:"appeal_days"`
}

// ReviewContext is what the claim workflow keeps about its claim: no personal
// data (ids and amounts only).
type ReviewContext struct {
	MerchantID    uuid.UUID   `json:"merchant_id"`
	Status        string      `json:"status"` // after verification: auto_approved or in_review
	Note          string      `json:"note"`   // the timeline note (a catalog message id)
	Rules         ReviewRules `json:"rules"`
	HasEstimate   bool        `json:"has_estimate"`
	EstimatedLoss int64       `json:"estimated_loss"`
	Compensation  int64       `json:"compensation"` // computed from the estimate
	Flags         []string    `json:"flags"`
}

type claimFacts struct {
	program     *Program
	merchantID  uuid.UUID
	status      string
	brn         string
	claimed     int64
	acceptOffer bool
	blindIndex  []byte
	ratioBP     int64
}

func loadClaimFacts(ctx context.Context, q Querier, claimID uuid.UUID) (*claimFacts, error) {
	f := &claimFacts{}
	var program string
	err := q.QueryRow(ctx, `SELECT c.program_code, c.merchant_id, c.status, c.brn, c.claimed_loss, c.accept_offer, c.account_blind_index, p.review_claim_ratio_bp
		FROM claims c JOIN programs p ON p.code = c.program_code WHERE c.id = $1`, claimID).
		Scan(&program, &f.merchantID, &f.status, &f.brn, &f.claimed, &f.acceptOffer, &f.blindIndex, &f.ratioBP)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	f.program, err = programByCode(ctx, q, program)
	return f, err
}

func (f *claimFacts) context() *ReviewContext {
	r := f.program.Rules
	return &ReviewContext{MerchantID: f.merchantID, Status: f.status, Flags: []string{}, Rules: ReviewRules{
		FourEyesThreshold: r.FourEyesThreshold, CompensationCap: r.CompensationCap, FastTrackLimit: r.FastTrackLimit,
		InfoRequestDays: r.InfoRequestDays, AppealDays: r.AppealDays}}
}

// ReviewContextOf loads a claim's review context without changing anything
// (claim workflows started before verification existed load it lazily).
func (s *Store) ReviewContextOf(ctx context.Context, claimID uuid.UUID) (*ReviewContext, error) {
	f, err := loadClaimFacts(ctx, s.Pool, claimID)
	if err != nil {
		return nil, err
	}
	rc := f.context()
	var est *int64
	var approved int64
	var flags []byte
	if err := s.Pool.QueryRow(ctx, `SELECT estimated_loss, approved_compensation, risk_flags FROM claims WHERE id = $1`, claimID).Scan(&est, &approved, &flags); err != nil {
		return nil, err
	}
	if est != nil {
		rc.HasEstimate, rc.EstimatedLoss = true, *est
		if comp, err := rules.Compensate(*est, f.program.CompensationParams()); err == nil {
			rc.Compensation = comp.Amount
		}
	}
	var rf []RiskFlag
	_ = json.Unmarshal(flags, &rf)
	for _, x := range rf {
		rc.Flags = append(rc.Flags, x.Code)
	}
	return rc, nil
}

// VerifyClaim runs the automated checks and records their result — estimated
// loss, risk flags and, on the fast track, the approved compensation — and
// returns the status the claim moves to (auto_approved or in_review) with its
// timeline note; the workflow records the status (RecordStatus, keyed by the
// status, so retries write it once). It is idempotent: a claim already past
// verification is returned as it stands.
func (s *Store) VerifyClaim(ctx context.Context, nts BusinessStatusChecker, claimID uuid.UUID) (*ReviewContext, error) {
	f, err := loadClaimFacts(ctx, s.Pool, claimID)
	if err != nil {
		return nil, err
	}
	if f.status != StatusReceived && f.status != StatusVerifying {
		return s.ReviewContextOf(ctx, claimID)
	}
	if nts == nil {
		nts = NTSSandbox{}
	}
	bizStatus, err := nts.BusinessStatus(ctx, f.brn)
	if err != nil {
		return nil, fmt.Errorf("business status: %w", err)
	}
	brn, err := rules.ParseBRN(f.brn)
	if err != nil {
		return nil, err
	}
	rc := f.context()
	var flags []RiskFlag
	offer, err := ComputeOffer(ctx, s.Pool, f.program, brn, "en")
	switch {
	case errors.Is(err, ErrNotASeller):
		flags = append(flags, RiskFlag{Code: FlagNotInLedger, Reason: "the platform's sales ledger has no sales for this business number"})
	case err != nil:
		return nil, err
	default:
		rc.HasEstimate, rc.EstimatedLoss, rc.Compensation = true, offer.EstimatedLoss, offer.Compensation
	}
	switch bizStatus {
	case BusinessClosed:
		flags = append(flags, RiskFlag{Code: FlagBusinessClosed, Reason: "the tax office lists the business as closed (폐업)"})
	case BusinessSuspended:
		flags = append(flags, RiskFlag{Code: FlagBusinessSuspended, Reason: "the tax office lists the business as suspended (휴업)"})
	}
	var others int
	if err := s.Pool.QueryRow(ctx, `SELECT count(DISTINCT brn) FROM claims WHERE account_blind_index = $1 AND brn <> $2`, f.blindIndex, f.brn).Scan(&others); err != nil {
		return nil, err
	}
	if others > 0 {
		flags = append(flags, RiskFlag{Code: FlagSharedAccount, Reason: fmt.Sprintf("the payout account is also given by %d other business number(s)", others)})
	}
	if rc.HasEstimate && f.claimed > 0 && !f.acceptOffer {
		limit := rules.ApplyBP(rc.EstimatedLoss, f.ratioBP)
		if f.claimed > limit {
			flags = append(flags, RiskFlag{Code: FlagClaimAboveEstimate, Reason: fmt.Sprintf("claimed %s is above %s × the estimate %s",
				rules.FormatWon(f.claimed), strconv.FormatFloat(float64(f.ratioBP)/10_000, 'f', -1, 64), rules.FormatWon(rc.EstimatedLoss))})
		}
	}
	for _, fl := range flags {
		rc.Flags = append(rc.Flags, fl.Code)
	}
	if flags == nil {
		flags = []RiskFlag{}
	}
	auto := f.acceptOffer && rc.HasEstimate && len(flags) == 0 && rc.Compensation > 0 && rc.Compensation <= rc.Rules.FastTrackLimit
	note := "review.note.in_review"
	rc.Status = StatusInReview
	if len(flags) > 0 {
		note = "review.note.flagged"
	}
	var approved int64
	if auto {
		rc.Status, note, approved = StatusAutoApproved, "review.note.auto_approved", rc.Compensation
	}
	flagJSON, _ := json.Marshal(flags)
	var est *int64
	if rc.HasEstimate {
		est = &rc.EstimatedLoss
	}
	rc.Note = note
	_, err = s.Pool.Exec(ctx, `UPDATE claims SET estimated_loss = $2, risk_flags = $3, approved_compensation = $4, updated_at = $5
		WHERE id = $1 AND status IN ('received','verifying')`, claimID, est, flagJSON, approved, s.Now())
	if err != nil {
		return nil, err
	}
	return rc, nil
}
