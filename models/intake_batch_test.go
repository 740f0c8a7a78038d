package models_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
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
	atOnce(n, func(i int) {
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
		st, resp, err := fileRaw(s, u, key, in)
		r := result{status: st, err: err}
		if err == nil {
			if jerr := json.Unmarshal(resp, &r.f); jerr != nil {
				t.Error(jerr)
			}
		}
		results[i] = r
	})

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

// TestGroupSkipsTakenBRNsWithoutSplitting: resubmissions (a BRN that already
// has a claim, under a new key or as a replay) ride in a group statement like
// any other claim. The group is written by ONE statement, not split apart,
// the resubmissions write nothing, and each gets the answer it would get
// alone: duplicate_claim naming the claim, or the replayed response.
func TestGroupSkipsTakenBRNsWithoutSplitting(t *testing.T) {
	s := newStore(t)
	s.IntakeWriters = 1
	ctx := context.Background()
	u := newMerchant(t, s, "dup@example.kr")
	first := make([]models.Filed, 10)
	for i := range first {
		_, f, err := file(t, s, u, fmt.Sprint("first", i), validClaim(rules.ValidBRNFromSeed(8000+i).String()))
		if err != nil {
			t.Fatal(err)
		}
		first[i] = f
	}

	// Hold the writer on its next claim: its foreign-key check waits for
	// this lock on the program row, while the claims below queue up behind it.
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM programs WHERE code = $1 FOR UPDATE`, models.DemoProgram); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, _, err := file(t, s, u, "blocker", validClaim(rules.ValidBRNFromSeed(8999).String())); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the writer to wait for the lock", func() bool {
		return s.IntakeQueued() == 0 && count(t, s, `SELECT count(*) FROM pg_locks WHERE NOT granted`) > 0
	})

	type result struct {
		status int
		f      models.Filed
		err    error
	}
	const n = 32
	results := make([]result, n)
	for i := range n {
		key, brn := fmt.Sprint("second", i), rules.ValidBRNFromSeed(8100+i).String()
		switch {
		case i < 10: // a duplicate: the BRN of first[i] under a new key
			brn = rules.ValidBRNFromSeed(8000 + i).String()
		case i < 15: // a replay of first[i-10]: same key, same body
			key, brn = fmt.Sprint("first", i-10), rules.ValidBRNFromSeed(8000+i-10).String()
		case i == 31: // the same BRN as claim 30 of this group, another key
			brn = rules.ValidBRNFromSeed(8100 + 30).String()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r result
			r.status, r.f, r.err = file(t, s, u, key, validClaim(brn))
			results[i] = r
		}()
	}
	waitFor(t, "the group to queue", func() bool { return s.IntakeQueued() == n })
	statements, grouped := s.IntakeGroups()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if st, cl := s.IntakeGroups(); st-statements != 1 || cl-grouped != n {
		t.Fatalf("the group took %d statements carrying %d claims, want 1 carrying %d", st-statements, cl-grouped, n)
	}
	for i, r := range results {
		switch {
		case i < 10:
			e, ok := r.err.(*models.Error)
			if !ok || e.Code != "duplicate_claim" || e.Data["id"] != first[i].ID {
				t.Errorf("duplicate %d: %v (%+v), want duplicate_claim naming %s", i, r.err, e, first[i].ID)
			}
		case i < 15:
			if r.err != nil || r.status != http.StatusAccepted || r.f != first[i-10] {
				t.Errorf("replay %d: %d %+v %v, want the first answer %+v", i, r.status, r.f, r.err, first[i-10])
			}
		case i >= 30: // one of the pair is written, the other names it
			winner := results[30+31-i]
			e, ok := r.err.(*models.Error)
			if r.err == nil && winner.err == nil || r.err != nil && (!ok || e.Code != "duplicate_claim" || e.Data["id"] != winner.f.ID) {
				t.Errorf("in-group pair, claim %d: %v, want one written and the other duplicate_claim naming it", i, r.err)
			}
		default:
			if r.err != nil || r.status != http.StatusAccepted {
				t.Errorf("claim %d: %d %v", i, r.status, r.err)
			}
		}
	}
	// 10 first + blocker + 16 new: the resubmissions wrote nothing at all.
	for table, want := range map[string]int{"claims": 27, "claim_goods": 27, "claim_events": 27, "outbox": 27, "idempotency_keys": 27} {
		if got := count(t, s, `SELECT count(*) FROM `+table); got != want {
			t.Errorf("%s has %d rows, want %d", table, got, want)
		}
	}
}

// Claim ids are time-ordered (UUID version 7), so claims filed one after
// another land at the right edge of the primary key.
func TestClaimIDsAreTimeOrdered(t *testing.T) {
	s := newStore(t)
	u := newMerchant(t, s, "v7@example.kr")
	var prev uuid.UUID
	for i := range 5 {
		_, f, err := file(t, s, u, fmt.Sprint("v7-", i), validClaim(rules.ValidBRNFromSeed(9100+i).String()))
		if err != nil {
			t.Fatal(err)
		}
		if f.ID.Version() != 7 || f.ID.String() <= prev.String() {
			t.Fatalf("claim %d id %s (version %d) after %s: not time-ordered", i, f.ID, f.ID.Version(), prev)
		}
		prev = f.ID
	}
}

// TestReceiptNumbersPastAMillion: the receipt sequence grows a digit at
// 1,000,000 instead of being cut to six (which made the millionth claim's
// number collide with the 100,000th and failed its whole group statement).
// Claims filed alone and in groups both draw from it.
func TestReceiptNumbersPastAMillion(t *testing.T) {
	s := newStore(t)
	s.IntakeWriters = 1
	ctx := context.Background()
	u := newMerchant(t, s, "receipts@example.kr")
	if _, err := s.Pool.Exec(ctx, `SELECT setval('claim_receipt_seq', 99999)`); err != nil {
		t.Fatal(err)
	}
	// The 100,000th claim, filed alone, as the one the cut numbers hit.
	if _, f, err := file(t, s, u, "r0", validClaim(rules.ValidBRNFromSeed(9000).String())); err != nil || !strings.HasSuffix(f.ReceiptNo, "-100000") {
		t.Fatalf("100,000th claim: %+v %v", f, err)
	}
	if _, err := s.Pool.Exec(ctx, `SELECT setval('claim_receipt_seq', 999997)`); err != nil {
		t.Fatal(err)
	}
	const n = 40
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, f, err := file(t, s, u, fmt.Sprint("r", i+1), validClaim(rules.ValidBRNFromSeed(9001+i).String()))
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			got[i] = f.ReceiptNo
		}()
	}
	wg.Wait()
	slices.SortFunc(got, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) })
	receipt := regexp.MustCompile(`^R\d{6}-(\d{6,})$`) // R, the day in Korea (YYMMDD), the sequence
	for i, r := range got {
		if m := receipt.FindStringSubmatch(r); m == nil || m[1] != fmt.Sprintf("%06d", 999998+i) {
			t.Fatalf("receipt %d = %q, want sequence number %06d (all: %v)", i, r, 999998+i, got)
		}
	}
	if groups, grouped := s.IntakeGroups(); groups == 0 || grouped < 2 {
		t.Errorf("no group statement drew a receipt number (%d statements, %d claims)", groups, grouped)
	}
}
