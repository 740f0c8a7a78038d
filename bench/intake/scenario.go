package main

// Scenarios: `intake ramp|steady|surge|storm|all [flags]`.
//
//	ramp    capacity ramp: steps of rising offered rate up to the highest
//	        step whose accepted claims have p99 ≤ -slo-p99 with no error at
//	        all (every answer 202, no 429, no 5xx, no transport error; with
//	        -step-tries n a step that misses is offered up to n times); C is
//	        that rate if it also holds for -hold (60 s, as long as a surge),
//	        else the first of 0.9×, 0.81×, … of it that does. A step or hold
//	        ends as soon as it can only miss (-stop-on-miss): an answer that
//	        is not 202, or more than 1% of its claims accepted over -slo-p99.
//	steady  -steady-factor × C (0.5) for -steady-duration: the same bar.
//	surge   -surge-factor × C (3) for -surge-duration (60 s), no retries:
//	        accepted/s ≥ -surge-min-accepted × C (0.8), every excess request
//	        answered 429 with p99 ≤ -surge-429-p99 (50 ms), no 5xx, no
//	        transport error.
//	storm   retry storm: -storm-factor × C for -storm-duration, every 429
//	        retried after its Retry-After with the same Idempotency-Key and
//	        body, and every -replay-every-th accepted claim sent once more
//	        (a client that lost the answer): every claim is accepted once, by
//	        -storm-cap, no 5xx, and each replay names the same claim.
//	resubmit merchants who press "submit" again: -resubmit-factor × C fresh
//	        claims are filed (judged like steady), then the same BRNs are sent
//	        again under new Idempotency-Keys at C for -resubmit-duration:
//	        every one is answered 409 duplicate_claim naming the claim filed
//	        first, at p99 ≤ -slo-p99, with no 429, no 5xx and nothing written.
//	all     ramp, then steady, surge and storm at the C the ramp found.
//
// steady, surge, storm and resubmit alone need -c. After each scenario the database
// check runs (every accepted claim stored, no BRN twice, every claim's outbox
// row dispatched and its workflow started, waiting up to -wait), and with
// -pgbench the PostgreSQL single-row insert rate is measured once, after the
// ramp, for the C/pgbench ratio of the same run. Everything stays on
// loopback and stops by itself: each phase is capped in count and time.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/bench/internal/loadgen"
)

var scenarioNames = []string{"ramp", "steady", "surge", "storm", "resubmit", "all"}

func isScenario(args []string) bool {
	return len(args) > 0 && slices.Contains(scenarioNames, args[0])
}

type scenarioOptions struct {
	name              string
	url, db, program  string
	c                 float64
	rampStart         float64
	rampGrowth        float64
	rampMax           float64
	step, pause       time.Duration
	warmup            time.Duration
	refine            int
	stepTries         int
	hold              time.Duration
	holdTries         int
	sloP99            time.Duration
	steadyFactor      float64
	steadyDuration    time.Duration
	surgeFactor       float64
	surgeDuration     time.Duration
	surge429P99       time.Duration
	surgeMinAccepted  float64
	stormFactor       float64
	stormDuration     time.Duration
	stormCap          time.Duration
	replayEvery       int
	resubmitFactor    float64
	resubmitDuration  time.Duration
	concurrency       int
	timeout           time.Duration
	wait              time.Duration
	pgbench           bool
	pgbenchClients    int
	pgbenchSeconds    int
	brnOffset         int64
	claimsPerMerchant int
	setupTimeout      time.Duration
	json              bool
	outboxTopic       string
	engine            string
	stopOnMiss        bool
}

func parseScenarioFlags(args []string, getenv func(string) string, stderr io.Writer) (*scenarioOptions, error) {
	o := &scenarioOptions{name: args[0]}
	fs := flag.NewFlagSet("intake "+o.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the Relief server (loopback only)")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL of the server's database (default $DATABASE_URL); required")
	fs.StringVar(&o.program, "program", "KPOST-2025-NIRS", "program code to file claims under")
	fs.Float64Var(&o.c, "c", 0, "capacity C in claims/s (steady, surge, storm; all ramps to find it)")
	fs.Float64Var(&o.rampStart, "ramp-start", 250, "first ramp step, claims/s")
	fs.Float64Var(&o.rampGrowth, "ramp-growth", 1.25, "each ramp step offers this many times the previous")
	fs.Float64Var(&o.rampMax, "ramp-max", 20000, "the ramp stops here even if every step passed")
	fs.DurationVar(&o.step, "step", 10*time.Second, "duration of each ramp step")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "before the ramp, or before the first phase of the other scenarios, offer half of -ramp-start for this long, not judged (new connections, cold caches); 0 skips it")
	fs.DurationVar(&o.pause, "pause", 3*time.Second, "quiet time between phases")
	fs.IntVar(&o.refine, "refine", 2, "after the first failing ramp step, try this many midpoints")
	fs.IntVar(&o.stepTries, "step-tries", 1, "a ramp step that misses is offered again, up to this many times in all, before it counts as missed, so that one slow moment does not end the ramp; a step that passes on a later try tends to be one the holds then miss (README, Capacity, run 34)")
	fs.DurationVar(&o.hold, "hold", 60*time.Second, "C must hold this long: the ramp's best step is offered again for this long, and 10% less each time it misses the bar; 0 takes the best step as C")
	fs.IntVar(&o.holdTries, "hold-tries", 6, "holds tried before the ramp gives up on finding C (the last at 0.9^5 = 0.59 × the best step with 6)")
	fs.BoolVar(&o.stopOnMiss, "stop-on-miss", true, "end a ramp step or hold as soon as it can only miss (an answer other than 202, or over 1% of its claims accepted slower than -slo-p99), so that a missed hold does not grow the database the next one runs on (-engine loop)")
	fs.DurationVar(&o.sloP99, "slo-p99", 100*time.Millisecond, "a ramp or steady step passes with accepted p99 at most this (and no error)")
	fs.Float64Var(&o.steadyFactor, "steady-factor", 0.5, "steady offers this × C")
	fs.DurationVar(&o.steadyDuration, "steady-duration", 60*time.Second, "how long steady lasts")
	fs.Float64Var(&o.surgeFactor, "surge-factor", 3, "surge offers this × C")
	fs.DurationVar(&o.surgeDuration, "surge-duration", 60*time.Second, "how long the surge is held")
	fs.DurationVar(&o.surge429P99, "surge-429-p99", 50*time.Millisecond, "the surge passes with 429 answers at p99 at most this")
	fs.Float64Var(&o.surgeMinAccepted, "surge-min-accepted", 0.8, "the surge passes with accepted/s at least this × C")
	fs.Float64Var(&o.stormFactor, "storm-factor", 3, "the retry storm offers this × C")
	fs.DurationVar(&o.stormDuration, "storm-duration", 20*time.Second, "how long new claims keep arriving in the storm")
	fs.DurationVar(&o.stormCap, "storm-cap", 4*time.Minute, "hard cap on the storm, retries included")
	fs.IntVar(&o.replayEvery, "replay-every", 10, "in the storm, send every Nth accepted claim again (0: never)")
	fs.Float64Var(&o.resubmitFactor, "resubmit-factor", 0.5, "resubmit first files claims at this × C")
	fs.DurationVar(&o.resubmitDuration, "resubmit-duration", 30*time.Second, "how long resubmit files, then resends at C")
	fs.StringVar(&o.engine, "engine", engineLoop, engineUsage)
	fs.IntVar(&o.concurrency, "concurrency", 4096, "generator cap on requests in flight (requests held back still count from their intended time)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout (counted as a transport error)")
	fs.DurationVar(&o.wait, "wait", 30*time.Minute, "after each scenario, how long to wait for every accepted claim to reach its workflow")
	fs.BoolVar(&o.pgbench, "pgbench", true, "measure single-row INSERTs/s with pgbench after the ramp (for the C/pgbench ratio)")
	fs.IntVar(&o.pgbenchClients, "pgbench-clients", 64, "pgbench clients (-c)")
	fs.IntVar(&o.pgbenchSeconds, "pgbench-seconds", 10, "pgbench duration (-T)")
	fs.Int64Var(&o.brnOffset, "brn-offset", -1, "first BRN counter value (default: after the highest BRN already filed in the program)")
	fs.IntVar(&o.claimsPerMerchant, "claims-per-merchant", 5000, "claims filed per merchant account")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 5*time.Minute, "time allowed for signing up the merchants of one phase")
	fs.BoolVar(&o.json, "json", false, "also print a JSON report on stdout (the human report then goes to stderr)")
	fs.StringVar(&o.outboxTopic, "outbox-topic", "claim.filed", "outbox topic that starts the claim workflow")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: intake %s [flags]\n\nScenario %q against a loopback Relief server (see `go doc ./bench/intake`).\n\n", o.name, o.name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.db == "" {
		o.db = getenv("DATABASE_URL")
	}
	switch {
	case o.db == "":
		return nil, errors.New("-db or DATABASE_URL is required: every scenario ends with the database check")
	case o.name != "ramp" && o.name != "all" && !(o.c > 0):
		return nil, fmt.Errorf("%s needs -c (the capacity found by `intake ramp`)", o.name)
	case !(o.rampStart > 0) || !(o.rampGrowth > 1) || o.rampMax < o.rampStart:
		return nil, errors.New("-ramp-start must be > 0, -ramp-growth > 1 and -ramp-max ≥ -ramp-start")
	case o.step < time.Second || o.steadyDuration < time.Second || o.surgeDuration < time.Second || o.stormDuration < time.Second || o.resubmitDuration < time.Second:
		return nil, errors.New("phase durations must be at least 1s")
	case o.warmup < 0:
		return nil, errors.New("-warmup must not be negative")
	case o.hold != 0 && o.hold < time.Second || o.holdTries < 1:
		return nil, errors.New("-hold must be 0 or at least 1s, -hold-tries at least 1")
	case o.stepTries < 1:
		return nil, errors.New("-step-tries must be at least 1")
	case o.stormCap < o.stormDuration:
		return nil, errors.New("-storm-cap must be at least -storm-duration")
	case o.concurrency < 1 || o.concurrency > 100_000:
		return nil, errors.New("-concurrency must be between 1 and 100000")
	case !validEngine(o.engine):
		return nil, errEngine
	case o.claimsPerMerchant < 1 || o.replayEvery < 0 || o.refine < 0:
		return nil, errors.New("-claims-per-merchant must be ≥ 1, -replay-every and -refine ≥ 0")
	case !(o.resubmitFactor > 0) || o.resubmitFactor > 1:
		return nil, errors.New("-resubmit-factor must be in (0, 1]: the claims are resent at C")
	}
	// Bounded count: no phase of this scenario may offer more than maxClaims
	// (for all, whose C the ramp finds, runPhase checks the others).
	for _, n := range o.phaseClaims() {
		if err := boundedPhase(n); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// phaseClaims lists the claims each phase of the chosen scenario offers at
// -c: only the phases it runs, so that `steady -c C` is not refused for a
// surge it will not offer.
func (o *scenarioOptions) phaseClaims() []float64 {
	ramp := o.rampMax * o.step.Seconds()
	switch o.name {
	case "ramp", "all":
		return []float64{ramp}
	case "steady":
		return []float64{o.c * o.steadyFactor * o.steadyDuration.Seconds()}
	case "surge":
		return []float64{o.c * o.surgeFactor * o.surgeDuration.Seconds()}
	case "storm":
		return []float64{o.c * o.stormFactor * o.stormDuration.Seconds()}
	case "resubmit":
		return []float64{o.c * o.resubmitFactor * o.resubmitDuration.Seconds()}
	}
	return nil
}

// intakeRateMargin: the suggested RELIEF_INTAKE_RATE admits this much more
// than the surge must accept, so that the limiter's own rounding and the
// claims answered after the surge's last second do not drop it under the bar
// (the surges in the README ran at 0.81·C for a bar of 0.8·C).
const intakeRateMargin = 1.0125

// suggestedIntakeRate is the RELIEF_INTAKE_RATE for a web process whose
// capacity is c claims/s, when a surge must still accept minAccepted × c.
func suggestedIntakeRate(c, minAccepted float64) int {
	return int(math.Ceil(c * minAccepted * intakeRateMargin))
}

func boundedPhase(n float64) error {
	if n > maxClaims {
		return fmt.Errorf("a phase would offer %.0f claims, more than %d: lower the rate or the duration", n, maxClaims)
	}
	return nil
}

// scenarioEnv is what the phases of one invocation share.
type scenarioEnv struct {
	o         *scenarioOptions
	client    *http.Client       // set-up calls
	raw       *loadgen.RawClient // the claims, shared by the phases
	base      string
	runID     string
	merchants []merchant
	offset    uint64
	human     io.Writer
	stderr    io.Writer
}

// phase is one open-loop run.
type phase struct {
	name        string
	rate        float64
	duration    time.Duration
	cap         time.Duration
	retry       bool
	replayEvery int
	resend      *phaseReport // send that phase's BRNs again, under new keys
	judged      bool         // a ramp step or hold: may end early once it cannot pass (-stop-on-miss)
}

// phaseReport is one phase's outcome.
type phaseReport struct {
	Name     string   `json:"name"`
	Offered  float64  `json:"offered_per_sec"`
	Seconds  float64  `json:"seconds"`
	Summary  *summary `json:"summary"`
	Pass     bool     `json:"pass"`
	Problems []string `json:"problems,omitempty"`
	Stopped  string   `json:"stopped,omitempty"` // why it ended before its last claim, when -stop-on-miss ended it
	ids      [][16]byte
	// For a resend: the first BRN counter and claim count of the phase, and
	// the id each claim was answered with (202: its claim; 409: the claim
	// named), by claim index.
	offset  uint64
	n       int
	idByIdx [][16]byte
}

// scenarioReport is the whole JSON report.
type scenarioReport struct {
	Scenario  string                  `json:"scenario"`
	URL       string                  `json:"url"`
	Program   string                  `json:"program"`
	StartedAt time.Time               `json:"started_at"`
	C         float64                 `json:"c"`
	StepC     float64                 `json:"ramp_step_c,omitempty"` // the ramp's best step, before the hold
	Phases    []*phaseReport          `json:"phases"`
	Checks    map[string]*checkResult `json:"checks"`
	Pgbench   *pgbenchResult          `json:"pgbench,omitempty"`
	Ratio     float64                 `json:"c_over_pgbench,omitempty"`
	// IntakeRate is the RELIEF_INTAKE_RATE the ramp suggests for C.
	IntakeRate int             `json:"suggested_intake_rate,omitempty"`
	Verdicts   map[string]bool `json:"verdicts"`
	OK         bool            `json:"ok"`
	Failures   []string        `json:"failures"`
}

func runScenario(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseScenarioFlags(args, getenv, stderr)
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	e := &scenarioEnv{o: o, client: loadgen.NewClient(o.concurrency), raw: raw, base: base, runID: newRunID(), human: stdout, stderr: stderr}
	if o.json {
		e.human = stderr
	}
	rep := &scenarioReport{Scenario: o.name, URL: e.base, Program: o.program, StartedAt: time.Now(), C: o.c,
		Checks: map[string]*checkResult{}, Verdicts: map[string]bool{}, Failures: []string{}}
	fmt.Fprintf(e.human, "relief intake %s → %s  program %s  run %s\n", o.name, e.base, o.program, e.runID)
	if err := e.preflight(ctx); err != nil {
		fmt.Fprintln(stderr, "intake:", err)
		return 2
	}

	fail := func(f string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(f, args...)) }
	check := func(name string, ids [][16]byte) {
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(e.human, "\ncheck after %s: %d accepted claims (waiting up to %s for their workflows)\n", name, len(ids), o.wait)
		chk, err := runCheck(ctx, o.db, o.program, o.outboxTopic, ids, o.wait, e.human)
		if err != nil {
			fail("%s: database check could not run: %v", name, err)
			return
		}
		rep.Checks[name] = chk
		printCheck(e.human, chk)
		for _, f := range chk.Failures {
			fail("%s: %s", name, f)
		}
		rep.Verdicts[name+"_check"] = len(chk.Failures) == 0
	}

	if o.name == "ramp" || o.name == "all" {
		c, ids := e.ramp(ctx, rep)
		rep.C = c
		check("ramp", ids)
		switch {
		case rep.StepC == 0:
			fail("ramp: no step passed (even %.0f/s missed the bar)", o.rampStart)
		case c == 0:
			fail("ramp: no rate held for %s (%d tries from %.0f/s)", o.hold, o.holdTries, rep.StepC)
		default:
			rep.IntakeRate = suggestedIntakeRate(c, o.surgeMinAccepted)
			fmt.Fprintf(e.human, "  surge setting: restart the server with RELIEF_INTAKE_RATE=%d (C × %.2f, a little over the surge's %.2f × C), then run surge -c %.0f\n",
				rep.IntakeRate, intakeRateMargin*o.surgeMinAccepted, o.surgeMinAccepted, c)
		}
		if o.pgbench && ctx.Err() == nil {
			fmt.Fprintf(e.human, "\npgbench: %d clients, %ds of single-row INSERTs, synchronous_commit=on …\n", o.pgbenchClients, o.pgbenchSeconds)
			pg, err := runPgbench(ctx, o.db, o.pgbenchClients, o.pgbenchSeconds)
			if err != nil {
				fail("pgbench: %v", err)
			} else {
				rep.Pgbench = pg
				if pg.TPS > 0 {
					rep.Ratio = c / pg.TPS
				}
				fmt.Fprintf(e.human, "  pgbench      %.0f single-row inserts/s (%d transactions, %d failed)\n", pg.TPS, pg.Transactions, pg.Failed)
				fmt.Fprintf(e.human, "  C            %.0f claims/s  →  C/pgbench = %.3f\n", c, rep.Ratio)
			}
		}
	}
	if o.name != "ramp" && o.name != "all" {
		// The other scenarios start from a given C, often against a server
		// nobody has filed with yet: warm it up as the ramp does.
		if ids := e.warmUp(ctx, rep, "warm-up"); len(ids) > 0 {
			check("warm-up", ids)
		}
	}
	// judged keeps a judged phase and its verdict in the report.
	judged := func(verdict string, p *phaseReport, what string) {
		rep.Phases = append(rep.Phases, p)
		rep.Verdicts[verdict] = p.Pass
		if !p.Pass {
			fail("%s: %s", what, strings.Join(p.Problems, "; "))
		}
	}
	c := rep.C
	if c > 0 && ctx.Err() == nil && (o.name == "steady" || o.name == "all") {
		p := e.runPhase(ctx, phase{name: "steady", rate: o.steadyFactor * c, duration: o.steadyDuration})
		e.judgeStep(p)
		judged("steady", p, fmt.Sprintf("steady at %.0f/s", p.Offered))
		check("steady", p.ids)
	}
	if c > 0 && ctx.Err() == nil && (o.name == "surge" || o.name == "all") {
		e.sleep(ctx, o.pause)
		p := e.runPhase(ctx, phase{name: "surge", rate: o.surgeFactor * c, duration: o.surgeDuration})
		e.judgeSurge(p, c)
		judged("surge", p, fmt.Sprintf("surge at %.0f/s", p.Offered))
		check("surge", p.ids)
	}
	if c > 0 && ctx.Err() == nil && (o.name == "storm" || o.name == "all") {
		e.sleep(ctx, o.pause)
		p := e.runPhase(ctx, phase{name: "storm", rate: o.stormFactor * c, duration: o.stormDuration, cap: o.stormCap, retry: true, replayEvery: o.replayEvery})
		e.judgeStorm(p)
		judged("storm", p, "storm")
		check("storm", p.ids)
	}
	if c > 0 && ctx.Err() == nil && o.name == "resubmit" {
		first := e.runPhase(ctx, phase{name: "resubmit: first filing", rate: o.resubmitFactor * c, duration: o.resubmitDuration})
		e.judgeStep(first)
		judged("resubmit_first_filing", first, fmt.Sprintf("first filing at %.0f/s", first.Offered))
		e.sleep(ctx, o.pause)
		p := e.runPhase(ctx, phase{name: "resubmit", rate: c, duration: time.Duration(float64(first.n) / c * float64(time.Second)), resend: first})
		e.judgeResubmit(p, first)
		judged("resubmit", p, fmt.Sprintf("resubmit at %.0f/s", p.Offered))
		check("resubmit", first.ids)
	}
	if ctx.Err() != nil {
		fail("interrupted")
	}

	rep.OK = len(rep.Failures) == 0
	e.printVerdicts(rep)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "intake:", err)
			return 2
		}
	}
	switch {
	case ctx.Err() != nil:
		return 2
	case !rep.OK:
		return 1
	}
	return 0
}

func (e *scenarioEnv) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// preflight checks the server answers and finds the first unused BRN counter.
func (e *scenarioEnv) preflight(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, body, _, err := apiCall(cctx, e.client, http.MethodGet, e.base+"/readyz", "", nil)
	if err != nil {
		return fmt.Errorf("server not reachable at %s: %w", e.base, err)
	}
	if st != http.StatusOK {
		fmt.Fprintf(e.human, "  warning      GET /readyz answered %d: %s\n", st, snippet(body))
	}
	if e.o.brnOffset >= 0 {
		e.offset = uint64(e.o.brnOffset)
		return nil
	}
	conn, err := pgx.Connect(cctx, e.o.db)
	if err != nil {
		return fmt.Errorf("connect to -db: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var top *int64
	// BRNs this tool made are (100000000 + counter) × 10 + check digit.
	if err := conn.QueryRow(cctx, `SELECT max(brn::bigint) FROM claims WHERE program_code = $1 AND brn ~ '^[1-9][0-9]{9}$'`, e.o.program).Scan(&top); err != nil {
		return fmt.Errorf("find the next free BRN: %w", err)
	}
	if top != nil && uint64(*top)/10 >= brnPrefixBase {
		e.offset = uint64(*top)/10 - brnPrefixBase + 1
	}
	fmt.Fprintf(e.human, "  BRNs         from counter %d (after the highest BRN already filed)\n", e.offset)
	return nil
}

// ensureMerchants signs up merchants until there are k.
func (e *scenarioEnv) ensureMerchants(ctx context.Context, k int) error {
	if k <= len(e.merchants) {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, e.o.setupTimeout)
	defer cancel()
	t0 := time.Now()
	more := make([]merchant, k-len(e.merchants))
	errs := make([]error, len(more))
	sem := make(chan struct{}, 4)
	done := make(chan struct{})
	for j := range more {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			more[j], errs[j] = setupMerchant(sctx, e.client, e.base, e.runID, len(e.merchants)+j)
		}()
	}
	for range more {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.merchants = append(e.merchants, more...)
	fmt.Fprintf(e.human, "  set-up       %d more merchant account(s) signed in (%s)\n", len(more), time.Since(t0).Round(time.Millisecond))
	return nil
}

// runPhase offers rate × duration fresh claims (new BRNs, new keys).
func (e *scenarioEnv) runPhase(ctx context.Context, p phase) *phaseReport {
	o := e.o
	n := max(1, int(math.Round(p.rate*p.duration.Seconds())))
	offset := e.offset
	if p.resend != nil {
		n, offset = p.resend.n, p.resend.offset
	}
	pr := &phaseReport{Name: p.name, Offered: p.rate, Seconds: p.duration.Seconds(), offset: offset, n: n}
	if err := boundedPhase(float64(n)); err != nil {
		pr.Problems = append(pr.Problems, err.Error())
		return pr
	}
	fmt.Fprintf(e.human, "\n%s: %d claims at %.0f/s over %s%s\n", p.name, n, p.rate, p.duration, map[bool]string{true: ", 429s retried after Retry-After", false: ""}[p.retry])
	brns, next, err := makeBRNs(n, offset, nil)
	if err != nil {
		pr.Problems = append(pr.Problems, err.Error())
		return pr
	}
	if p.resend == nil {
		e.offset = next
	}
	if err := e.ensureMerchants(ctx, (n+o.claimsPerMerchant-1)/o.claimsPerMerchant); err != nil {
		pr.Problems = append(pr.Problems, "set-up: "+err.Error())
		return pr
	}
	capDur := p.cap
	if capDur == 0 {
		capDur = p.duration + o.timeout + 5*time.Second
	}
	var seed idemKeys
	_, _ = rand.Read(seed[:])
	opts := &options{n: n, rate: p.rate, duration: capDur, concurrency: o.concurrency, timeout: o.timeout, program: o.program,
		retry: p.retry, replayEvery: p.replayEvery, claimsPerMerchant: o.claimsPerMerchant, engine: o.engine}
	r := &intakeRun{opts: opts, client: e.client, raw: e.raw, base: e.base, claimsPath: claimsTarget(e.base),
		bodies: newClaimBodies(o.program, brns), keys: &seed, runID: e.runID, merchants: e.merchants, perMerchant: o.claimsPerMerchant}
	r.res = newResults(n)
	if p.replayEvery > 0 {
		r.res.replayed = make([]atomic.Bool, n)
	}
	loadCtx := ctx
	if p.judged && o.stopOnMiss && r.useLoop() {
		var stop context.CancelFunc
		loadCtx, stop = context.WithCancel(ctx)
		defer stop()
		r.early = &earlyMiss{slo: o.sloP99, n: n, rate: p.rate, stop: stop}
	}
	rep := r.load(loadCtx, e.human)
	if r.setupErr != nil {
		pr.Problems = append(pr.Problems, "set-up: "+r.setupErr.Error())
	}
	sum := &summary{URL: e.base, Program: o.program, Claims: n, OfferedRate: p.rate, Concurrency: o.concurrency,
		DurationCap: capDur.String(), Retry: p.retry, Engine: engineName(r), Failures: []string{}}
	r.summarizeLoad(rep, sum)
	printLoad(e.human, sum)
	if r.early != nil && r.early.reason != "" {
		pr.Stopped = r.early.reason
		fmt.Fprintf(e.human, "  stopped      %s\n", pr.Stopped)
	}
	pr.Summary, pr.ids, pr.idByIdx = sum, r.acceptedIDs, r.res.ids
	return pr
}

// judgeStep: every answer 202 and accepted p99 within the SLO.
func (e *scenarioEnv) judgeStep(p *phaseReport) {
	s := p.Summary
	if s == nil {
		return
	}
	notBy := "answered before the cap"
	if p.Stopped != "" {
		notBy = "" // not offered: the phase had already missed
		p.Problems = append(p.Problems, "stopped "+p.Stopped)
	}
	p.expectAnswers("answers", notBy, "202")
	if s.DuplicateIDs > 0 || s.Bad202 > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d duplicate ids, %d bad 202 bodies", s.DuplicateIDs, s.Bad202))
	}
	if slo := float64(e.o.sloP99.Microseconds()) / 1000; s.LatencyAccepted.P99 > slo {
		p.Problems = append(p.Problems, fmt.Sprintf("accepted p99 %s > %s", fmtMS(s.LatencyAccepted.P99), fmtMS(slo)))
	}
	p.Pass = len(p.Problems) == 0
}

// judgeSurge: enough accepted, the excess turned away fast, nothing broken.
func (e *scenarioEnv) judgeSurge(p *phaseReport, c float64) {
	s := p.Summary
	if s == nil {
		return
	}
	if want := e.o.surgeMinAccepted * c; s.AcceptedPerSec < want {
		p.Problems = append(p.Problems, fmt.Sprintf("accepted %.0f/s < %.2f × C = %.0f/s", s.AcceptedPerSec, e.o.surgeMinAccepted, want))
	}
	if lim := float64(e.o.surge429P99.Microseconds()) / 1000; s.LatencyRejected.Count > 0 && s.LatencyRejected.P99 > lim {
		p.Problems = append(p.Problems, fmt.Sprintf("429 p99 %s > %s", fmtMS(s.LatencyRejected.P99), fmtMS(lim)))
	}
	p.expectAnswers("answers", "", "202", "429")
	if s.DuplicateIDs > 0 || s.Bad202 > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d duplicate ids, %d bad 202 bodies", s.DuplicateIDs, s.Bad202))
	}
	p.Pass = len(p.Problems) == 0
}

// judgeStorm: every claim accepted once in the end, replays consistent.
func (e *scenarioEnv) judgeStorm(p *phaseReport) {
	s := p.Summary
	if s == nil {
		return
	}
	p.expectAnswers("claims ended with", fmt.Sprintf("accepted by the %s cap", e.o.stormCap), "202")
	if s.DuplicateIDs > 0 || s.Bad202 > 0 || s.ReplayMismatch > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d duplicate ids, %d bad 202 bodies, %d replays naming another claim", s.DuplicateIDs, s.Bad202, s.ReplayMismatch))
	}
	p.Pass = len(p.Problems) == 0
}

// judgeResubmit: every resent claim answered 409 quickly, naming the claim
// its BRN got in the first filing; nothing turned away, nothing written twice.
func (e *scenarioEnv) judgeResubmit(p, first *phaseReport) {
	s := p.Summary
	if s == nil {
		return
	}
	p.expectAnswers("answers", "answered before the cap", "409")
	wrong := 0 // a 409 naming another claim than the one filed first
	for i, id := range p.idByIdx {
		if id != ([16]byte{}) && i < len(first.idByIdx) && id != first.idByIdx[i] {
			wrong++
		}
	}
	if wrong > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d answers did not name the claim filed first", wrong))
	}
	if slo := float64(e.o.sloP99.Microseconds()) / 1000; s.LatencyAll.P99 > slo {
		p.Problems = append(p.Problems, fmt.Sprintf("p99 %s > %s", fmtMS(s.LatencyAll.P99), fmtMS(slo)))
	}
	p.Pass = len(p.Problems) == 0
}

// expectAnswers records a problem for every status outside allowed ("%d
// <what> <status>"), for transport errors and, unless notBy is empty, for
// claims the phase's cap cut off ("%d claims not <notBy>").
func (p *phaseReport) expectAnswers(what, notBy string, allowed ...string) {
	s := p.Summary
	for code, n := range s.StatusCounts {
		if !slices.Contains(allowed, code) {
			p.Problems = append(p.Problems, fmt.Sprintf("%d %s %s", n, what, code))
		}
	}
	if t := sumCounts(s.TransportErrors); t > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d transport errors", t))
	}
	if notBy != "" && s.CancelledAtCap+s.NotSent > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d claims not %s", s.CancelledAtCap+s.NotSent, notBy))
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// warmUp offers half of -ramp-start for -warmup, not judged, and returns the
// accepted claims for the correctness check. A server just started opens its
// database connections, prepares its statements and fills its caches under
// its first load; that is not its capacity, nor how a claim window opens on
// a site that has been up.
func (e *scenarioEnv) warmUp(ctx context.Context, rep *scenarioReport, name string) [][16]byte {
	o := e.o
	if o.warmup <= 0 || ctx.Err() != nil {
		return nil
	}
	rate := math.Max(1, math.Round(o.rampStart/2))
	p := e.runPhase(ctx, phase{name: fmt.Sprintf("%s %.0f/s", name, rate), rate: rate, duration: o.warmup})
	rep.Phases = append(rep.Phases, p)
	fmt.Fprintf(e.human, "  warm-up      %.0f/s for %s, not judged\n", rate, o.warmup)
	e.sleep(ctx, o.pause)
	return p.ids
}

// ramp raises the offered rate step by step until a step misses the bar
// (-step-tries times), then tries midpoints; the highest rate that passed
// must then hold for -hold (the length of a surge), stepping down by a tenth
// each time it does not, and C is the rate that held. A 10 s step can pass
// on a machine that cannot keep that rate up for a minute (autovacuum,
// checkpoints and the tables' growth come in later): at a C measured only in
// 10 s steps, a 60 s hold missed the bar with accepted p99 191 ms.
func (e *scenarioEnv) ramp(ctx context.Context, rep *scenarioReport) (float64, [][16]byte) {
	o := e.o
	var ids [][16]byte
	best, worst := 0.0, 0.0
	// run offers one phase of the ramp; its claims go through the
	// correctness check whether or not the phase is judged.
	run := func(name string, rate float64, d time.Duration) *phaseReport {
		p := e.runPhase(ctx, phase{name: name, rate: rate, duration: d, judged: true})
		rep.Phases = append(rep.Phases, p)
		ids = append(ids, p.ids...)
		return p
	}
	step := func(rate float64) bool {
		rate = math.Round(rate)
		for try := 1; ; try++ {
			again := "" // names a second or later try, in the phase and the line
			if try > 1 {
				again = fmt.Sprintf(" (try %d)", try)
			}
			p := run(fmt.Sprintf("ramp %.0f/s%s", rate, again), rate, o.step)
			e.judgeStep(p)
			verdict := "PASS"
			if !p.Pass {
				verdict = "miss: " + strings.Join(p.Problems, "; ")
			}
			fmt.Fprintf(e.human, "  step         %.0f/s %s%s\n", rate, verdict, again)
			e.sleep(ctx, o.pause)
			if p.Pass || try >= o.stepTries || ctx.Err() != nil {
				return p.Pass
			}
		}
	}
	ids = append(ids, e.warmUp(ctx, rep, "ramp warm-up")...)
	for rate := o.rampStart; rate <= o.rampMax && ctx.Err() == nil; rate *= o.rampGrowth {
		if !step(rate) {
			worst = math.Round(rate)
			break
		}
		best = math.Round(rate)
	}
	for i := 0; i < o.refine && worst > 0 && ctx.Err() == nil; i++ {
		mid := math.Round((best + worst) / 2)
		if mid <= best || mid >= worst {
			break
		}
		if step(mid) {
			best = mid
		} else {
			worst = mid
		}
	}
	fmt.Fprintf(e.human, "\nbest step %.0f claims/s (accepted p99 ≤ %s and no error; next failing step %.0f/s)\n", best, o.sloP99, worst)
	rep.StepC = best
	if o.hold <= 0 || best == 0 {
		fmt.Fprintf(e.human, "C = %.0f claims/s (no hold)\n", best)
		return best, ids
	}
	e.sleep(ctx, o.pause)
	for try, rate := 0, best; try < o.holdTries && rate >= 1 && ctx.Err() == nil; try, rate = try+1, math.Round(rate*0.9) {
		d := o.hold
		if limit := time.Duration(maxClaims / rate * float64(time.Second)).Truncate(time.Second); d > limit {
			d = limit // the tool's bound on one phase's claims
		}
		p := run(fmt.Sprintf("ramp hold %.0f/s", rate), rate, d)
		e.judgeStep(p)
		if p.Pass {
			fmt.Fprintf(e.human, "  hold         %.0f/s for %s PASS\n\nC = %.0f claims/s (held for %s with accepted p99 ≤ %s and no error)\n", rate, d, rate, d, o.sloP99)
			return rate, ids
		}
		fmt.Fprintf(e.human, "  hold         %.0f/s for %s miss: %s\n", rate, d, strings.Join(p.Problems, "; "))
		e.sleep(ctx, o.pause)
	}
	fmt.Fprintf(e.human, "\nC not found: no rate held for %s\n", o.hold)
	return 0, ids
}

func (e *scenarioEnv) printVerdicts(rep *scenarioReport) {
	w := e.human
	fmt.Fprintf(w, "\n== %s summary ==\n", rep.Scenario)
	if rep.C > 0 {
		fmt.Fprintf(w, "  C                 %.0f claims/s", rep.C)
		if rep.Pgbench != nil {
			fmt.Fprintf(w, "  (pgbench %.0f inserts/s, ratio %.3f)", rep.Pgbench.TPS, rep.Ratio)
		}
		fmt.Fprintln(w)
	}
	for _, p := range rep.Phases {
		if p.Summary == nil || strings.HasPrefix(p.Name, "ramp") || strings.HasPrefix(p.Name, "warm-up") {
			continue
		}
		s := p.Summary
		fmt.Fprintf(w, "  %-8s %s  offered %.0f/s  accepted %.0f/s  p99 accepted %s  p99 429 %s  p99 all %s  5xx %d  statuses %v\n",
			p.Name, passWord(p.Pass), p.Offered, s.AcceptedPerSec, fmtMS(s.LatencyAccepted.P99), fmtMS(s.LatencyRejected.P99), fmtMS(s.LatencyAll.P99), s.Status5xx, s.StatusCounts)
	}
	for _, name := range []string{"warm-up", "ramp", "steady", "surge", "storm", "resubmit"} {
		if c, ok := rep.Checks[name]; ok {
			fmt.Fprintf(w, "  check %-7s %s  accepted %d, in DB %d, duplicate BRNs %d, dispatched %d, reached workflow %d\n",
				name, passWord(len(c.Failures) == 0), c.Accepted, c.Found, c.DuplicateBRNs, c.Dispatched, c.Reached)
		}
	}
	if len(rep.Failures) == 0 {
		fmt.Fprintln(w, "\nOK")
		return
	}
	fmt.Fprintln(w, "\nFAILED:")
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "  -", f)
	}
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
