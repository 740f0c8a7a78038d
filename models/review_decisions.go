package models

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Reviewer decisions, info requests and appeals as the claim workflow's
// activities record them. Each write is one transaction: the decision row (the
// database re-checks segregation of duties in a trigger), the claim's status,
// its timeline entry and the hash-chained audit entry. The Temporal update id
// is the idempotency key: a retried activity or a replayed request changes
// nothing the second time.

// Decision actions.
const (
	ActionApprove       = "approve"
	ActionSecondApprove = "second_approve"
	ActionReject        = "reject"
	ActionRequestInfo   = "request_info"
)

// RejectReasons are the reason codes of a rejection.
var RejectReasons = []string{"not_a_seller", "no_loss", "insufficient_evidence", "business_closed", "duplicate", "fraud_suspected", "other"}

// ValidRejectReason reports whether code is a known rejection reason.
func ValidRejectReason(code string) bool { return contains(RejectReasons, code) }

// ErrSegregationOfDuties is the 403 of a decision its actor may not make.
var ErrSegregationOfDuties = Coded(EFORBIDDEN, "segregation_of_duties", "you may not decide on this claim at this step (segregation of duties)")

func sodError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "RL403":
			return ErrSegregationOfDuties
		case "RL409":
			return Coded(ECONFLICT, "invalid_state", "the claim is not waiting for this decision")
		}
	}
	return err
}

// DecisionRecord is one decision as the workflow has resolved it.
type DecisionRecord struct {
	RequestID   string    `json:"request_id"`
	ClaimID     uuid.UUID `json:"claim_id"`
	Action      string    `json:"action"` // approve, second_approve, reject, request_info
	ActorID     uuid.UUID `json:"actor_id"`
	ActorRole   string    `json:"actor_role"`
	Amount      int64     `json:"amount"`
	ReasonCode  string    `json:"reason_code"`
	Reason      string    `json:"reason"`
	StatusAfter string    `json:"status_after"`
	At          time.Time `json:"at"`     // workflow time
	DueAt       time.Time `json:"due_at"` // request_info deadline
	IP          string    `json:"ip"`
}

func actorEmail(ctx context.Context, q Querier, id uuid.UUID) (string, error) {
	var email string
	err := q.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, id).Scan(&email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrSegregationOfDuties
	}
	return email, err
}

func addEvent(ctx context.Context, tx pgx.Tx, claimID uuid.UUID, key string, at time.Time, status, role string, actor *uuid.UUID, note string) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, actor_id, note)
		VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (claim_id, event_key) DO NOTHING`, claimID, key, at, status, role, actor, note)
	return err == nil && tag.RowsAffected() == 1, err
}

func setStatus(ctx context.Context, tx pgx.Tx, claimID uuid.UUID, status string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE claims SET status = $2, updated_at = $3 WHERE id = $1`, claimID, status, at)
	return err
}

// RecordDecision writes a decision once (by RequestID) and returns the status
// it leads to.
func (s *Store) RecordDecision(ctx context.Context, d DecisionRecord) (string, error) {
	status := d.StatusAfter
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var amount *int64
		if d.Action == ActionApprove || d.Action == ActionSecondApprove {
			amount = &d.Amount
		}
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO review_decisions (claim_id, request_id, action, decided_by, amount, reason_code, reason, status_after, at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (request_id) DO NOTHING RETURNING id`,
			d.ClaimID, d.RequestID, d.Action, d.ActorID, amount, d.ReasonCode, d.Reason, d.StatusAfter, d.At).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) { // applied before: answer as then
			return tx.QueryRow(ctx, `SELECT status_after FROM review_decisions WHERE request_id = $1`, d.RequestID).Scan(&status)
		}
		if err != nil {
			return sodError(err)
		}
		if d.StatusAfter == StatusApproved {
			if _, err := tx.Exec(ctx, `UPDATE claims SET approved_compensation = $2 WHERE id = $1`, d.ClaimID, d.Amount); err != nil {
				return err
			}
		}
		if err := setStatus(ctx, tx, d.ClaimID, d.StatusAfter, d.At); err != nil {
			return err
		}
		if d.StatusAfter == StatusApproved {
			if err := s.entitleOnApproval(ctx, tx, d.ClaimID); err != nil {
				return err
			}
		}
		if _, err := addEvent(ctx, tx, d.ClaimID, "decision:"+d.RequestID, d.At, d.StatusAfter, d.ActorRole, &d.ActorID, "review.note."+d.Action); err != nil {
			return err
		}
		if d.Action == ActionRequestInfo {
			if _, err := tx.Exec(ctx, `INSERT INTO review_info_requests (claim_id, request_id, requested_by, note, due_at, created_at)
				VALUES ($1,$2,$3,$4,$5,$6)`, d.ClaimID, d.RequestID, d.ActorID, d.Reason, d.DueAt, d.At); err != nil {
				if isUniqueViolation(err, "review_info_requests_open_key") {
					return Coded(ECONFLICT, "invalid_state", "an info request is already open")
				}
				return err
			}
		}
		email, err := actorEmail(ctx, tx, d.ActorID)
		if err != nil {
			return err
		}
		details := map[string]any{"action": d.Action, "status_after": d.StatusAfter, "request_id": d.RequestID}
		if amount != nil {
			details["amount"] = d.Amount
		}
		if d.ReasonCode != "" {
			details["reason_code"] = d.ReasonCode
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &d.ActorID, Actor: email, Action: "claim.decision." + d.Action,
			Subject: "claim:" + d.ClaimID.String(), IP: d.IP, Details: details})
	})
	return status, err
}

// InfoAnswer is a merchant's answer to an info request.
type InfoAnswer struct {
	RequestID string    `json:"request_id"`
	ClaimID   uuid.UUID `json:"claim_id"`
	ActorID   uuid.UUID `json:"actor_id"`
	Note      string    `json:"note"`
	At        time.Time `json:"at"`
	IP        string    `json:"ip"`
}

// RecordInfoAnswer closes the open info request with the merchant's answer and
// returns the claim to in_review, once.
func (s *Store) RecordInfoAnswer(ctx context.Context, a InfoAnswer) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var merchant uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT merchant_id FROM claims WHERE id = $1 FOR UPDATE`, a.ClaimID).Scan(&merchant); err != nil {
			return err
		}
		if merchant != a.ActorID {
			return Coded(EFORBIDDEN, "forbidden", "only the merchant who filed the claim answers its info requests")
		}
		fresh, err := addEvent(ctx, tx, a.ClaimID, "info:"+a.RequestID, a.At, StatusInReview, "merchant", &a.ActorID, "review.note.info_answered")
		if err != nil || !fresh {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE review_info_requests SET answered_at = $2, answer = $3
			WHERE claim_id = $1 AND answered_at IS NULL AND expired_at IS NULL`, a.ClaimID, a.At, a.Note)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return Coded(ECONFLICT, "no_open_info_request", "there is no open info request")
		}
		if err := setStatus(ctx, tx, a.ClaimID, StatusInReview, a.At); err != nil {
			return err
		}
		email, err := actorEmail(ctx, tx, a.ActorID)
		if err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &a.ActorID, Actor: email, Action: "claim.info.answer",
			Subject: "claim:" + a.ClaimID.String(), IP: a.IP, Details: map[string]any{"request_id": a.RequestID}})
	})
}

// RemindInfoRequest notes the reminder of an open info request on the timeline, once per key.
func (s *Store) RemindInfoRequest(ctx context.Context, claimID uuid.UUID, key string, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE review_info_requests SET reminded_at = $2
			WHERE claim_id = $1 AND answered_at IS NULL AND expired_at IS NULL AND reminded_at IS NULL`, claimID, at)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = addEvent(ctx, tx, claimID, key, at, StatusInfoRequested, "system", nil, "review.note.info_reminder")
		if err == nil {
			err = EnqueueOutbox(ctx, tx, "claim.info_reminder", claimID, map[string]string{"key": key})
		}
		return err
	})
}

// ExpireInfoRequest closes an unanswered info request whose deadline passed
// and returns the claim to in_review, once per key.
func (s *Store) ExpireInfoRequest(ctx context.Context, claimID uuid.UUID, key string, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		fresh, err := addEvent(ctx, tx, claimID, key, at, StatusInReview, "system", nil, "review.note.info_expired")
		if err != nil || !fresh {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE review_info_requests SET expired_at = $2
			WHERE claim_id = $1 AND answered_at IS NULL AND expired_at IS NULL`, claimID, at); err != nil {
			return err
		}
		return setStatus(ctx, tx, claimID, StatusInReview, at)
	})
}

// AppealRecord is a merchant's appeal of a rejection.
type AppealRecord struct {
	RequestID  string    `json:"request_id"`
	ClaimID    uuid.UUID `json:"claim_id"`
	ActorID    uuid.UUID `json:"actor_id"`
	Reason     string    `json:"reason"`
	RejectedBy uuid.UUID `json:"rejected_by"`
	At         time.Time `json:"at"`
	IP         string    `json:"ip"`
}

// RecordAppeal files the (single) appeal of a claim: appealed, then back to
// in_review, where whoever rejected it may not decide again.
func (s *Store) RecordAppeal(ctx context.Context, a AppealRecord) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var merchant uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT merchant_id FROM claims WHERE id = $1 FOR UPDATE`, a.ClaimID).Scan(&merchant); err != nil {
			return err
		}
		if merchant != a.ActorID {
			return Coded(EFORBIDDEN, "forbidden", "only the merchant who filed the claim appeals")
		}
		var rejecter *uuid.UUID
		if a.RejectedBy != uuid.Nil {
			rejecter = &a.RejectedBy
		}
		tag, err := tx.Exec(ctx, `INSERT INTO review_appeals (claim_id, request_id, filed_by, reason, rejected_by, filed_at)
			VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`, a.ClaimID, a.RequestID, a.ActorID, a.Reason, rejecter, a.At)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var req string
			if err := tx.QueryRow(ctx, `SELECT request_id FROM review_appeals WHERE claim_id = $1`, a.ClaimID).Scan(&req); err != nil {
				return err
			}
			if req == a.RequestID {
				return nil // replay
			}
			return Coded(ECONFLICT, "already_appealed", "this claim was appealed before")
		}
		if _, err := addEvent(ctx, tx, a.ClaimID, "appeal:"+a.RequestID, a.At, StatusAppealed, "merchant", &a.ActorID, "review.note.appealed"); err != nil {
			return err
		}
		if _, err := addEvent(ctx, tx, a.ClaimID, "appeal-review:"+a.RequestID, a.At.Add(time.Microsecond), StatusInReview, "system", nil, "review.note.appeal_review"); err != nil {
			return err
		}
		if err := setStatus(ctx, tx, a.ClaimID, StatusInReview, a.At); err != nil {
			return err
		}
		email, err := actorEmail(ctx, tx, a.ActorID)
		if err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &a.ActorID, Actor: email, Action: "claim.appeal",
			Subject: "claim:" + a.ClaimID.String(), IP: a.IP, Details: map[string]any{"request_id": a.RequestID}})
	})
}

// CloseRejectedClaim closes a rejected claim once its appeal window has passed.
func (s *Store) CloseRejectedClaim(ctx context.Context, claimID uuid.UUID, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		fresh, err := addEvent(ctx, tx, claimID, "appeal-window-closed", at, StatusClosed, "system", nil, "review.note.appeal_window_closed")
		if err != nil || !fresh {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE claims SET status = 'closed', updated_at = $2 WHERE id = $1 AND status = 'rejected'`, claimID, at)
		return err
	})
}

// ReplayResponse returns the stored answer of an earlier request with the same
// Idempotency-Key (found=false when there is none; 422 idempotency_mismatch
// when the key came with another body).
func (s *Store) ReplayResponse(ctx context.Context, scope, key string, reqHash []byte) (status int, body []byte, found bool, err error) {
	return s.storedResponse(ctx, scope, key, reqHash)
}

// KeepResponse stores a response for replays; the first one stored wins.
func (s *Store) KeepResponse(ctx context.Context, scope, key string, reqHash []byte, status int, body []byte) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, status, body) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (scope, key) DO NOTHING`, scope, key, reqHash, status, body)
	return err
}
