package models

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Personal data of a closed program is kept for the program's retention period
// (programs.retention_days, counted from closed_at) and then anonymised by
// PurgeClosedPrograms (`relief purge`). Claims are anonymised, never deleted:
// the ledger, entitlements and payouts reference them and are append-only, and
// the program's aggregates (amounts by status, instrument, category, region,
// day) must stay reportable.

// PurgeReport says what a purge did (or, dry, would do) to one program.
type PurgeReport struct {
	Program  string    `json:"program"`
	ClosedAt time.Time `json:"closed_at"`
	Claims   int64     `json:"claims"`   // claims anonymised
	Notes    int64     `json:"notes"`    // timeline notes blanked
	Users    int64     `json:"users"`    // merchant accounts anonymised (no claim left elsewhere)
	Replays  int64     `json:"replays"`  // stored idempotent responses dropped
	Sessions int64     `json:"sessions"` // sessions of anonymised accounts ended
	// Documents (evidence files) and export jobs (workbooks) deleted; sales
	// ledger rows whose BRN was replaced by an alias.
	Documents  int64 `json:"documents"`
	Exports    int64 `json:"exports"`
	LedgerRows int64 `json:"ledger_rows"`
}

// PurgeClosedPrograms anonymises the personal data of every closed program
// whose retention has passed: claim BRN, business and representative names,
// phone, account holder, sealed account number, blind index and last digits;
// free text about the claims (timeline notes, info requests and answers,
// appeal reasons, payout failure messages); evidence documents and generated
// export workbooks (deleted); the BRNs of the sales ledger (replaced by an
// alias per seller, so per-seller figures stay). A merchant account is anonymised too once
// none of its claims belongs to a program still holding personal data.
// Each program is one transaction and is audit-logged; a rerun is a no-op.
// With dryRun nothing is written and the counts say what would change.
func (s *Store) PurgeClosedPrograms(ctx context.Context, dryRun bool) ([]PurgeReport, error) {
	now := s.Now()
	rows, err := s.Pool.Query(ctx, `SELECT code, closed_at FROM programs
		WHERE status = 'closed' AND closed_at + make_interval(days => retention_days) <= $1 ORDER BY code`, now)
	if err != nil {
		return nil, err
	}
	var due []PurgeReport
	for rows.Next() {
		var r PurgeReport
		if err := rows.Scan(&r.Program, &r.ClosedAt); err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []PurgeReport{}
	for _, r := range due {
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			if err := s.purgeProgram(ctx, tx, &r, now); err != nil {
				return err
			}
			if dryRun {
				return errDryRun
			}
			if r.Claims+r.Notes+r.Users+r.Replays+r.Documents+r.Exports+r.LedgerRows == 0 {
				return nil // already purged: nothing to log again
			}
			return s.Audit(ctx, tx, AuditEntry{Actor: "system", Action: "purge_personal_data", Subject: "program:" + r.Program,
				Details: map[string]any{"claims": r.Claims, "notes": r.Notes, "users": r.Users, "replays": r.Replays,
					"documents": r.Documents, "exports": r.Exports, "ledger_rows": r.LedgerRows}})
		})
		s.sessions.forgetAll() // accounts were anonymised: cached users may be among them
		if err != nil && err != errDryRun {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

var errDryRun = Coded(EINTERNAL, "dry_run", "dry run: rolled back")

func (s *Store) purgeProgram(ctx context.Context, tx pgx.Tx, r *PurgeReport, now time.Time) error {
	// Merchants of this program, before their claims lose the link's meaning.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE purge_merchants ON COMMIT DROP AS
		SELECT DISTINCT merchant_id AS id FROM claims WHERE program_code = $1`, r.Program); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE claim_events e SET note = '' FROM claims c
		WHERE c.id = e.claim_id AND c.program_code = $1 AND e.note <> ''`, r.Program)
	if err != nil {
		return err
	}
	r.Notes = tag.RowsAffected()
	tag, err = tx.Exec(ctx, `UPDATE claims SET purged_at = $2, updated_at = $2, brn = 'purged-' || id::text,
			business_name = '', representative = '', phone = '', account_holder = '',
			account_ciphertext = '', account_key_id = '', account_last4 = '', account_blind_index = ''
		WHERE program_code = $1 AND purged_at IS NULL`, r.Program, now)
	if err != nil {
		return err
	}
	r.Claims = tag.RowsAffected()
	// What merchants and staff wrote about the claims, and the evidence itself.
	for _, q := range []struct {
		sql string
		n   *int64
	}{
		{`UPDATE review_info_requests i SET note = '', answer = '' FROM claims c
			WHERE c.id = i.claim_id AND c.program_code = $1 AND (i.note <> '' OR i.answer <> '')`, &r.Notes},
		{`UPDATE review_appeals a SET reason = '-' FROM claims c
			WHERE c.id = a.claim_id AND c.program_code = $1 AND a.reason <> '-'`, &r.Notes},
		{`UPDATE payout_lines SET failure_reason = '' WHERE program_code = $1 AND failure_reason <> ''`, &r.Notes},
		{`DELETE FROM claim_documents d USING claims c WHERE c.id = d.claim_id AND c.program_code = $1`, &r.Documents},
		// Generated workbooks hold names and account numbers.
		{`DELETE FROM export_jobs WHERE program_code = $1`, &r.Exports},
	} {
		tag, err := tx.Exec(ctx, q.sql, r.Program)
		if err != nil {
			return err
		}
		*q.n += tag.RowsAffected()
	}
	// The sales ledger keeps its figures per seller (the aggregates), under a
	// random alias per BRN instead of the BRN.
	tag, err = tx.Exec(ctx, `WITH aliases AS (
			SELECT brn, 'purged-' || gen_random_uuid()::text AS alias
			FROM (SELECT DISTINCT brn FROM sales_ledger WHERE program_code = $1 AND brn NOT LIKE 'purged-%') d)
		UPDATE sales_ledger s SET brn = a.alias FROM aliases a WHERE s.program_code = $1 AND s.brn = a.brn`, r.Program)
	if err != nil {
		return err
	}
	r.LedgerRows = tag.RowsAffected()
	// Accounts whose every claim is anonymised: nothing left to serve them for.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE purge_users ON COMMIT DROP AS
		SELECT u.id FROM users u JOIN purge_merchants m ON m.id = u.id
		WHERE u.roles = ARRAY['merchant'] AND u.email NOT LIKE 'purged-%@invalid'
		  AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.merchant_id = u.id AND c.purged_at IS NULL)`); err != nil {
		return err
	}
	tag, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id IN (SELECT id FROM purge_users)`)
	if err != nil {
		return err
	}
	r.Sessions = tag.RowsAffected()
	tag, err = tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope IN (SELECT 'claims:' || id::text FROM purge_merchants)
		AND NOT EXISTS (SELECT 1 FROM claims c WHERE 'claims:' || c.merchant_id::text = scope AND c.purged_at IS NULL)`)
	if err != nil {
		return err
	}
	r.Replays = tag.RowsAffected()
	// The password hash becomes unusable ('!' is never a valid encoding), which
	// also ends sessions through the users trigger.
	tag, err = tx.Exec(ctx, `UPDATE users SET email = 'purged-' || id::text || '@invalid', name = '', phone = '', password_hash = '!purged'
		WHERE id IN (SELECT id FROM purge_users)`)
	if err != nil {
		return err
	}
	r.Users = tag.RowsAffected()
	return nil
}

// SetProgramRetention sets how many days after closing a program's personal
// data is kept.
func (s *Store) SetProgramRetention(ctx context.Context, code string, days int) error {
	if days < 1 || days > 36500 {
		return FieldError("validation_failed", "retention_days", "out_of_range", "retention must be 1..36500 days")
	}
	tag, err := s.Pool.Exec(ctx, `UPDATE programs SET retention_days = $2 WHERE code = $1`, code, days)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return Coded(ENOTFOUND, "program_not_found", "no such program")
	}
	return nil
}

// CloseProgram closes a program at the store's clock (retention counts from here).
func (s *Store) CloseProgram(ctx context.Context, code string) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE programs SET status = 'closed', closed_at = $2 WHERE code = $1 AND status <> 'closed'`, code, s.Now())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.ProgramByCode(ctx, code); err != nil {
			return err
		}
	}
	return nil
}
