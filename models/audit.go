package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The audit log is append-only (a trigger refuses UPDATE and DELETE) and
// hash-chained: each entry's hash covers the previous hash, so removing or
// editing a row breaks every later link, which `relief audit verify` reports.

// AuditEntry is one audited action.
type AuditEntry struct {
	ID      int64          `json:"-"`
	At      time.Time      `json:"at"`
	ActorID *uuid.UUID     `json:"-"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Subject string         `json:"subject"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details,omitempty"`
	Hash    []byte         `json:"hash"`
}

const auditLockKey = 0x52454c4945 // "RELIE": serialises appends so the chain is linear

func auditHash(prev []byte, e *AuditEntry, details []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	fmt.Fprintf(h, "\n%s\n%s\n%s\n%s\n%s\n", e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject, e.IP)
	h.Write(details)
	return h.Sum(nil)
}

// Audit appends an entry in tx (or in its own transaction when tx is nil).
func (s *Store) Audit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	if tx == nil {
		return s.inTx(ctx, func(tx pgx.Tx) error { return s.Audit(ctx, tx, e) })
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockKey); err != nil {
		return err
	}
	prev := make([]byte, sha256.Size)
	err := tx.QueryRow(ctx, `SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	details, err := json.Marshal(e.Details)
	if err != nil {
		return err
	}
	e.At = s.Now().UTC().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	hash := auditHash(prev, &e, details)
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (at, actor_id, actor, action, subject, ip, details, prev_hash, hash)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, e.At, e.ActorID, e.Actor, e.Action, e.Subject, e.IP, details, prev, hash)
	return err
}

// VerifyAudit walks the chain; it returns the id of the first broken entry (0 if intact)
// and the number of entries checked.
func (s *Store) VerifyAudit(ctx context.Context) (brokenID int64, checked int64, err error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, at, actor, action, subject, ip, details::text, prev_hash, hash FROM audit_log ORDER BY id`)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	for rows.Next() {
		var e AuditEntry
		var details string
		var prevHash []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Subject, &e.IP, &details, &prevHash, &e.Hash); err != nil {
			return 0, checked, err
		}
		checked++
		// jsonb normalises key order and spacing; re-marshal to the form we hashed.
		var m map[string]any
		if err := json.Unmarshal([]byte(details), &m); err != nil {
			return e.ID, checked, nil
		}
		canonical, _ := json.Marshal(m)
		if !bytes.Equal(prevHash, prev) || !bytes.Equal(auditHash(prev, &e, canonical), e.Hash) {
			return e.ID, checked, nil
		}
		prev = e.Hash
	}
	return 0, checked, rows.Err()
}
