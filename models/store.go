package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/rawnet"
)

// Store is the PostgreSQL system of record.
type Store struct {
	Pool  *pgxpool.Pool
	Vault *vault.Vault
	// Now is the clock; tests replace it.
	Now func() time.Time

	// IntakeWriters is how many group statements intake runs at once
	// (intake_batch.go); zero means DefaultIntakeWriters.
	IntakeWriters int

	intake   intakeState  // intake's program cache, group commit and outbox wake-ups (intake.go)
	sessions sessionCache // session lookups, while WatchSessions runs (session_cache.go)
}

// Querier is what both the pool and a transaction offer. Code running inside a
// transaction must query through it: asking the pool for a second connection
// while holding one deadlocks once the pool is exhausted.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Open connects a pool and checks the database answers.
func Open(ctx context.Context, databaseURL string, maxConns int32, v *vault.Vault) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.DialFunc = rawnet.Dialing(cfg.ConnConfig.DialFunc) // see package rawnet
	cfg.ConnConfig.RuntimeParams["application_name"] = "relief"
	// A stuck query must not hold a request forever; surge handling relies on it.
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "30000"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return &Store{Pool: pool, Vault: v, Now: time.Now}, nil
}

// Close releases the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping reports whether PostgreSQL answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }

// inTx runs fn in a transaction, committing on nil error.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool, fn)
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// IsUnavailable reports whether err means the database could not be reached
// (connection refused, shutting down), which the API answers with 503.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 08* connection
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code[:2] == "08"
	}
	// A connection cut in the middle of a statement (the server was killed):
	// the outcome is unknown, so 503 and the client's retry with the same
	// Idempotency-Key gets the replay or files it afresh.
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr)
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
