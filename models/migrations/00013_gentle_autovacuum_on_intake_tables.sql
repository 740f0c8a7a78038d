-- +goose Up
-- Autovacuum of the intake tables at a fifth of its default pace. During a
-- claim window they grow by more than 10% a minute, so autovacuum visits all
-- five every minute; at the default cost delay (2 ms) it took up to 70% of a
-- core for about two seconds, in the middle of the surge, on the cores that
-- serve intake (measured on 2 cores at 3,700 claims/s: the second it ran was
-- one of the three slowest of the surge, every answer in it late). At 10 ms
-- it does the same work over about five times as long, a tenth of a core or
-- so at a time. These tables are insert-mostly: vacuum only marks pages
-- all-visible and freezes, and nothing waits for it.
ALTER TABLE claims SET (autovacuum_vacuum_cost_delay = 10);
ALTER TABLE claim_goods SET (autovacuum_vacuum_cost_delay = 10);
ALTER TABLE claim_events SET (autovacuum_vacuum_cost_delay = 10);
ALTER TABLE outbox SET (autovacuum_vacuum_cost_delay = 10);
ALTER TABLE idempotency_keys SET (autovacuum_vacuum_cost_delay = 10);

-- +goose Down
ALTER TABLE claims RESET (autovacuum_vacuum_cost_delay);
ALTER TABLE claim_goods RESET (autovacuum_vacuum_cost_delay);
ALTER TABLE claim_events RESET (autovacuum_vacuum_cost_delay);
ALTER TABLE outbox RESET (autovacuum_vacuum_cost_delay);
ALTER TABLE idempotency_keys RESET (autovacuum_vacuum_cost_delay);
