package models

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ChangeUserRoles replaces a user's roles and agency and ends every session
// of theirs in the same transaction: whatever a session was allowed to do was
// decided by the old roles, so the user signs in again (session rotation at
// role change). A database trigger does the same for any other writer.
// actor may be nil (the command line); the change is audit-logged either way.
func (s *Store) ChangeUserRoles(ctx context.Context, actor *User, userID uuid.UUID, roles []string, agency string) (*User, error) {
	if err := validateRoles(roles, agency); err != nil {
		return nil, err
	}
	var agencyArg *string
	if agency != "" {
		agencyArg = &agency
	}
	var u *User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET roles = $2, agency_code = $3 WHERE id = $1`, userID, roles, agencyArg)
		if isForeignKeyViolation(err) {
			return FieldError("validation_failed", "agency", "unknown_agency", "unknown agency")
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, userID)); err != nil {
			return err
		}
		e := AuditEntry{Actor: "system", Action: "roles_changed", Subject: "user:" + userID.String(),
			Details: map[string]any{"roles": roles, "agency": agency}}
		if actor != nil {
			e.ActorID, e.Actor = &actor.ID, actor.Email
		}
		return s.Audit(ctx, tx, e)
	})
	s.sessions.forgetUsers(userID)
	if err != nil {
		return nil, err
	}
	return u, nil
}

func validateRoles(roles []string, agency string) error {
	fields := map[string]string{}
	if len(roles) == 0 {
		fields["role"] = "required"
	}
	for _, r := range roles {
		if !validRole(r) {
			fields["role"] = "unknown_role"
		}
	}
	merchant := slices.Equal(roles, []string{RoleMerchant})
	if merchant && agency != "" {
		fields["agency"] = "merchants_have_no_agency"
	}
	if !merchant && agency == "" {
		fields["agency"] = "required_for_staff"
	}
	if len(fields) > 0 {
		return &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return nil
}

// EndUserSessions signs a user out everywhere; it returns how many sessions ended.
func (s *Store) EndUserSessions(ctx context.Context, userID uuid.UUID) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	s.sessions.forgetUsers(userID)
	return tag.RowsAffected(), err
}

// DeleteDeadSessions removes sessions past their absolute expiry or idle for
// longer than idle (they can no longer be used; this only reclaims space).
func (s *Store) DeleteDeadSessions(ctx context.Context, idle time.Duration) (int64, error) {
	now := s.Now()
	tag, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now, now.Add(-idle))
	return tag.RowsAffected(), err
}
