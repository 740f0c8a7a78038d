package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Idempotency-Key semantics (API.md): a replay with the same key and body returns
// the original status and body; the same key with another body is 422
// idempotency_mismatch. The response row commits in the same transaction as the
// change it describes, so a crash can never leave one without the other.

// RequestHash fingerprints a request for replay comparison.
func RequestHash(method, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method + " " + path + "\n"))
	h.Write(body)
	return h.Sum(nil)
}

// Idempotent runs fn once per (scope, key). fn returns the status and body to
// store; if fn fails nothing is stored and the error is returned (a retry runs fn
// again). replayed is true when the stored response was returned.
func (s *Store) Idempotent(ctx context.Context, scope, key string, reqHash []byte,
	fn func(tx pgx.Tx) (status int, body []byte, err error)) (status int, body []byte, replayed bool, err error) {
	if status, body, found, err := s.storedResponse(ctx, scope, key, reqHash); err != nil || found {
		return status, body, found, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var ferr error
		status, body, ferr = fn(tx)
		if ferr != nil {
			return ferr
		}
		_, ferr = tx.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, status, body) VALUES ($1,$2,$3,$4,$5)`,
			scope, key, reqHash, status, body)
		return ferr
	})
	if isUniqueViolation(err, "idempotency_keys_pkey") {
		// A concurrent request with the same key won the race; answer as its replay.
		status, body, found, err := s.storedResponse(ctx, scope, key, reqHash)
		if err == nil && !found {
			err = errors.New("idempotency key vanished")
		}
		return status, body, true, err
	}
	return status, body, false, err
}

func (s *Store) storedResponse(ctx context.Context, scope, key string, reqHash []byte) (int, []byte, bool, error) {
	var storedHash, body []byte
	var status int
	err := s.Pool.QueryRow(ctx, `SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&storedHash, &status, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if !bytes.Equal(storedHash, reqHash) {
		return 0, nil, false, Coded(EINVALID, "idempotency_mismatch", "this Idempotency-Key was used with a different request")
	}
	return status, body, true, nil
}
