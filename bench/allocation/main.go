// Command allocation measures a pre-purchase tranche preview end to end: it
// seeds N approved claims that offer goods (default 100,000) with COPY, creates
// a tranche (default budget 1,100,000,000 won) and times Store.PreviewTranche —
// what POST /api/v1/tranches/{id}/preview runs through the tranche workflow's
// preview activity: read the eligible claims and their goods, rules.Allocate,
// store the draft (tranche_lines, tranche_items) in one transaction. It prints
// each run, the median, what the draft allocates and the process's peak RSS,
// then the pure compute time (rules.Allocate on the same in-memory input), the
// time to read the draft back as the handler's response does, and checks the
// draft: total ≤ budget, every amount a multiple of 10, no line over its cap.
// Goal: median < 3 s. It exits 1 when the goal is missed or a check fails.
//
//	go run ./bench/allocation [-claims 100000] [-others 10000] [-budget 1100000000] [-runs 3] [-cpuprofile cpu.out] [-db postgres://...]
//
// Without -db (or DATABASE_URL) it starts a private PostgreSQL cluster in a
// temporary directory and removes it afterwards; with -db, use a scratch
// database: the claims it seeds stay, and a later run seeds only what is
// missing. Peak RSS is this process's only: PostgreSQL's backends, which run
// the queries and the writes, are separate processes.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

const goal = 3 * time.Second

// Receipt-number prefixes and BRN seed ranges of the claims this bench seeds,
// apart from the other benches' (bench/queue uses seeds from 0).
const (
	eligiblePrefix = "AL" // approved, goods on offer: the preview's candidates
	otherPrefix    = "AO" // not approved (in review, rejected, ...), goods on offer: skipped
	eligibleBRN    = 3_000_000
	otherBRN       = 6_000_000
	chunk          = 50_000 // claims per seeding transaction: each COPY stays well under the 30 s statement timeout
)

type config struct {
	claims, others, runs int
	budget               int64
	db, cpuprofile       string
	stages               bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.claims, "claims", 100_000, "eligible claims: approved, with goods on offer")
	flag.IntVar(&cfg.others, "others", -1, "claims with goods that are not approved, which the preview must skip (default: claims/10)")
	flag.Int64Var(&cfg.budget, "budget", 1_100_000_000, "tranche budget in won")
	flag.IntVar(&cfg.runs, "runs", 3, "timed previews")
	flag.StringVar(&cfg.db, "db", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default: a private cluster)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the timed previews to this file")
	flag.BoolVar(&cfg.stages, "stages", true, "replay the preview's statements one by one in a rolled-back transaction and time each")
	flag.Parse()
	if cfg.others < 0 {
		cfg.others = cfg.claims / 10
	}
	if cfg.claims <= 0 || cfg.claims > 3_000_000 || cfg.others > 2_000_000 || cfg.runs <= 0 {
		fmt.Fprintln(os.Stderr, "bench/allocation: -claims in 1..3,000,000, -others ≤ 2,000,000, -runs ≥ 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/allocation:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// run does the work; its deferred calls stop the cluster and remove its
// directory whatever happens.
func run(ctx context.Context, cfg config) (bool, error) {
	url := cfg.db
	if url == "" {
		tmp, err := os.MkdirTemp("", "relief-bench-allocation-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(tmp)
		t0 := time.Now()
		cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tmp, "pg"), NoSync: true})
		if err != nil {
			return false, err
		}
		defer cl.Stop(context.Background())
		if err := cl.CreateDatabase(ctx, "bench", ""); err != nil {
			return false, err
		}
		url = cl.URL("bench")
		fmt.Printf("private PostgreSQL cluster started in %.1fs\n", time.Since(t0).Seconds())
	}
	if err := models.Migrate(ctx, url); err != nil {
		return false, err
	}
	v, err := vault.Parse(vault.NewKeySpec("bench"))
	if err != nil {
		return false, err
	}
	store, err := models.Open(ctx, url, 8, v)
	if err != nil {
		return false, err
	}
	defer store.Close()
	if err := store.Seed(ctx); err != nil {
		return false, err
	}
	stamp := time.Now().UnixNano()
	admin, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("alloc-admin-%d@example.kr", stamp), Name: "선매입담당",
		Password: "correct horse battery", Roles: []string{models.RoleProgramAdmin}, Agency: "KPOST"})
	if err != nil {
		return false, err
	}
	merchant, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("alloc-merchant-%d@example.kr", stamp), Name: "판매자",
		Password: "correct horse battery", Roles: []string{models.RoleMerchant}})
	if err != nil {
		return false, err
	}

	// Seed what is missing (a reused -db keeps earlier runs' claims).
	t0 := time.Now()
	var seeded [2]int
	var goods int64
	for i, s := range []struct {
		prefix string
		want   int
	}{{eligiblePrefix, cfg.claims}, {otherPrefix, cfg.others}} {
		var have int
		if err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM claims WHERE program_code = $1 AND receipt_no LIKE $2 || '%'`,
			models.DemoProgram, s.prefix).Scan(&have); err != nil {
			return false, err
		}
		for from := have; from < s.want; from += chunk {
			n, err := seed(ctx, store, merchant.ID, s.prefix == eligiblePrefix, from, min(s.want, from+chunk))
			if err != nil {
				return false, fmt.Errorf("seed: %w", err)
			}
			goods += n
			seeded[i] += min(s.want, from+chunk) - from
		}
	}
	if seeded[0]+seeded[1] > 0 {
		fmt.Printf("seeded %s approved claims and %s others (not approved), %s goods lines, with COPY in %.1fs\n",
			num(int64(seeded[0])), num(int64(seeded[1])), num(goods), time.Since(t0).Seconds())
	}
	if _, err := store.Pool.Exec(ctx, `VACUUM ANALYZE claims, claim_goods`); err != nil {
		return false, err
	}
	var eligible, goodsOffered, perishable, offerTotal int64
	if err := store.Pool.QueryRow(ctx, `SELECT count(DISTINCT c.id), count(*), count(DISTINCT c.id) FILTER (WHERE g.perishable),
			coalesce(sum(g.unit_price * g.quantity), 0)
		FROM claims c JOIN claim_goods g ON g.claim_id = c.id WHERE c.program_code = $1 AND c.status = ANY($2)`,
		models.DemoProgram, models.ApprovedStatuses).Scan(&eligible, &goodsOffered, &perishable, &offerTotal); err != nil {
		return false, err
	}
	var programCap int64
	if err := store.Pool.QueryRow(ctx, `SELECT prepurchase_cap FROM programs WHERE code = $1`, models.DemoProgram).Scan(&programCap); err != nil {
		return false, err
	}
	fmt.Printf("eligible: %s approved claims offering %s goods lines (%s claims with perishables), %s won on offer; program cap %s won per merchant\n",
		num(eligible), num(goodsOffered), num(perishable), num(offerTotal), num(programCap))

	var tranche *models.Tranche
	if err := store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		tranche, err = store.CreateTranche(ctx, tx, admin, models.DemoProgram,
			models.TrancheInput{Name: fmt.Sprintf("벤치 선매입 %d", stamp%100_000), Budget: cfg.budget}, "127.0.0.1")
		return err
	}); err != nil {
		return false, fmt.Errorf("create tranche: %w", err)
	}

	// The timed previews: what the preview activity runs (workflows/allocation
	// Activities.AllocationPreview → Store.PreviewTranche).
	runtime.GC()
	resetPeakRSS()
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return false, err
		}
	}
	fmt.Printf("preview of tranche %d (budget %s won), %d runs (Store.PreviewTranche: read + rules.Allocate + store the draft, one transaction):\n",
		tranche.Seq, num(cfg.budget), cfg.runs)
	var times []time.Duration
	var sum models.PreviewSummary
	for i := range cfg.runs {
		t0 := time.Now()
		sum, err = store.PreviewTranche(ctx, tranche.ID, admin.ID)
		took := time.Since(t0)
		if err != nil {
			pprof.StopCPUProfile()
			return false, fmt.Errorf("preview: %w", err)
		}
		times = append(times, took)
		note := ""
		if i > 0 {
			note = " (replaces the previous draft)"
		}
		fmt.Printf("  run %d: %6.2fs  draft version %d%s\n", i+1, took.Seconds(), sum.Version, note)
	}
	if cfg.cpuprofile != "" {
		pprof.StopCPUProfile()
		fmt.Printf("  CPU profile of the previews written to %s (go tool pprof -top %s)\n", cfg.cpuprofile, cfg.cpuprofile)
	}
	previewRSS := peakRSS()
	slices.Sort(times)
	median := times[len(times)/2]
	fmt.Printf("  median %.2fs over %s candidates: %s lines allocated, %s won allocated, %s won unallocated\n",
		median.Seconds(), num(int64(sum.Candidates)), num(int64(sum.Allocated)), num(sum.TotalAllocated), num(sum.Unallocated))
	fmt.Printf("  peak RSS of this process during the previews: %.0f MB (PostgreSQL's backends are separate and not counted)\n", previewRSS)

	// The same input in memory: the preview's two queries, then rules.Allocate alone.
	t0 = time.Now()
	candidates, names, err := loadCandidates(ctx, store, tranche)
	if err != nil {
		return false, err
	}
	readTook := time.Since(t0)
	var computeTimes []time.Duration
	var alloc rules.Allocation
	for range cfg.runs {
		t0 := time.Now()
		alloc, err = rules.Allocate(cfg.budget, programCap, candidates)
		computeTimes = append(computeTimes, time.Since(t0))
		if err != nil {
			return false, err
		}
	}
	slices.Sort(computeTimes)
	compute := computeTimes[len(computeTimes)/2]
	fmt.Printf("pure compute: rules.Allocate on the same %s candidates in memory: median %.3fs (%d runs)\n",
		num(int64(len(candidates))), compute.Seconds(), cfg.runs)
	fmt.Printf("  for scale: the preview's two read queries alone, scanned into memory: %.2fs (%s item names); the rest of the median, %.2fs, is storing the draft and the bookkeeping around it\n",
		readTook.Seconds(), num(int64(len(names))), max(0, (median-readTook-compute).Seconds()))

	// What the handler does next: read the stored draft back for its response.
	t0 = time.Now()
	draft, err := store.TranchePreview(ctx, admin, tranche.ID)
	if err != nil {
		return false, err
	}
	var explained int
	for _, l := range draft.Lines {
		explained += len(l.Explanation("ko"))
	}
	fmt.Printf("the API answer after a preview: Store.TranchePreview + explanations for %s lines: %.2fs (not in the preview time)\n",
		num(int64(len(draft.Lines))), time.Since(t0).Seconds())

	ok := verify(draft, sum, alloc, candidates, cfg.budget, programCap)
	if cfg.stages {
		if err := stages(ctx, store, tranche, alloc, names); err != nil {
			return false, fmt.Errorf("stages: %w", err)
		}
	}
	fmt.Printf("peak RSS of this process over the whole run, seeding included: %.0f MB\n", maxRSS())
	goalMet := median < goal
	fmt.Printf("goal: median < %v: %v\n", goal, goalMet)
	return ok && goalMet, nil
}

// verify checks the stored draft against the invariants and against the pure
// computation on the same input, printing each check.
func verify(draft *models.TranchePreview, sum models.PreviewSummary, alloc rules.Allocation, candidates []rules.Candidate, budget, programCap int64) bool {
	offered := map[string]map[string]rules.OfferItem{}
	for _, c := range candidates {
		m := make(map[string]rules.OfferItem, len(c.Items))
		for _, it := range c.Items {
			m[it.SKU] = it
		}
		offered[c.ClaimID] = m
	}
	var total, allocatedLines int64
	var notTen, overCap, badCap, badItems, overOffer []string
	for _, l := range draft.Lines {
		id := l.ClaimID.String()
		total += l.Allocated
		if l.Allocated > 0 {
			allocatedLines++
		}
		if l.Allocated%10 != 0 {
			notTen = append(notTen, id)
		}
		if l.Allocated > l.Cap {
			overCap = append(overCap, id)
		}
		if l.Cap != max(0, min(l.Offer, programCap-l.AlreadyAllocated)) {
			badCap = append(badCap, id)
		}
		var items int64
		for _, it := range l.Items {
			items += it.Amount
			if it.Amount%10 != 0 {
				notTen = append(notTen, id+" "+it.SKU)
			}
			if it.Amount != it.UnitPrice*it.Quantity || it.Quantity <= 0 {
				badItems = append(badItems, id+" "+it.SKU)
			}
			if o, found := offered[id][it.SKU]; !found || it.Quantity > o.Quantity || it.UnitPrice != o.UnitPrice {
				overOffer = append(overOffer, id+" "+it.SKU)
			}
		}
		if items != l.Allocated {
			badItems = append(badItems, id)
		}
	}
	same := len(alloc.Lines) == len(draft.Lines) && alloc.TotalAllocated == total
	for i := 0; same && i < len(alloc.Lines); i++ {
		same = alloc.Lines[i].ClaimID == draft.Lines[i].ClaimID.String() && alloc.Lines[i].Allocated == draft.Lines[i].Allocated
	}
	t := draft.Tranche
	checks := []struct {
		name string
		ok   bool
		bad  []string
	}{
		{fmt.Sprintf("total allocated %s ≤ budget %s", num(total), num(budget)), total <= budget && total == t.TotalAllocated && total == sum.TotalAllocated, nil},
		{fmt.Sprintf("allocated + unallocated = budget (%s + %s)", num(total), num(sum.Unallocated)), total+sum.Unallocated == budget && t.Unallocated == sum.Unallocated, nil},
		{fmt.Sprintf("draft lines = candidates (%s), allocated lines = %s", num(int64(len(draft.Lines))), num(allocatedLines)),
			len(draft.Lines) == sum.Candidates && allocatedLines == int64(sum.Allocated), nil},
		{"every line and item amount a multiple of 10 won", len(notTen) == 0, notTen},
		{"no line over its cap", len(overCap) == 0, overCap},
		{"every cap = min(offer, program cap − earlier tranches)", len(badCap) == 0, badCap},
		{"every item = unit price × units, lines = Σ items", len(badItems) == 0, badItems},
		{"no item above the units on offer", len(overOffer) == 0, overOffer},
		{"stored draft = rules.Allocate on the same input, line by line", same, nil},
	}
	fmt.Println("checks on the stored draft:")
	ok := true
	for _, c := range checks {
		mark := "ok"
		if !c.ok {
			mark, ok = "FAIL", false
		}
		fmt.Printf("  %-4s %s", mark, c.name)
		if len(c.bad) > 0 {
			fmt.Printf(": %d, e.g. %s", len(c.bad), strings.Join(c.bad[:min(3, len(c.bad))], ", "))
		}
		fmt.Println()
	}
	return ok
}

// stages replays the preview's statements one at a time, as PreviewTranche
// issues them, in a transaction that is rolled back, and prints what each
// takes (PostgreSQL's side included): where the preview's time goes.
func stages(ctx context.Context, s *models.Store, t *models.Tranche, alloc rules.Allocation, names map[string]string) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	fmt.Println("where a preview's time goes (its statements replayed one by one, rolled back):")
	// Each step runs under a savepoint: one that needs rights this
	// connection lacks (-db as a non-owner) is skipped.
	step := func(name string, f func() (int64, error)) error {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		t0 := time.Now()
		n, err := f()
		took := time.Since(t0)
		if err != nil {
			fmt.Printf("  %-66s skipped: %v\n", name, err)
			return sp.Rollback(ctx)
		}
		fmt.Printf("  %-66s %6.2fs  %s rows\n", name, took.Seconds(), num(n))
		return sp.Commit(ctx)
	}
	explain := func(q string, args ...any) (int64, error) {
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE) "+q, args...)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return 0, err
			}
			if strings.Contains(line, "Execution Time") || strings.Contains(line, "SubPlan") || strings.Contains(line, "Trigger") {
				fmt.Println("      " + strings.TrimSpace(line))
			}
		}
		return 0, rows.Err()
	}
	exec := func(q string, args ...any) func() (int64, error) {
		return func() (int64, error) {
			tag, err := tx.Exec(ctx, q, args...)
			return tag.RowsAffected(), err
		}
	}
	lines := make([][]any, 0, len(alloc.Lines))
	var items [][]any
	for _, l := range alloc.Lines {
		claimID := uuid.MustParse(l.ClaimID)
		lines = append(lines, []any{t.ID, claimID, l.Tier, l.Weight, l.TierWeight, l.Offer, l.AlreadyAllocated, l.Cap, l.Share, l.Converted, l.Allocated})
		for _, it := range l.Items {
			items = append(items, []any{t.ID, claimID, it.SKU, names[l.ClaimID+"\x00"+it.SKU], it.Perishable, it.UnitPrice, it.Quantity, it.Amount})
		}
	}
	copyLines := func() (int64, error) {
		return tx.CopyFrom(ctx, pgx.Identifier{"tranche_lines"}, []string{"tranche_id", "claim_id", "tier", "weight", "tier_weight",
			"offer", "already_allocated", "cap", "share", "converted", "allocated"}, pgx.CopyFromRows(lines))
	}
	copyItems := func() (int64, error) {
		return tx.CopyFrom(ctx, pgx.Identifier{"tranche_items"}, []string{"tranche_id", "claim_id", "sku", "name", "perishable",
			"unit_price", "quantity", "amount"}, pgx.CopyFromRows(items))
	}
	q1 := `SELECT c.id,
			CASE WHEN c.approved_compensation > 0 THEN c.approved_compensation ELSE coalesce(c.estimated_loss, 0) END,
			coalesce((SELECT sum(l.allocated) FROM tranche_lines l JOIN tranches e ON e.id = l.tranche_id
				WHERE l.claim_id = c.id AND e.id <> $2 AND e.status IN ('approved','notified')), 0)
		FROM claims c
		WHERE c.program_code = $1 AND c.status = ANY($3) AND EXISTS (SELECT 1 FROM claim_goods g WHERE g.claim_id = c.id)
		ORDER BY c.id`
	q2 := `SELECT g.claim_id, g.sku, g.name, g.unit_price, g.quantity - coalesce(o.quantity, 0), g.perishable
		FROM claim_goods g
		JOIN claims c ON c.id = g.claim_id
		LEFT JOIN (SELECT i.claim_id, i.sku, sum(i.quantity) AS quantity FROM tranche_items i JOIN tranches e ON e.id = i.tranche_id
			WHERE e.program_code = $1 AND e.id <> $2 AND e.status IN ('approved','notified') GROUP BY i.claim_id, i.sku) o
			ON o.claim_id = g.claim_id AND o.sku = g.sku
		WHERE c.program_code = $1 AND c.status = ANY($3)
		ORDER BY g.claim_id, g.line`
	// read 1 with the earlier tranches' allocations summed once (a join on an
	// aggregate driven by the few approved tranches) instead of a subquery per claim.
	q1Joined := `SELECT c.id,
			CASE WHEN c.approved_compensation > 0 THEN c.approved_compensation ELSE coalesce(c.estimated_loss, 0) END,
			coalesce(a.allocated, 0)
		FROM claims c
		LEFT JOIN (SELECT l.claim_id, sum(l.allocated) AS allocated FROM tranche_lines l JOIN tranches e ON e.id = l.tranche_id
			WHERE e.program_code = $1 AND e.id <> $2 AND e.status IN ('approved','notified') GROUP BY l.claim_id) a ON a.claim_id = c.id
		WHERE c.program_code = $1 AND c.status = ANY($3) AND EXISTS (SELECT 1 FROM claim_goods g WHERE g.claim_id = c.id)
		ORDER BY c.id`
	rawLines := make([][]any, len(lines))
	for i, l := range lines {
		r := slices.Clone(l)
		r[0], r[1] = [16]byte(t.ID), [16]byte(r[1].(uuid.UUID))
		rawLines[i] = r
	}
	for _, st := range []struct {
		name string
		f    func() (int64, error)
	}{
		{"read 1: candidates, EXPLAIN ANALYZE (server only)", func() (int64, error) { return explain(q1, t.Program, t.ID, models.ApprovedStatuses) }},
		{"read 2: goods, EXPLAIN ANALYZE (server only)", func() (int64, error) { return explain(q2, t.Program, t.ID, models.ApprovedStatuses) }},
		{"DELETE the previous draft's items, EXPLAIN ANALYZE", func() (int64, error) {
			return explain(`DELETE FROM tranche_items WHERE tranche_id = $1`, t.ID)
		}},
		{"DELETE the previous draft's lines, EXPLAIN ANALYZE", func() (int64, error) {
			return explain(`DELETE FROM tranche_lines WHERE tranche_id = $1`, t.ID)
		}},
		{"COPY tranche_lines (uuid.UUID values, as PreviewTranche)", copyLines},
		{"COPY tranche_items", copyItems},
		{"DELETE again (items, lines), tranche_*_check triggers off", func() (int64, error) {
			if _, err := tx.Exec(ctx, `ALTER TABLE tranche_lines DISABLE TRIGGER USER`); err != nil {
				return 0, err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE tranche_items DISABLE TRIGGER USER`); err != nil {
				return 0, err
			}
			if _, err := exec(`DELETE FROM tranche_items WHERE tranche_id = $1`, t.ID)(); err != nil {
				return 0, err
			}
			return exec(`DELETE FROM tranche_lines WHERE tranche_id = $1`, t.ID)()
		}},
		{"COPY tranche_lines, trigger off", copyLines},
		{"COPY tranche_items, trigger off", copyItems},
		{"DELETE again, no triggers at all (no FK checks, no cascade)", func() (int64, error) {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return 0, err
			}
			tag, err := tx.Exec(ctx, `WITH i AS (DELETE FROM tranche_items WHERE tranche_id = $1) DELETE FROM tranche_lines WHERE tranche_id = $1`, t.ID)
			return tag.RowsAffected(), err
		}},
		{"COPY tranche_lines, no triggers, ids as [16]byte", func() (int64, error) {
			return tx.CopyFrom(ctx, pgx.Identifier{"tranche_lines"}, []string{"tranche_id", "claim_id", "tier", "weight", "tier_weight",
				"offer", "already_allocated", "cap", "share", "converted", "allocated"}, pgx.CopyFromRows(rawLines))
		}},
		{"read 1 with a join on summed earlier tranches, EXPLAIN ANALYZE", func() (int64, error) {
			return explain(q1Joined, t.Program, t.ID, models.ApprovedStatuses)
		}},
	} {
		if err := step(st.name, st.f); err != nil {
			return err
		}
	}
	return nil
}

// loadCandidates reads the preview's input with the same two queries as
// models.trancheCandidates (unexported), in a read-only snapshot.
func loadCandidates(ctx context.Context, s *models.Store, t *models.Tranche) ([]rules.Candidate, map[string]string, error) {
	var candidates []rules.Candidate
	names := map[string]string{}
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT c.id,
				CASE WHEN c.approved_compensation > 0 THEN c.approved_compensation ELSE coalesce(c.estimated_loss, 0) END,
				coalesce((SELECT sum(l.allocated) FROM tranche_lines l JOIN tranches e ON e.id = l.tranche_id
					WHERE l.claim_id = c.id AND e.id <> $2 AND e.status IN ('approved','notified')), 0)
			FROM claims c
			WHERE c.program_code = $1 AND c.status = ANY($3) AND EXISTS (SELECT 1 FROM claim_goods g WHERE g.claim_id = c.id)
			ORDER BY c.id`, t.Program, t.ID, models.ApprovedStatuses)
		if err != nil {
			return err
		}
		index := map[uuid.UUID]int{}
		for rows.Next() {
			var id uuid.UUID
			var c rules.Candidate
			if err := rows.Scan(&id, &c.Weight, &c.AlreadyAllocated); err != nil {
				rows.Close()
				return err
			}
			c.ClaimID = id.String()
			index[id] = len(candidates)
			candidates = append(candidates, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT g.claim_id, g.sku, g.name, g.unit_price, g.quantity - coalesce(o.quantity, 0), g.perishable
			FROM claim_goods g
			JOIN claims c ON c.id = g.claim_id
			LEFT JOIN (SELECT i.claim_id, i.sku, sum(i.quantity) AS quantity FROM tranche_items i JOIN tranches e ON e.id = i.tranche_id
				WHERE e.program_code = $1 AND e.id <> $2 AND e.status IN ('approved','notified') GROUP BY i.claim_id, i.sku) o
				ON o.claim_id = g.claim_id AND o.sku = g.sku
			WHERE c.program_code = $1 AND c.status = ANY($3)
			ORDER BY g.claim_id, g.line`, t.Program, t.ID, models.ApprovedStatuses)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			var it rules.OfferItem
			var name string
			if err := rows.Scan(&id, &it.SKU, &name, &it.UnitPrice, &it.Quantity, &it.Perishable); err != nil {
				return err
			}
			i, found := index[id]
			if !found || it.Quantity <= 0 {
				continue
			}
			candidates[i].Items = append(candidates[i].Items, it)
			names[id.String()+"\x00"+it.SKU] = name
		}
		return rows.Err()
	})
	return candidates, names, err
}

// product is a catalogue entry the seeded goods are drawn from (won, list price).
type product struct {
	code, name string
	price      int64
	perishable bool
}

var catalogue = []product{
	{"APL5", "사과 5kg", 32_900, true}, {"PEAR7", "신고배 7.5kg", 45_000, true}, {"STR2", "설향 딸기 2kg", 24_900, true},
	{"TNG5", "제주 감귤 5kg", 19_800, true}, {"HANW1", "한우 등심 1kg", 89_000, true}, {"PORK2", "한돈 삼겹살 2kg", 38_000, true},
	{"ABAL1", "완도 전복 1kg", 65_000, true}, {"GALC", "손질 갈치 4미", 42_000, true}, {"KIMC5", "포기김치 5kg", 34_500, true},
	{"EGG30", "유정란 30구", 12_900, true}, {"MUSH", "표고버섯 1kg", 27_000, true}, {"TOFU", "손두부 10모", 15_000, true},
	{"RICE10", "유기농 쌀 10kg", 38_500, false}, {"LAVR", "재래김 선물세트", 19_800, false}, {"ANCH", "멸치 선물세트", 45_000, false},
	{"SSOIL", "참기름 350ml", 12_500, false}, {"RPEP", "고춧가루 1kg", 28_000, false}, {"HONEY", "아카시아 꿀 1kg", 42_000, false},
	{"GINS", "6년근 홍삼정 240g", 128_000, false}, {"SOYS", "전통 간장 1.8L", 16_800, false}, {"DOEN", "재래 된장 2kg", 22_000, false},
	{"TEA", "녹차 티백 100개", 9_900, false}, {"CUP", "수제 도자기 머그", 18_000, false}, {"SOCK", "양말 10켤레", 9_900, false},
	{"TOWEL", "호텔 수건 5장", 24_000, false}, {"SOAP", "천연 비누 6개", 15_600, false}, {"BAG", "가죽 토트백", 159_000, false},
	{"KNIT", "울 니트", 69_000, false}, {"BOWL", "유기 반상기 세트", 245_000, false}, {"JAM", "수제 잼 3종", 21_000, false},
}

var otherStatuses = []string{models.StatusInReview, models.StatusRejected, models.StatusPendingSecondApproval, models.StatusInfoRequested, models.StatusVerifying}

// seed writes claims [from, to) of one kind and their goods in one
// transaction, and returns the goods lines written. Claim k is the same
// whatever the chunking: its figures derive from k alone.
func seed(ctx context.Context, s *models.Store, merchant uuid.UUID, eligible bool, from, to int) (int64, error) {
	prefix, brnBase := otherPrefix, otherBRN
	if eligible {
		prefix, brnBase = eligiblePrefix, eligibleBRN
	}
	ids := make([]uuid.UUID, to-from)
	for i := range ids {
		ids[i] = uuid.New()
	}
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	var lines int64
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		// COPY fires the status-count trigger once, over all the rows (00011).
		k := from
		claims := pgx.CopyFromFunc(func() ([]any, error) {
			if k >= to {
				return nil, nil
			}
			c := newClaim(k, eligible)
			brn := rules.ValidBRNFromSeed(brnBase + k).String()
			at := base.Add(time.Duration(k) * time.Second)
			row := []any{ids[k-from], fmt.Sprintf("%s%09d", prefix, k), models.DemoProgram, merchant, brn, "상회 " + strconv.Itoa(k), "대표",
				"010-0000-0000", models.Categories[k%len(models.Categories)], models.Regions[k%len(models.Regions)], c.claimed, k%7 == 0, "004",
				sealed, "bench", "0000", blind(brn), "예금주", c.status, c.estimated, c.approved, at, at}
			k++
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"claims"}, []string{"id", "receipt_no", "program_code", "merchant_id", "brn",
			"business_name", "representative", "phone", "category", "region", "claimed_loss", "accept_offer", "bank_code",
			"account_ciphertext", "account_key_id", "account_last4", "account_blind_index", "account_holder", "status",
			"estimated_loss", "approved_compensation", "created_at", "updated_at"}, claims); err != nil {
			return fmt.Errorf("claims: %w", err)
		}
		k = from
		var items []item
		j := 0
		goods := pgx.CopyFromFunc(func() ([]any, error) {
			for j >= len(items) {
				if k >= to {
					return nil, nil
				}
				items, j = goodsOf(k), 0
				k++
			}
			it := items[j]
			j++
			lines++
			return []any{ids[k-1-from], j, it.sku, it.name, it.price, it.quantity, it.perishable}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"claim_goods"}, []string{"claim_id", "line", "sku", "name", "unit_price", "quantity", "perishable"},
			goods); err != nil {
			return fmt.Errorf("claim_goods: %w", err)
		}
		return nil
	})
	return lines, err
}

// hash is a cheap deterministic mix of k and a salt.
func hash(k, salt int) uint64 {
	x := uint64(k)*0x9e3779b97f4a7c15 + uint64(salt)*0xbf58476d1ce4e5b9 + 1
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	return x ^ x>>29
}

type claimFigures struct {
	status                       string
	claimed, estimated, approved int64
}

// newClaim gives claim k its status and losses. An approved claim's verified
// loss (its weight) is its approved compensation, a multiple of 10 won within
// the demo program's compensation cap (50,000,000), log-spread from 100,000
// won; fast-tracked (auto_approved) ones stay within the fast-track limit
// (3,000,000). One in 50 approved claims has no approved compensation and is
// weighted by its estimated loss (the query's fallback).
func newClaim(k int, eligible bool) claimFigures {
	r := hash(k, 1)
	u := float64(r>>11) / (1 << 53)
	var c claimFigures
	switch {
	case !eligible:
		c.status = otherStatuses[r%uint64(len(otherStatuses))]
		c.estimated = 100_000 + int64(u*30_000_000)
	case r%100 < 25:
		c.status = models.StatusAutoApproved
		c.estimated = int64(100_000 * math.Exp(u*math.Log(30))) // 100,000–3,000,000
		c.approved = c.estimated / 10 * 10
	default:
		c.status = models.StatusApproved
		c.estimated = int64(100_000 * math.Exp(u*math.Log(600))) // 100,000–60,000,000
		c.approved = min(c.estimated, 50_000_000) / 10 * 10
		if r%50 == 7 {
			c.approved = 0
		}
	}
	c.claimed = c.estimated * int64(100+(r>>8)%40) / 100
	return c
}

type item struct {
	sku, name  string
	price      int64
	quantity   int64
	perishable bool
}

// goodsOf gives claim k its goods: mostly 1–4 products, one claim in ten a
// larger shop with 6–12, from the catalogue at the merchant's own price (a
// multiple of 100 won, or of 10 won for one item in five) and 1–300 units
// (one in ten up to 2,000).
func goodsOf(k int) []item {
	r := hash(k, 2)
	n := 1 + int(r%4)
	if (r>>8)%10 == 0 {
		n = 6 + int((r>>16)%7)
	}
	first := int((r >> 24) % uint64(len(catalogue)))
	out := make([]item, n)
	for j := range out {
		p := catalogue[(first+j*7)%len(catalogue)]
		h := hash(k, 100+j)
		price := p.price * int64(80+h%41) / 100 // ±20%
		if (h>>8)%5 == 0 {
			price = max(10, price/10*10)
		} else {
			price = max(100, price/100*100)
		}
		q := 1 + int64((h>>16)%300)
		if (h>>32)%10 == 0 {
			q = 1 + int64((h>>40)%2000)
		}
		out[j] = item{sku: fmt.Sprintf("%s-%03d", p.code, j+1), name: p.name, price: price, quantity: q, perishable: p.perishable}
	}
	return out
}

// sealed stands in for an AES-GCM sealed account number (the schema checks its
// shape: nonce, tag and at least 10 digits); blind for its 32-byte blind index.
var sealed = make([]byte, 40)

func blind(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// resetPeakRSS resets the kernel's peak RSS (VmHWM) of this process to its
// current RSS, so peakRSS covers what follows (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM in MB: the peak since resetPeakRSS (or the start).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return maxRSS()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, found := strings.CutPrefix(line, "VmHWM:"); found {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(rest, "kB")), 64)
			return kb / 1024
		}
	}
	return maxRSS()
}

// maxRSS is the process's lifetime peak RSS in MB (getrusage; not reset by clear_refs).
func maxRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

func num(n int64) string { return rules.FormatNumber(n) }
