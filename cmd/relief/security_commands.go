package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/models"
)

// rekey re-encrypts every bank account number sealed under an older key with
// the active (first) key of RELIEF_DATA_KEY. Idempotent and resumable: run it
// again after an interruption; rows already under the active key are skipped.
func rekey(ctx context.Context, load func(config.Mode) (*config.Config, error), args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	batch := fs.Int("batch", 500, "rows per transaction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 100_000 {
		return fmt.Errorf("rekey: --batch must be 1..100000")
	}
	return withStore(ctx, load, func(s *models.Store) error {
		fmt.Fprintf(stdout, "rekey: active key %q, blind index from key %q\n", s.Vault.ActiveKeyID(), s.Vault.IndexKeyID())
		res, err := s.RekeyAccounts(ctx, *batch, func(done int64) { fmt.Fprintf(stdout, "rekey: %d rows re-encrypted\n", done) })
		if err != nil {
			if res != nil && res.Rekeyed > 0 {
				return fmt.Errorf("rekey stopped after %d rows (run it again to resume): %w", res.Rekeyed, err)
			}
			return fmt.Errorf("rekey: %w", err)
		}
		keys := make([]string, 0, len(res.ByKey))
		for k, n := range res.ByKey {
			keys = append(keys, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(keys)
		fmt.Fprintf(stdout, "rekey done: %d rows re-encrypted in %d batches; rows by key: %s\n", res.Rekeyed, res.Batches, strings.Join(keys, " "))
		return nil
	})
}

// purge anonymises the personal data of closed programs whose retention has
// passed, keeping amounts, statuses and the ledger.
func purge(ctx context.Context, load func(config.Mode) (*config.Config, error), args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "report what would be anonymised, change nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withStore(ctx, load, func(s *models.Store) error {
		reports, err := s.PurgeClosedPrograms(ctx, *dry)
		for _, r := range reports {
			verb := "anonymised"
			if *dry {
				verb = "would anonymise"
			}
			fmt.Fprintf(stdout, "purge: %s (closed %s): %s %d claims, %d notes, %d merchant accounts, %d stored replies, %d documents, %d exports, %d sales-ledger rows\n",
				r.Program, r.ClosedAt.Format("2006-01-02"), verb, r.Claims, r.Notes, r.Users, r.Replays, r.Documents, r.Exports, r.LedgerRows)
		}
		if err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		if len(reports) == 0 {
			fmt.Fprintln(stdout, "purge: no closed program is past its retention period")
		}
		return nil
	})
}
