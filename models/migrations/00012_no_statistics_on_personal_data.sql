-- +goose Up
-- No planner statistics on personal data, secrets or opaque blobs. ANALYZE
-- copies sampled values into pg_statistic (most common values, histogram
-- bounds) and pg_stats shows them, so phone numbers and names would live on
-- in the catalog after a claim is purged. No query needs their distribution
-- (a BRN is looked up together with its program, through an index), and
-- gathering it costs: during a claim window the intake tables grow by more
-- than 10% a minute, so autovacuum analyzes them every minute, on the cores
-- that serve intake.
-- At 300,000 claims, ANALYZE of the five intake tables took 870 ms before
-- and 690 ms after (claims alone 412 and 306 ms). Statistics that already
-- exist stay until a superuser deletes them from pg_statistic (README,
-- Running in production).
ALTER TABLE claims
    ALTER COLUMN brn SET STATISTICS 0,
    ALTER COLUMN business_name SET STATISTICS 0,
    ALTER COLUMN representative SET STATISTICS 0,
    ALTER COLUMN phone SET STATISTICS 0,
    ALTER COLUMN account_ciphertext SET STATISTICS 0,
    ALTER COLUMN account_last4 SET STATISTICS 0,
    ALTER COLUMN account_holder SET STATISTICS 0,
    ALTER COLUMN account_check_failure SET STATISTICS 0;
ALTER TABLE claim_events ALTER COLUMN note SET STATISTICS 0;
ALTER TABLE claim_documents ALTER COLUMN filename SET STATISTICS 0, ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE idempotency_keys
    ALTER COLUMN key SET STATISTICS 0,
    ALTER COLUMN request_hash SET STATISTICS 0,
    ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS 0, ALTER COLUMN last_error SET STATISTICS 0;
ALTER TABLE users
    ALTER COLUMN email SET STATISTICS 0,
    ALTER COLUMN name SET STATISTICS 0,
    ALTER COLUMN phone SET STATISTICS 0,
    ALTER COLUMN password_hash SET STATISTICS 0;
ALTER TABLE sessions ALTER COLUMN token_hash SET STATISTICS 0;
ALTER TABLE review_info_requests ALTER COLUMN note SET STATISTICS 0, ALTER COLUMN answer SET STATISTICS 0;
ALTER TABLE review_appeals ALTER COLUMN reason SET STATISTICS 0;
ALTER TABLE review_decisions ALTER COLUMN reason SET STATISTICS 0;
ALTER TABLE sales_ledger ALTER COLUMN brn SET STATISTICS 0;
ALTER TABLE audit_log ALTER COLUMN ip SET STATISTICS 0, ALTER COLUMN details SET STATISTICS 0;

-- +goose Down
ALTER TABLE claims
    ALTER COLUMN brn SET STATISTICS -1,
    ALTER COLUMN business_name SET STATISTICS -1,
    ALTER COLUMN representative SET STATISTICS -1,
    ALTER COLUMN phone SET STATISTICS -1,
    ALTER COLUMN account_ciphertext SET STATISTICS -1,
    ALTER COLUMN account_last4 SET STATISTICS -1,
    ALTER COLUMN account_holder SET STATISTICS -1,
    ALTER COLUMN account_check_failure SET STATISTICS -1;
ALTER TABLE claim_events ALTER COLUMN note SET STATISTICS -1;
ALTER TABLE claim_documents ALTER COLUMN filename SET STATISTICS -1, ALTER COLUMN data SET STATISTICS -1;
ALTER TABLE idempotency_keys
    ALTER COLUMN key SET STATISTICS -1,
    ALTER COLUMN request_hash SET STATISTICS -1,
    ALTER COLUMN body SET STATISTICS -1;
ALTER TABLE outbox ALTER COLUMN payload SET STATISTICS -1, ALTER COLUMN last_error SET STATISTICS -1;
ALTER TABLE users
    ALTER COLUMN email SET STATISTICS -1,
    ALTER COLUMN name SET STATISTICS -1,
    ALTER COLUMN phone SET STATISTICS -1,
    ALTER COLUMN password_hash SET STATISTICS -1;
ALTER TABLE sessions ALTER COLUMN token_hash SET STATISTICS -1;
ALTER TABLE review_info_requests ALTER COLUMN note SET STATISTICS -1, ALTER COLUMN answer SET STATISTICS -1;
ALTER TABLE review_appeals ALTER COLUMN reason SET STATISTICS -1;
ALTER TABLE review_decisions ALTER COLUMN reason SET STATISTICS -1;
ALTER TABLE sales_ledger ALTER COLUMN brn SET STATISTICS -1;
ALTER TABLE audit_log ALTER COLUMN ip SET STATISTICS -1, ALTER COLUMN details SET STATISTICS -1;
