package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
		old := tokenHash(previous)
		if _, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, old); err != nil {
			return err
		}
		s.sessions.forgetToken([32]byte(old))
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1,$2,$3,$3,$4)`,
		tokenHash(token), userID, now, now.Add(absolute))
	return err
}

// SessionUser resolves a token to its user, enforcing the idle and absolute
// timeouts, in one query, and refreshes last_seen at most once a minute to
// spare the database.
func (s *Store) SessionUser(ctx context.Context, token string, idle time.Duration) (*User, error) {
	u, _, err := s.SessionUserUntil(ctx, token, idle)
	return u, err
}

// SessionUserUntil is SessionUser that also says until when the session
// stays valid if nothing ends it: the earlier of its absolute expiry and its
// idle deadline. Callers that cache sessions must not keep them longer.
func (s *Store) SessionUserUntil(ctx context.Context, token string, idle time.Duration) (*User, time.Time, error) {
	if token == "" {
		return nil, time.Time{}, ErrNotFound
	}
	now := s.Now()
	digest := [32]byte(tokenHash(token))
	if u, until, ok := s.sessions.lookup(digest, now, idle); ok {
		return u, until, nil
	}
	epoch, caching := s.sessions.begin()
	// The read is shared by every request of this session that misses the
	// cache meanwhile (see sessionCache.reads). The epoch is part of the key:
	// a request that comes after a logout or a role change does not join a
	// read that began before it.
	key := string(digest[:]) + strconv.FormatUint(epoch, 10) + "/" + idle.String()
	v, err, _ := s.sessions.reads.Do(key, func() (any, error) {
		rctx, cancel := sharedReadContext(ctx)
		defer cancel()
		s.sessions.dbReads.Add(1)
		var lastSeen, expires time.Time
		u := User{}
		err := s.Pool.QueryRow(rctx, `SELECT s.last_seen_at, s.expires_at, u.id, u.email, u.name, u.phone, u.roles, coalesce(u.agency_code, ''), u.demo, u.created_at, u.password_hash
			FROM sessions s JOIN users u ON u.id = s.user_id
			WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3`,
			digest[:], now, now.Add(-idle)).Scan(&lastSeen, &expires, &u.ID, &u.Email, &u.Name, &u.Phone, &u.Roles, &u.Agency, &u.Demo, &u.CreatedAt, &u.passwordHash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		if now.Sub(lastSeen) > time.Minute {
			if _, err := s.Pool.Exec(rctx, `UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1`, digest[:], now); err != nil {
				return nil, err
			}
			lastSeen = now
		}
		if caching {
			s.sessions.fill(digest, epoch, cachedSession{user: u, lastSeen: lastSeen, expires: expires, fetched: now})
		}
		return sessionRead{user: u, until: minTime(expires, lastSeen.Add(idle))}, nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	r := v.(sessionRead)
	u := r.user // a copy for each caller, as from the cache
	return &u, r.until, nil
}

// sessionRead is what one shared database read of a session gives every
// request waiting on it.
type sessionRead struct {
	user  User
	until time.Time
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// DeleteSession ends a session server-side (logout).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	h := tokenHash(token)
	_, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, h)
	s.sessions.forgetToken([32]byte(h)) // even on error: the outcome may be unknown
	return err
}
