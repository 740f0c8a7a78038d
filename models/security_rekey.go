package models

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrIndexKeyChanged means RELIEF_DATA_KEY no longer derives the blind-index
// key the database was built with (the original key was dropped or moved from
// the end of the list). Equal account numbers would stop matching, so rekey
// refuses to run.
var ErrIndexKeyChanged = errors.New("the blind-index key changed: keep the original key as the LAST entry of RELIEF_DATA_KEY (new keys go first)")

// CheckIndexKey compares the vault's blind-index key with the one recorded in
// the database, recording it on first use.
func (s *Store) CheckIndexKey(ctx context.Context) error {
	fp := s.Vault.IndexFingerprint()
	if _, err := s.Pool.Exec(ctx, `INSERT INTO vault_index_key (fingerprint) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`, fp); err != nil {
		return err
	}
	var recorded []byte
	if err := s.Pool.QueryRow(ctx, `SELECT fingerprint FROM vault_index_key`).Scan(&recorded); err != nil {
		return err
	}
	if !bytes.Equal(recorded, fp) {
		return ErrIndexKeyChanged
	}
	return nil
}

// RekeyResult reports a RekeyAccounts run.
type RekeyResult struct {
	Rekeyed int64          // rows re-encrypted by this run
	Batches int            // transactions committed
	ByKey   map[string]int // rows per key id after the run (purged rows excluded)
}

// RekeyAccounts re-encrypts every bank account number sealed under a key other
// than the active one, batch rows per transaction. It is idempotent (rows
// already under the active key are not touched), resumable (each batch
// commits; a rerun picks up what is left) and safe to run beside live traffic
// and beside another rekey (rows are locked with SKIP LOCKED). Before sealing
// a row again it checks that the row's blind index still matches, so the
// index stays stable; a mismatch or an unknown key id stops the run naming the
// claim id, never the number. progress, when set, is called after each batch.
func (s *Store) RekeyAccounts(ctx context.Context, batch int, progress func(done int64)) (*RekeyResult, error) {
	if batch <= 0 {
		batch = 500
	}
	if err := s.CheckIndexKey(ctx); err != nil {
		return nil, err
	}
	res := &RekeyResult{}
	active := s.Vault.ActiveKeyID()
	for {
		n, err := s.rekeyBatch(ctx, active, batch)
		if err != nil {
			return res, err
		}
		if n == 0 {
			break
		}
		res.Rekeyed += int64(n)
		res.Batches++
		if progress != nil {
			progress(res.Rekeyed)
		}
	}
	rows, err := s.Pool.Query(ctx, `SELECT account_key_id, count(*) FROM claims WHERE purged_at IS NULL GROUP BY 1`)
	if err != nil {
		return res, err
	}
	res.ByKey = map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return res, err
		}
		res.ByKey[id] = n
	}
	rows.Close()
	return res, rows.Err()
}

func (s *Store) rekeyBatch(ctx context.Context, active string, batch int) (int, error) {
	done := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, bank_code, account_ciphertext, account_key_id, account_blind_index FROM claims
			WHERE account_key_id <> $1 AND purged_at IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, active, batch)
		if err != nil {
			return err
		}
		type row struct {
			id          uuid.UUID
			bank, keyID string
			ct, bidx    []byte
		}
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.bank, &r.ct, &r.keyID, &r.bidx); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range todo {
			aad := []byte(r.id.String())
			plain, err := s.Vault.Open(r.ct, r.keyID, aad)
			if err != nil {
				return fmt.Errorf("rekey claim %s (key %q): %w", r.id, r.keyID, err)
			}
			if !bytes.Equal(s.Vault.BlindIndex(r.bank+":"+string(plain)), r.bidx) {
				return fmt.Errorf("rekey claim %s: %w", r.id, ErrIndexKeyChanged)
			}
			ct, keyID := s.Vault.Seal(plain, aad)
			clear(plain)
			if _, err := tx.Exec(ctx, `UPDATE claims SET account_ciphertext = $2, account_key_id = $3 WHERE id = $1 AND account_key_id = $4`,
				r.id, ct, keyID, r.keyID); err != nil {
				return err
			}
		}
		done = len(todo)
		return nil
	})
	return done, err
}

// ClaimAccountNumber decrypts a claim's bank account number (digits only) for
// the roles that need it (payout files). Callers audit-log the access.
func (s *Store) ClaimAccountNumber(ctx context.Context, q Querier, claimID uuid.UUID) (string, error) {
	if q == nil {
		q = s.Pool
	}
	var ct []byte
	var keyID string
	err := q.QueryRow(ctx, `SELECT account_ciphertext, account_key_id FROM claims WHERE id = $1 AND purged_at IS NULL`, claimID).Scan(&ct, &keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	plain, err := s.Vault.Open(ct, keyID, []byte(claimID.String()))
	if err != nil {
		return "", fmt.Errorf("decrypt account of claim %s: %w", claimID, err)
	}
	return string(plain), nil
}
