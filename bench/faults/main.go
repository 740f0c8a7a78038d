// Command faults runs Relief's fault drills against a private copy of the
// whole system on loopback, and prints PASS or FAIL with counts for each:
//
//	web-kill            kill -9 `relief serve` under claim load; clients retry with the same keys
//	postgres-stop       stop PostgreSQL in immediate mode under load, then start it again
//	temporal-restart    stop the Temporal server under load, then start it again
//	dispatcher-crash    crash the outbox dispatcher between starting workflows and marking rows
//	worker-kill-payout  kill -9 `relief worker` in the middle of a payout batch
//
// Run it with one command from the repository root:
//
//	make faults
//
// which builds bin/relief and runs
//
//	go run ./bench/faults -relief ./bin/relief
//
// Useful flags: -only web-kill,postgres-stop runs some drills; -duration sets
// how long each load runs; -v shows progress; -keep keeps the temp dir with
// every process's log. The whole run stops by itself at -timeout (default
// 10m), each drill at -drill-timeout. The exit status is 1 when any drill
// fails.
//
// Everything runs under one temp dir and on 127.0.0.1 only: a private
// PostgreSQL cluster started from the machine's PostgreSQL binaries
// (models/pgcluster, as `relief dev` does; as root it runs as the postgres
// user), the embedded Temporal server of `relief dev` (workflows/devserver,
// SQLite file) in a child process of this tool, the sandbox bank
// (`relief banksim`), and `relief serve` (web + outbox dispatcher) and
// `relief worker` as separate processes, each in its own process group so it
// can be killed alone. Nothing is downloaded. All processes and the temp dir
// are removed on exit, including after a failure, a timeout or Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	relief       string
	only         string
	duration     time.Duration
	rate         float64
	outage       time.Duration
	timeout      time.Duration
	drillTimeout time.Duration
	settle       time.Duration
	maxOutageP99 time.Duration
	payouts      int
	payoutWait   time.Duration
	crashClaims  int
	keep         bool
	verbose      bool
}

type drill struct {
	name string
	run  func(ctx context.Context, e *env, o *options, r *result)
}

var drills = []drill{
	{"web-kill", drillWebKill},
	{"postgres-stop", drillPostgresStop},
	{"temporal-restart", drillTemporalRestart},
	{"dispatcher-crash", drillDispatcherCrash},
	{"worker-kill-payout", drillWorkerKillPayout},
}

// result is one drill's verdict.
type result struct {
	name     string
	failures []string
	details  []string
	counts   string
	took     time.Duration
	out      io.Writer
	verbose  bool
}

func (r *result) pass() bool { return len(r.failures) == 0 }

func (r *result) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	if r.verbose {
		fmt.Fprintf(r.out, "  ! %s\n", msg)
	}
}

func (r *result) detail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.details = append(r.details, msg)
	if r.verbose {
		fmt.Fprintf(r.out, "  · %s\n", msg)
	}
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-internal" {
		os.Exit(runInternal(os.Args[2], os.Args[3:]))
	}
	os.Exit(run())
}

func run() int {
	o := &options{}
	flag.StringVar(&o.relief, "relief", "./bin/relief", "the relief binary (make build)")
	flag.StringVar(&o.only, "only", "", "comma-separated drills to run (default all): "+drillNames())
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each load drill offers claims")
	flag.Float64Var(&o.rate, "rate", 50, "claims per second offered by the load drills")
	flag.DurationVar(&o.outage, "outage", 5*time.Second, "how long PostgreSQL and Temporal stay down")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "deadline for the whole run, setup included")
	flag.DurationVar(&o.drillTimeout, "drill-timeout", 4*time.Minute, "deadline for each drill")
	flag.DurationVar(&o.settle, "settle", 2*time.Minute, "how long to wait for every claim's workflow after a drill")
	flag.DurationVar(&o.maxOutageP99, "max-outage-p99", 2*time.Second, "slowest acceptable p99 answer while PostgreSQL is down")
	flag.IntVar(&o.payouts, "payouts", 300, "payouts in the worker-kill-payout batch")
	flag.DurationVar(&o.payoutWait, "payout-wait", 3*time.Minute, "how long the payout batch may take after the worker restart")
	flag.IntVar(&o.crashClaims, "crash-claims", 40, "claims the crashing dispatcher takes")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (logs, data) after the run")
	flag.BoolVar(&o.verbose, "v", false, "print progress")
	flag.Parse()
	out := os.Stdout

	selected, err := selectDrills(o.only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	relief, err := filepath.Abs(o.relief)
	if err == nil {
		_, err = os.Stat(relief)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: relief binary: %v (run make build, or pass -relief)\n", err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "relief-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	e := &env{dir: dir, relief: relief, self: self, namespace: "default", verbose: o.verbose, out: out}
	defer func() {
		e.close()
		if o.keep {
			fmt.Fprintf(out, "kept %s (process logs: *.log)\n", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()

	fmt.Fprintf(out, "relief fault drills: %s (loopback only, deadline %v)\n", strings.Join(names(selected), ", "), o.timeout)
	t0 := time.Now()
	if err := setupEnv(ctx, e); err != nil {
		fmt.Fprintf(out, "FAIL setup: %v\n", err)
		for _, d := range selected {
			fmt.Fprintf(out, "FAIL %s: not run (setup failed)\n", d.name)
		}
		printLogTails(out, e)
		return 1
	}
	fmt.Fprintf(out, "setup: PostgreSQL 127.0.0.1:%d, Temporal %s, web %s, bank %s (%.1fs)\n",
		e.cluster.Port(), e.tempAddr, e.base, e.bankURL, time.Since(t0).Seconds())

	var results []*result
	for _, d := range selected {
		r := &result{name: d.name, out: out, verbose: o.verbose}
		results = append(results, r)
		if ctx.Err() != nil {
			r.fail("not run: %v", context.Cause(ctx))
			printResult(out, r)
			continue
		}
		if o.verbose {
			fmt.Fprintf(out, "-- %s\n", d.name)
		}
		start := time.Now()
		dctx, dcancel := context.WithTimeout(ctx, o.drillTimeout)
		if err := e.heal(dctx); err != nil {
			r.fail("system not healthy before the drill: %v", err)
		} else {
			d.run(dctx, e, o, r)
			if dctx.Err() != nil {
				r.fail("drill cut off: %v", dctx.Err())
			}
		}
		dcancel()
		r.took = time.Since(start)
		printResult(out, r)
	}

	failed := 0
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDRILL\tRESULT\tTIME\tCOUNTS")
	for _, r := range results {
		verdict := "PASS"
		if !r.pass() {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", r.name, verdict, r.took.Seconds(), r.counts)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d of %d drills passed in %.1fs\n", len(results)-failed, len(results), time.Since(t0).Seconds())
	if failed > 0 {
		printLogTails(out, e)
		return 1
	}
	return 0
}

func printResult(out io.Writer, r *result) {
	verdict := "PASS"
	if !r.pass() {
		verdict = "FAIL"
	}
	counts := r.counts
	if counts == "" {
		counts = "-"
	}
	fmt.Fprintf(out, "%s %s: %s\n", verdict, r.name, counts)
	for _, d := range r.details {
		fmt.Fprintf(out, "    %s\n", d)
	}
	for _, f := range r.failures {
		fmt.Fprintf(out, "    FAILED: %s\n", f)
	}
}

// printLogTails shows the end of the process logs that report errors.
func printLogTails(out io.Writer, e *env) {
	logs, _ := filepath.Glob(filepath.Join(e.dir, "*.log"))
	logs = append(logs, filepath.Join(e.dir, "postgres", "postgres.log"))
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		var bad []string
		for _, l := range lines {
			ll := strings.ToLower(l)
			if strings.Contains(ll, "error") || strings.Contains(ll, "panic") || strings.Contains(ll, "fatal") {
				bad = append(bad, l)
			}
		}
		if len(bad) == 0 {
			continue
		}
		if len(bad) > 5 {
			bad = bad[len(bad)-5:]
		}
		fmt.Fprintf(out, "-- last errors in %s:\n", filepath.Base(path))
		for _, l := range bad {
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			fmt.Fprintf(out, "   %s\n", l)
		}
	}
}

func selectDrills(only string) ([]drill, error) {
	if strings.TrimSpace(only) == "" {
		return drills, nil
	}
	var out []drill
	for name := range strings.SplitSeq(only, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(drills, func(d drill) bool { return d.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown drill %q (drills: %s)", name, drillNames())
		}
		out = append(out, drills[i])
	}
	if len(out) == 0 {
		return nil, errors.New("-only names no drill")
	}
	return out, nil
}

func names(ds []drill) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.name
	}
	return out
}

func drillNames() string { return strings.Join(names(drills), ", ") }
