package models

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// OutboxChannel is the LISTEN/NOTIFY channel that wakes the dispatcher.
const OutboxChannel = "relief_outbox"

// EnqueueOutbox adds a message in tx; it is delivered only if tx commits.
// (topic, aggregate) is unique, so enqueueing the same fact twice is a no-op.
func EnqueueOutbox(ctx context.Context, tx pgx.Tx, topic string, aggregateID uuid.UUID, payload any) error {
	body := []byte("{}")
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, aggregate_id, payload) VALUES ($1,$2,$3) ON CONFLICT (topic, aggregate_id) DO NOTHING`,
		topic, aggregateID, body); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, OutboxChannel)
	return err
}

// OutboxMessage is one pending message.
type OutboxMessage struct {
	ID          int64
	Topic       string
	AggregateID uuid.UUID
	Payload     json.RawMessage
	Attempts    int
}

// DispatchOutbox locks up to limit due messages (other dispatchers skip them),
// hands them to deliver, which returns one error per message, and marks each
// delivered one dispatched; failures are retried later with backoff. Delivery
// must be idempotent: a crash after deliver but before commit delivers again.
func (s *Store) DispatchOutbox(ctx context.Context, limit int, deliver func(context.Context, []OutboxMessage) []error) (int, error) {
	done := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, topic, aggregate_id, payload, attempts FROM outbox
			WHERE dispatched_at IS NULL AND available_at <= now() ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxMessage, error) {
			var m OutboxMessage
			err := r.Scan(&m.ID, &m.Topic, &m.AggregateID, &m.Payload, &m.Attempts)
			return m, err
		})
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		errs := deliver(ctx, msgs)
		var ok []int64
		for i, m := range msgs {
			if derr := errs[i]; derr != nil {
				// Doubling from 1 s, capped at 30 s: after a Temporal outage every
				// claim's workflow starts within half a minute of its return.
				backoff := min(time.Duration(1<<min(m.Attempts, 5))*time.Second, outboxMaxBackoff)
				if _, err := tx.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $2, available_at = now() + $3::interval WHERE id = $1`,
					m.ID, truncate(derr.Error(), 500), backoff.String()); err != nil {
					return err
				}
				continue
			}
			ok = append(ok, m.ID)
		}
		if len(ok) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE outbox SET dispatched_at = now(), attempts = attempts + 1 WHERE id = ANY($1)`, ok); err != nil {
				return err
			}
		}
		done = len(ok)
		return nil
	})
	return done, err
}

// OutboxBacklog counts undelivered messages (for /metrics).
func (s *Store) OutboxBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE dispatched_at IS NULL`).Scan(&n)
	return n, err
}

// outboxMaxBackoff bounds the wait before a failed delivery is tried again.
const outboxMaxBackoff = 30 * time.Second

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
