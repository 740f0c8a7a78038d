// Command queue measures the reviewer queue on a large program: it seeds
// claims with COPY (default 1,000,000), then times ReviewQueue — the same SQL
// the API and the pages run, counts per status included — for the first page
// and for a deep page (keyset cursor), in several views, and prints p50/p95.
// Goal: p95 < 50 ms; it exits 1 when a goal is missed.
//
//	go run ./bench/queue [-claims 1000000] [-runs 200] [-db postgres://...]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

const goalP95 = 50 * time.Millisecond

var statuses = []struct {
	status string
	weight int // percent
}{
	{models.StatusInReview, 55}, {models.StatusAutoApproved, 15}, {models.StatusApproved, 10}, {models.StatusRejected, 5},
	{models.StatusInfoRequested, 4}, {models.StatusPendingSecondApproval, 3}, {models.StatusClosed, 3}, {models.StatusReceived, 2},
	{models.StatusAppealed, 1}, {models.StatusPaid, 2},
}

func main() {
	n := flag.Int("claims", 1_000_000, "claims to seed")
	runs := flag.Int("runs", 200, "timed queries per view")
	db := flag.String("db", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default: a private cluster)")
	flag.Parse()
	ctx := context.Background()
	url := *db
	if url == "" {
		tmp, err := os.MkdirTemp("", "relief-bench-queue-")
		check(err)
		defer os.RemoveAll(tmp)
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg"), NoSync: true})
		check(err)
		defer cl.Stop(context.Background())
		check(cl.CreateDatabase(ctx, "bench", ""))
		url = cl.URL("bench")
	}
	check(models.Migrate(ctx, url))
	v, err := vault.Parse(vault.NewKeySpec("bench"))
	check(err)
	store, err := models.Open(ctx, url, 8, v)
	check(err)
	defer store.Close()
	check(store.Seed(ctx))
	stamp := time.Now().UnixNano()
	merchant, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("m%d@example.kr", stamp), Name: "판매자", Password: "correct horse battery", Roles: []string{models.RoleMerchant}})
	check(err)
	reviewer, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("r%d@example.kr", stamp), Name: "심사자", Password: "correct horse battery", Roles: []string{models.RoleReviewer}, Agency: "KPOST"})
	check(err)

	var have int64
	check(store.Pool.QueryRow(ctx, `SELECT count(*) FROM claims WHERE program_code = $1`, models.DemoProgram).Scan(&have))
	if have < int64(*n) {
		t0 := time.Now()
		for from := int(have); from < *n; from += 100_000 {
			seed(ctx, store, merchant.ID, from, min(*n, from+100_000))
		}
		fmt.Printf("seeded %s claims with COPY in %.1fs\n", rules.FormatNumber(int64(*n)-have), time.Since(t0).Seconds())
	}
	check(unbounded(ctx, store, func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, `VACUUM ANALYZE claims`)
		return err
	}))

	// A deep cursor: 80% of the way down the in_review queue.
	var inReview int64
	check(store.Pool.QueryRow(ctx, `SELECT count(*) FROM claims WHERE program_code = $1 AND status = 'in_review'`, models.DemoProgram).Scan(&inReview))
	var at time.Time
	var id uuid.UUID
	check(store.Pool.QueryRow(ctx, `SELECT created_at, id FROM claims WHERE program_code = $1 AND status = 'in_review'
		ORDER BY created_at, id OFFSET $2 LIMIT 1`, models.DemoProgram, inReview*8/10).Scan(&at, &id))
	deep := base64.RawURLEncoding.EncodeToString([]byte(models.SortOldest + "|" + at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
	var loss int64
	check(store.Pool.QueryRow(ctx, `SELECT claimed_loss, id FROM claims WHERE program_code = $1 AND status = 'in_review'
		ORDER BY claimed_loss DESC, id DESC OFFSET $2 LIMIT 1`, models.DemoProgram, inReview*8/10).Scan(&loss, &id))
	deepAmount := base64.RawURLEncoding.EncodeToString([]byte(models.SortAmountDesc + "|" + strconv.FormatInt(loss, 10) + "|" + id.String()))

	// And 80% of the way down the whole program, every status, oldest first.
	var all int64
	check(store.Pool.QueryRow(ctx, `SELECT count(*) FROM claims WHERE program_code = $1`, models.DemoProgram).Scan(&all))
	check(store.Pool.QueryRow(ctx, `SELECT created_at, id FROM claims WHERE program_code = $1
		ORDER BY created_at, id OFFSET $2 LIMIT 1`, models.DemoProgram, all*8/10).Scan(&at, &id))
	deepAll := base64.RawURLEncoding.EncodeToString([]byte(models.SortOldest + "|" + at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))

	views := []struct {
		name string
		f    models.QueueFilter
	}{
		{"in_review, oldest first, first page", models.QueueFilter{Status: models.StatusInReview}},
		{"in_review, oldest first, deep page (80%)", models.QueueFilter{Status: models.StatusInReview, Cursor: deep}},
		{"in_review, largest first, first page", models.QueueFilter{Status: models.StatusInReview, Sort: models.SortAmountDesc}},
		{"in_review, largest first, deep page (80%)", models.QueueFilter{Status: models.StatusInReview, Sort: models.SortAmountDesc, Cursor: deepAmount}},
		{"all statuses, newest first, first page", models.QueueFilter{Sort: models.SortNewest}},
		{"all statuses, oldest first, deep page (80%)", models.QueueFilter{Cursor: deepAll}},
		{"all statuses, largest first, first page", models.QueueFilter{Sort: models.SortAmountDesc}},
		{"all statuses + region, newest first", models.QueueFilter{Sort: models.SortNewest, Region: "대전"}},
		{"in_review + region, oldest first", models.QueueFilter{Status: models.StatusInReview, Region: "대전"}},
		{"in_review + region, largest first", models.QueueFilter{Status: models.StatusInReview, Region: "대전", Sort: models.SortAmountDesc}},
		{"in_review + flag + region, first page", models.QueueFilter{Status: models.StatusInReview, Flag: models.FlagClaimAboveEstimate, Region: "대전"}},
		{"pending_second_approval (approvers)", models.QueueFilter{Status: models.StatusPendingSecondApproval}},
	}
	fmt.Printf("queue over %s claims (%s in review), %d runs per view, page of 50, counts per status included:\n",
		rules.FormatNumber(int64(*n)), rules.FormatNumber(inReview), *runs)
	ok := true
	for _, v := range views {
		v.f.Program = models.DemoProgram
		var times []time.Duration
		for i := range *runs + 5 {
			t0 := time.Now()
			p, err := store.ReviewQueue(ctx, reviewer, v.f)
			took := time.Since(t0)
			check(err)
			if len(p.Items) == 0 {
				check(fmt.Errorf("%s: empty page", v.name))
			}
			if i >= 5 { // warm-up
				times = append(times, took)
			}
		}
		slices.Sort(times)
		p50, p95 := times[len(times)/2], times[len(times)*95/100]
		fmt.Printf("  %-46s p50 %6.1f ms  p95 %6.1f ms\n", v.name, ms(p50), ms(p95))
		ok = ok && p95 < goalP95
	}
	fmt.Printf("goal: p95 < %v: %v\n", goalP95, ok)
	if !ok {
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func seed(ctx context.Context, s *models.Store, merchant uuid.UUID, from, to int) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := from
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= to {
			return nil, nil
		}
		k := i
		i++
		r := uint64(k)*0x9e3779b97f4a7c15 + 1
		pct, st := int(r%100), statuses[0].status
		for acc, j := 0, 0; j < len(statuses); j++ {
			if acc += statuses[j].weight; pct < acc {
				st = statuses[j].status
				break
			}
		}
		brn := rules.ValidBRNFromSeed(k).String()
		claimed := int64(100_000 + (r>>8)%50_000_000)
		est := claimed * int64(50+(r>>16)%60) / 100
		flags := "[]"
		if (r>>24)%10 == 0 {
			flags = `[{"code":"claim_above_estimate","reason":"bench"}]`
		}
		return []any{uuid.New(), fmt.Sprintf("B%09d", k), models.DemoProgram, merchant, brn, "상회 " + strconv.Itoa(k), "대표", "010-0000-0000",
			models.Categories[k%len(models.Categories)], models.Regions[k%len(models.Regions)], claimed, k%5 == 0, "004",
			sealed, "bench", "0000", blind(brn), "예금주", st, est, flags,
			base.Add(time.Duration(k) * 500 * time.Millisecond), base.Add(time.Duration(k) * 500 * time.Millisecond)}, nil
	})
	check(unbounded(ctx, s, func(conn *pgxpool.Conn) error {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{"claims"}, []string{"id", "receipt_no", "program_code", "merchant_id", "brn", "business_name",
			"representative", "phone", "category", "region", "claimed_loss", "accept_offer", "bank_code", "account_ciphertext", "account_key_id",
			"account_last4", "account_blind_index", "account_holder", "status", "estimated_loss", "risk_flags", "created_at", "updated_at"}, src)
		return err
	}))
}

// unbounded runs f on one connection without the pool's statement timeout,
// which is meant for requests, not for seeding a million rows on a busy
// machine (the status-count trigger runs once per row).
func unbounded(ctx context.Context, s *models.Store, f func(*pgxpool.Conn) error) error {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`) //nolint:errcheck // the pool drops a broken connection
	return f(conn)
}

// sealed stands in for an AES-GCM sealed account number (the schema checks its
// shape: nonce, tag and at least 10 digits); blind for its 32-byte blind index.
var sealed = make([]byte, 40)

func blind(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/queue:", err)
		os.Exit(1)
	}
}
