package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/google/uuid"
)

// Sessions are random tokens; only their SHA-256 is stored, so a database dump
// cannot be replayed as cookies.

// NewSessionToken returns a fresh random token.
func NewSessionToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession stores a session for userID valid until absolute expiry.
// Any previous token presented (rotation at login) is deleted in the same call.
func (s *Store) CreateSession(ctx context.Context, userID uuid.UUID, token, previous string, absolute time.Duration) error {
	now := s.Now()
	if previous != "" {
		if _, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash(previous)); err != nil {
			return err
		}
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1,$2,$3,$3,$4)`,
		tokenHash(token), userID, now, now.Add(absolute))
	return err
}

// SessionUser resolves a token to its user, enforcing the idle and absolute
// timeouts, and refreshes last_seen at most once a minute to spare the database.
func (s *Store) SessionUser(ctx context.Context, token string, idle time.Duration) (*User, error) {
	if token == "" {
		return nil, ErrNotFound
	}
	now := s.Now()
	var userID uuid.UUID
	var lastSeen time.Time
	err := s.Pool.QueryRow(ctx, `SELECT user_id, last_seen_at FROM sessions WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3`,
		tokenHash(token), now, now.Add(-idle)).Scan(&userID, &lastSeen)
	if err != nil {
		return nil, ErrNotFound
	}
	if now.Sub(lastSeen) > time.Minute {
		if _, err := s.Pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1`, tokenHash(token), now); err != nil {
			return nil, err
		}
	}
	return s.UserByID(ctx, userID)
}

// DeleteSession ends a session server-side (logout).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash(token))
	return err
}
