package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// TestGroupCommitUnderConcurrency files many claims at once so that the
// intake writers group them, with a few collisions mixed in (the same BRN under
// another key, the same key twice, a replay), and checks that every claim is
// written exactly once with all its rows and that every answer is the one a
// claim filed alone would get.
func TestGroupCommitUnderConcurrency(t *testing.T) {
	s := newStore(t)
	s.IntakeWriters = 1 // one writer: everything that arrives meanwhile forms a group
	merchants := []*models.User{newMerchant(t, s, "g1@example.kr"), newMerchant(t, s, "g2@example.kr")}
	const n = 200
	type result struct {
		status int
		f      models.Filed
		err    error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			u := merchants[i%2]
			brn := rules.ValidBRNFromSeed(5000 + i).String()
			key := fmt.Sprint("k", i)
			switch {
			case i%40 == 3: // same BRN as claim i-1, another key: a duplicate
				brn = rules.ValidBRNFromSeed(5000 + i - 1).String()
			case i%40 == 5: // same key and body as claim i-4 (same merchant): a replay
				brn, key = rules.ValidBRNFromSeed(5000+i-4).String(), fmt.Sprint("k", i-4)
			}
			in := validClaim(brn)
			qty := i + 1
			if i%40 == 5 {
				qty = i - 3 // the body of claim i-4
			}
			in.Goods = append(in.Goods, models.GoodsItem{SKU: "B-2", Name: "배", UnitPrice: 30000, Quantity: int64(qty)})
			body, _ := json.Marshal(in)
			st, resp, err := s.FileClaim(context.Background(), u, key, models.RequestHash("POST", "/api/v1/claims", body), in)
			r := result{status: st, err: err}
			if err == nil {
				if jerr := json.Unmarshal(resp, &r.f); jerr != nil {
					t.Error(jerr)
				}
			}
			results[i] = r
		}()
	}
	close(start)
	wg.Wait()

	ids := map[uuid.UUID]int{}
	for i, r := range results {
		switch {
		case i%40 == 3 || i%40 == 2: // one of the pair wins, the other is a duplicate naming it
			if r.err != nil {
				if !isCode(r.err, "duplicate_claim") {
					t.Errorf("claim %d: %v", i, r.err)
				}
				continue
			}
		case r.err != nil || r.status != http.StatusAccepted:
			t.Errorf("claim %d: status %d err %v", i, r.status, r.err)
			continue
		}
		ids[r.f.ID]++
	}
	for i := 0; i < n; i += 40 {
		if a, b := results[i+2], results[i+3]; (a.err == nil) == (b.err == nil) {
			t.Errorf("pair %d/%d: exactly one must win: %v / %v", i+2, i+3, a.err, b.err)
		}
		// A replay gets the original claim's answer.
		if r, orig := results[i+5], results[i+1]; r.f != orig.f {
			t.Errorf("replay %d: %+v, original %+v", i+5, r.f, orig.f)
		}
	}
	if groups, grouped := s.IntakeGroups(); groups == 0 || grouped < 10 {
		t.Errorf("no claims were written in groups (%d statements, %d claims): the test does not test group commit", groups, grouped)
	} else {
		t.Logf("%d group statements carried %d claims", groups, grouped)
	}
	want := n - n/40*2 // one in 40 is a duplicate, one in 40 a replay
	if got := count(t, s, `SELECT count(*) FROM claims`); got != want || len(ids) != want {
		t.Fatalf("claims = %d, distinct ids answered = %d, want %d", got, len(ids), want)
	}
	for _, q := range []string{
		`SELECT count(*) FROM claims c WHERE (SELECT count(*) FROM claim_goods g WHERE g.claim_id = c.id) <> 2`,
		`SELECT count(*) FROM claims c WHERE (SELECT count(*) FROM claim_events e WHERE e.claim_id = c.id AND e.status = 'received') <> 1`,
		`SELECT count(*) FROM claims c WHERE (SELECT count(*) FROM outbox o WHERE o.aggregate_id = c.id AND o.topic = 'claim.filed') <> 1`,
		`SELECT count(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE convert_from(k.body, 'UTF8')::jsonb ->> 'id' = c.id::text)`,
		`SELECT count(*) - count(DISTINCT receipt_no) FROM claims`,
	} {
		if got := count(t, s, q); got != 0 {
			t.Errorf("%s: %d", q, got)
		}
	}
	// The stored answer is exactly what a claim filed alone stores.
	var body []byte
	if err := s.Pool.QueryRow(context.Background(), `SELECT body FROM idempotency_keys WHERE key = 'k0'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	want0, _ := json.Marshal(results[0].f)
	if string(body) != string(want0) {
		t.Fatalf("stored body %s, want %s", body, want0)
	}
}

// TestGroupCommitSurvivesAFailedGroup: a group that cannot be written as a
// whole (a quarter of its claims collide with claims already filed) is split
// until the colliding claims are alone; each claim gets its own answer.
func TestGroupCommitSurvivesAFailedGroup(t *testing.T) {
	s := newStore(t)
	s.IntakeWriters = 1
	u := newMerchant(t, s, "f@example.kr")
	for i := range 5 {
		if _, _, err := file(t, s, u, fmt.Sprint("first", i), validClaim(rules.ValidBRNFromSeed(7000+i).String())); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			brn := rules.ValidBRNFromSeed(7100 + i).String()
			if i < 5 {
				brn = rules.ValidBRNFromSeed(7000 + i).String()
			}
			_, _, errs[i] = file(t, s, u, fmt.Sprint("second", i), validClaim(brn))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i < 5) != isCode(err, "duplicate_claim") || (i >= 5 && err != nil) {
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if got := count(t, s, `SELECT count(*) FROM claims`); got != 20 {
		t.Fatalf("claims = %d, want 20", got)
	}
}

// TestOutboxWakeFollowsEveryCommit: the dispatcher's NOTIFY is sent after
// the claims commit, coalesced, and never lost for the last claim of a burst.
func TestOutboxWakeFollowsEveryCommit(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "n@example.kr")
	ctx := context.Background()
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+models.OutboxChannel); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := file(t, s, u, fmt.Sprint("w", round, "-", i), validClaim(rules.ValidBRNFromSeed(9000+round*10+i).String())); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: no NOTIFY after the claims committed: %v", round, err)
		}
		// Drain what else came, so the next round waits for its own.
		for {
			dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := conn.Conn().WaitForNotification(dctx)
			cancel()
			if err != nil {
				break
			}
		}
	}
}
