package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The API answers these with 503 (retry with the same Idempotency-Key), and
// everything else that is not a domain error with 500.
func TestIsUnavailable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"server shutting down (57P01)", &pgconn.PgError{Code: "57P01"}, true},
		{"not yet accepting connections (57P03)", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P03"}), true},
		{"connection exception class 08", &pgconn.PgError{Code: "08006"}, true},
		{"connection cut mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"deadline", context.DeadlineExceeded, true},
		{"unique violation is a conflict, not an outage", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error is a bug", &pgconn.PgError{Code: "42601"}, false},
		{"plain error", errors.New("boom"), false},
	}
	for _, c := range cases {
		if got := IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable = %v, want %v", c.name, got, c.want)
		}
	}
}
