// Command intake is a load tool for Relief's claim intake (POST /api/v1/claims).
//
// # What it does
//
//  1. Signs up fresh merchant accounts (one per -claims-per-merchant claims)
//     and logs each in for a session cookie.
//  2. Offers -n claims in an open loop at -rate per second: claim i is due at
//     start + i/rate, whatever the server does, and its latency is measured
//     from that intended time (no coordinated omission). At most -concurrency
//     requests are in flight; a claim held back by that cap still counts from
//     its intended time. The run stops by itself at -duration.
//  3. Each claim is a valid body (distinct BRN with a correct NTS check digit,
//     KB국민 account, one or two goods lines) with its own Idempotency-Key.
//     202 is accepted; 429 is recorded and, with -retry, resent after
//     Retry-After with the same key and body.
//  4. Prints offered rate, achieved accepted/s, p50/p95/p99/p99.9/max latency,
//     counts per status code and per transport error.
//  5. With -db: checks that every accepted claim is in the claims table, that
//     no BRN has two claims in the program, and (waiting up to -wait) that
//     every accepted claim was dispatched from the outbox and reached its
//     workflow ('verifying' on its timeline). Exits 1 when a check fails.
//  6. With -pgbench (default on with -db): after the run, measures durable
//     single-row INSERTs/s with the machine's pgbench on the same database and
//     prints the ratio of our accepted/s to it.
//
// Claims are sent with a lean HTTP/1.1 keep-alive client (loadgen.RawClient:
// the calling goroutine writes and reads, no per-connection goroutines), so
// the tool's own CPU does not starve the server it measures on the same
// machine; set-up calls use net/http.
//
// The tool only sends load to loopback addresses (127.0.0.0/8, ::1,
// localhost); any other -url is refused, and its dialers refuse to connect
// anywhere else. It always ends by itself: set-up within -setup-timeout, the
// load within -duration (claims in flight at the cap are cancelled and
// reported), the workflow wait within -wait, pgbench within -pgbench-seconds
// plus two minutes. -db must be the database the server under test writes
// to; pgbench creates and drops its own scratch table bench_pgbench_insert
// there.
//
// The tests need no server; go test also runs the whole tool against a
// scratch PostgreSQL (its own schema, dropped afterwards) when
// INTAKE_SCRATCH_DATABASE_URL is set.
//
// # Examples
//
// Smoke test against `relief dev` on the default address:
//
//	go run ./bench/intake -n 200 -rate 50
//
// A surge with the correctness check and the PostgreSQL comparison:
//
//	DATABASE_URL=postgres://relief@127.0.0.1:5432/relief?sslmode=disable \
//	  go run ./bench/intake -n 20000 -rate 1000 -brn-offset 100000 -wait 2m
//
// Find the knee: offer more than the server admits and let clients retry 429s:
//
//	go run ./bench/intake -n 60000 -rate 3000 -concurrency 512 -retry -db "$DATABASE_URL" -pgbench=false
//
// Machine-readable summary on stdout (the human report goes to stderr):
//
//	go run ./bench/intake -n 5000 -rate 500 -json > intake.json
//
// A program that staggers filing days by the BRN's last digit:
//
//	go run ./bench/intake -n 2000 -brn-last-digits 1,6
//
// Each run needs BRNs that no earlier run used in the same program (one claim
// per BRN per program), so pass the "next -brn-offset" the previous run
// printed, or any offset far enough away. Exit status: 0 all good, 1 a check
// failed or nothing was accepted, 2 usage, set-up or pgbench error, or an
// interrupt.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relief/relief/bench/internal/loadgen"
)

type options struct {
	url               string
	n                 int
	rate              float64
	duration          time.Duration
	concurrency       int
	timeout           time.Duration
	program           string
	db                string
	pgbench           bool
	pgbenchClients    int
	pgbenchSeconds    int
	brnOffset         uint64
	brnLastDigits     []int
	claimsPerMerchant int
	retry             bool
	replayEvery       int
	wait              time.Duration
	outboxTopic       string
	setupTimeout      time.Duration
	json              bool
	engine            string
	timeline          string
}

const maxClaims = 1_000_000

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("intake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the Relief server (loopback only)")
	fs.IntVar(&o.n, "n", 2000, "number of claims to offer (max 1,000,000)")
	fs.Float64Var(&o.rate, "rate", 500, "offered claims per second (open loop)")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "hard cap on the load phase; the tool stops offering and cancels what is in flight")
	fs.IntVar(&o.concurrency, "concurrency", 256, "maximum requests in flight")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout (counted as a transport error)")
	fs.StringVar(&o.program, "program", "KPOST-2025-NIRS", "program code to file claims under")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL for the correctness check and pgbench (default $DATABASE_URL)")
	fs.BoolVar(&o.pgbench, "pgbench", false, "after the run, measure single-row INSERTs/s with pgbench on -db (default true when -db is set)")
	fs.IntVar(&o.pgbenchClients, "pgbench-clients", 64, "pgbench clients (-c)")
	fs.IntVar(&o.pgbenchSeconds, "pgbench-seconds", 10, "pgbench duration (-T)")
	fs.Uint64Var(&o.brnOffset, "brn-offset", 0, "first BRN counter value; use a different range per run")
	lastDigits := fs.String("brn-last-digits", "", "only use BRNs ending in these digits, e.g. 1,6 (staggered filing days)")
	fs.IntVar(&o.claimsPerMerchant, "claims-per-merchant", 1000, "claims filed per fresh merchant account")
	fs.BoolVar(&o.retry, "retry", false, "on 429, wait Retry-After and resend the same Idempotency-Key and body")
	fs.IntVar(&o.replayEvery, "replay-every", 0, "send every Nth claim again after its 202, same key and body (a client that lost the answer); the replay must name the same claim")
	fs.DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for accepted claims to reach their workflow (with -db)")
	fs.StringVar(&o.outboxTopic, "outbox-topic", "claim.filed", "outbox topic that starts the claim workflow (empty: any topic)")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 2*time.Minute, "time allowed for signing up and logging in the merchants")
	fs.BoolVar(&o.json, "json", false, "also print a JSON summary on stdout (the human report then goes to stderr)")
	fs.StringVar(&o.timeline, "timeline", "", "write every claim's answer to this CSV file (unix_ms due, latency_ms, status), to match slow moments with what the server was doing")
	fs.StringVar(&o.engine, "engine", engineLoop, engineUsage)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: intake [flags]\n\nOpen-loop load test of POST /api/v1/claims against a loopback Relief server.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.db == "" {
		o.db = getenv("DATABASE_URL")
	}
	pgbenchSet := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "pgbench" {
			pgbenchSet = true
		}
	})
	if !pgbenchSet {
		o.pgbench = o.db != ""
	}
	var err error
	if o.brnLastDigits, err = parseDigitList(*lastDigits); err != nil {
		return nil, fmt.Errorf("-brn-last-digits: %w", err)
	}
	switch {
	case o.n < 1 || o.n > maxClaims:
		return nil, fmt.Errorf("-n must be between 1 and %d", maxClaims)
	case !(o.rate > 0) || o.rate > 1e6:
		return nil, errors.New("-rate must be > 0 and at most 1,000,000 per second")
	case o.concurrency < 1 || o.concurrency > 100_000:
		return nil, errors.New("-concurrency must be between 1 and 100000")
	case !validEngine(o.engine):
		return nil, errEngine
	case o.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case o.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	case o.wait < 0:
		return nil, errors.New("-wait must not be negative")
	case o.setupTimeout <= 0:
		return nil, errors.New("-setup-timeout must be positive")
	case o.replayEvery < 0:
		return nil, errors.New("-replay-every must not be negative")
	case o.claimsPerMerchant < 1:
		return nil, errors.New("-claims-per-merchant must be at least 1")
	case o.program == "":
		return nil, errors.New("-program must not be empty")
	case o.pgbench && o.db == "":
		return nil, errors.New("-pgbench needs -db or DATABASE_URL")
	case o.pgbench && (o.pgbenchClients < 1 || o.pgbenchClients > 10_000):
		return nil, errors.New("-pgbench-clients must be between 1 and 10000")
	case o.pgbench && (o.pgbenchSeconds < 1 || o.pgbenchSeconds > 3600):
		return nil, errors.New("-pgbench-seconds must be between 1 and 3600")
	}
	return o, nil
}

// redactDB names a database URL without its credentials.
func redactDB(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.Host == "" {
		return "(connection string)"
	}
	return u.Host + u.Path
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("0102t150405") + "-" + hex.EncodeToString(b[:])
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if isScenario(args) {
		return runScenario(args, getenv, stdout, stderr)
	}
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 2
	}
	base, raw, err := openTarget(o.url, o.concurrency, o.timeout)
	if err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 2
	}
	defer raw.CloseIdle()
	human := stdout
	if o.json {
		human = stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process as usual
	}()

	brns, nextOffset, err := makeBRNs(o.n, o.brnOffset, o.brnLastDigits)
	if err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 2
	}
	var seed idemKeys
	_, _ = rand.Read(seed[:])
	r := &intakeRun{
		opts:       o,
		client:     loadgen.NewClient(o.concurrency),
		raw:        raw,
		base:       base,
		claimsPath: claimsTarget(base),
		bodies:     newClaimBodies(o.program, brns),
		keys:       &seed,
		runID:      newRunID(),
	}
	r.res = newResults(o.n)
	if o.replayEvery > 0 {
		r.res.replayed = make([]atomic.Bool, o.n)
	}

	sum := &summary{
		URL: base, Program: o.program, Claims: o.n, OfferedRate: o.rate,
		Concurrency: o.concurrency, DurationCap: o.duration.String(), Retry: o.retry,
		BRNOffset: o.brnOffset, NextBRNOffset: nextOffset, Failures: []string{},
	}

	// Set-up: is the server there, then fresh merchants with sessions.
	fmt.Fprintf(human, "relief intake bench → %s  program %s  run %s\n", base, o.program, r.runID)
	if err := r.preflight(ctx, human); err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 2
	}
	// Only as many merchants as the claims that can be offered before the cap.
	offerable := min(o.n, int(o.rate*o.duration.Seconds())+1)
	k := (offerable + o.claimsPerMerchant - 1) / o.claimsPerMerchant
	sctx, cancel := context.WithTimeout(ctx, o.setupTimeout)
	t0 := time.Now()
	r.merchants, err = setupMerchants(sctx, r.client, base, r.runID, k)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "intake: set-up:", err)
		return 2
	}
	r.perMerchant = o.claimsPerMerchant
	fmt.Fprintf(human, "  set-up       %d merchant account(s) signed up and logged in (%s)\n", k, time.Since(t0).Round(time.Millisecond))
	r.checkProgram(ctx, human)

	planned := time.Duration(float64(o.n) / o.rate * float64(time.Second))
	if planned > o.duration {
		fmt.Fprintf(human, "  note         %d claims at %.1f/s need %s, more than -duration %s: only about %d will be offered\n",
			o.n, o.rate, planned.Round(time.Millisecond), o.duration, int(o.rate*o.duration.Seconds()))
	}

	sum.Engine = engineName(r)
	rep := r.load(ctx, human)
	if r.setupErr != nil {
		fmt.Fprintln(stderr, "intake: opening the load's connections:", r.setupErr)
		return 2
	}
	r.summarizeLoad(rep, sum)
	printLoad(human, sum)
	if o.timeline != "" {
		if err := writeTimeline(o.timeline, rep, r.res, o.rate); err != nil {
			fmt.Fprintln(stderr, "intake: -timeline:", err)
			return 2
		}
		fmt.Fprintf(human, "  timeline     %s\n", o.timeline)
	}

	failed := sum.Accepted == 0
	if failed {
		sum.Failures = append(sum.Failures, "no claim was accepted")
	}
	if sum.DuplicateIDs > 0 {
		failed = true
		sum.Failures = append(sum.Failures, fmt.Sprintf("%d accepted claims share an id with another accepted claim", sum.DuplicateIDs))
	}
	if sum.ReplayMismatch > 0 {
		failed = true
		sum.Failures = append(sum.Failures, fmt.Sprintf("%d replays (same key, same body) were answered with another claim", sum.ReplayMismatch))
	}
	if sum.Bad202 > 0 {
		failed = true
		sum.Failures = append(sum.Failures, fmt.Sprintf("%d 202 answers had no usable {id, receipt_no}", sum.Bad202))
	}
	toolErr := false

	if o.db != "" && ctx.Err() == nil {
		fmt.Fprintf(human, "\ncorrectness check on %s (waiting up to %s for workflows)\n", redactDB(o.db), o.wait)
		chk, err := runCheck(ctx, o.db, o.program, o.outboxTopic, r.acceptedIDs, o.wait, human)
		if err != nil {
			fmt.Fprintln(stderr, "intake: correctness check:", err)
			sum.Failures = append(sum.Failures, "correctness check could not run: "+err.Error())
			failed = true
		} else {
			sum.Check = chk
			printCheck(human, chk)
			if len(chk.Failures) > 0 {
				failed = true
				sum.Failures = append(sum.Failures, chk.Failures...)
			}
		}
	}

	if o.pgbench && ctx.Err() == nil {
		fmt.Fprintf(human, "\npgbench: %d clients, -j %d, %ds of single-row INSERTs, synchronous_commit=on …\n",
			o.pgbenchClients, min(2, o.pgbenchClients), o.pgbenchSeconds)
		pg, err := runPgbench(ctx, o.db, o.pgbenchClients, o.pgbenchSeconds)
		if err != nil {
			fmt.Fprintln(stderr, "intake: pgbench:", err)
			sum.Failures = append(sum.Failures, "pgbench: "+err.Error())
			toolErr = true
		}
		if pg != nil {
			sum.Pgbench = pg
			if pg.TPS > 0 {
				sum.RatioToPgbench = sum.AcceptedPerSec / pg.TPS
			}
			printPgbench(human, sum)
		}
	}

	if ctx.Err() != nil {
		sum.Failures = append(sum.Failures, "interrupted")
		toolErr = true
	}
	sum.OK = !failed && !toolErr
	if len(sum.Failures) > 0 {
		fmt.Fprintln(human, "\nFAILED:")
		for _, f := range sum.Failures {
			fmt.Fprintln(human, "  -", f)
		}
	} else {
		fmt.Fprintln(human, "\nOK")
	}
	fmt.Fprintf(human, "next -brn-offset %d\n", nextOffset)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(stderr, "intake:", err)
			return 2
		}
	}
	switch {
	case failed:
		return 1
	case toolErr:
		return 2
	}
	return 0
}
