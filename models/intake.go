package models

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// FileClaim is the whole intake of one claim: replay check, validation, window
// and staggered-day rules, then one transaction with the claim, its timeline,
// its outbox row and the stored response. It never waits on Temporal.
// It answers (202, body) or an *Error; a replay answers the original response.
func (s *Store) FileClaim(ctx context.Context, merchant *User, idemKey string, reqHash []byte, in *ClaimInput) (int, []byte, error) {
	if !merchant.HasRole(RoleMerchant) {
		return 0, nil, Coded(EFORBIDDEN, "forbidden", "only merchants file claims")
	}
	status, body, _, err := s.Idempotent(ctx, "claims:"+merchant.ID.String(), idemKey, reqHash, func(tx pgx.Tx) (int, []byte, error) {
		brn, account, err := in.Normalize()
		if err != nil {
			return 0, nil, err
		}
		p, err := programByCode(ctx, tx, in.Program)
		if err != nil {
			return 0, nil, err
		}
		now := s.Now()
		if !p.WindowOpen(now) {
			return 0, nil, &Error{Kind: EINVALID, Code: "window_closed", Message: "the claim window is not open",
				Data: map[string]any{"opens_at": p.ClaimWindow.OpensAt, "closes_at": p.ClaimWindow.ClosesAt}}
		}
		if day, ok := p.ApplicationDay(brn.LastDigit(), now); !ok {
			return 0, nil, &Error{Kind: EINVALID, Code: "not_your_day", Message: "today is not this business number's application day",
				Fields: map[string]string{"brn": "not_your_day"}, Data: map[string]any{"opens_on": day.Format(time.DateOnly)}}
		}
		filed, err := s.InsertClaim(ctx, tx, merchant, p, brn, account, in)
		if err != nil {
			return 0, nil, err
		}
		body, err := json.Marshal(filed)
		return http.StatusAccepted, body, err
	})
	if e, ok := err.(*Error); ok && e.Code == "duplicate_claim" {
		// Name the existing claim (API.md); looked up after the failed transaction
		// has released its connection.
		var existing uuid.UUID
		if qerr := s.Pool.QueryRow(ctx, `SELECT id FROM claims WHERE program_code = $1 AND brn = $2`, in.Program, e.Data["brn"]).Scan(&existing); qerr != nil {
			return 0, nil, qerr
		}
		e.Data = map[string]any{"id": existing}
	}
	return status, body, err
}
