package models_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/relief/relief/models/rules"
)

// TestProgramReadIsShared: when intake's cached program has expired, the
// claims arriving together wait for one read of it instead of each reading
// it (at the start of a surge that was hundreds of reads at once).
func TestProgramReadIsShared(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "shared-read@example.kr")
	file := func(i int) (int, error) {
		st, _, err := fileRaw(s, u, fmt.Sprint("shared-", i), validClaim(rules.ValidBRNFromSeed(91000+i).String()))
		return st, err
	}
	if st, err := file(0); err != nil || st != http.StatusAccepted {
		t.Fatalf("first claim: %d %v", st, err)
	}
	const n = 64
	for round := range 3 {
		s.ForgetPrograms()
		before := s.ProgramReads()
		errs := make(chan error, n)
		atOnce(n, func(i int) {
			if st, err := file(1 + round*n + i); err != nil || st != http.StatusAccepted {
				errs <- fmt.Errorf("claim %d: %d %v", i, st, err)
			}
		})
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// One read, or two when a claim checked the cache just before the
		// read filled it and asked just after the read ended.
		if reads := s.ProgramReads() - before; reads < 1 || reads > 2 {
			t.Fatalf("round %d: %d claims at once read the program %d times", round, n, reads)
		}
	}
}

// TestIntakeTablesAutovacuumGently: autovacuum visits the intake tables every
// minute of a claim window; migration 00013 slows it there so it does not
// take a core from intake in the middle of a surge.
func TestIntakeTablesAutovacuumGently(t *testing.T) {
	s := newStore(t)
	rows, err := s.Pool.Query(context.Background(), `SELECT c.relname, coalesce(array_to_string(c.reloptions, ','), '')
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
		AND c.relname IN ('claims', 'claim_goods', 'claim_events', 'outbox', 'idempotency_keys')`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var name, opts string
		if err := rows.Scan(&name, &opts); err != nil {
			t.Fatal(err)
		}
		got[name] = opts
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"claims", "claim_goods", "claim_events", "outbox", "idempotency_keys"} {
		if got[table] != "autovacuum_vacuum_cost_delay=10" {
			t.Errorf("%s: reloptions %q, want autovacuum_vacuum_cost_delay=10", table, got[table])
		}
	}
}
