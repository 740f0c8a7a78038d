package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgbenchTable is the scratch table the pgbench script inserts into. It is
// created before pgbench runs and dropped afterwards.
const pgbenchTable = "bench_pgbench_insert"

// pgbenchScript is one durable single-row INSERT per transaction, with a
// payload about the size of a claim body.
const pgbenchScript = `\set brn random(1000000000, 9999999999)
INSERT INTO ` + pgbenchTable + ` (brn, payload) VALUES (:brn::text, repeat('x', 400));
`

type pgbenchResult struct {
	Binary       string  `json:"binary"`
	Clients      int     `json:"clients"`
	Threads      int     `json:"threads"`
	Seconds      int     `json:"seconds"`
	TPS          float64 `json:"inserts_per_sec"`
	Transactions int64   `json:"transactions"`
	Failed       int64   `json:"failed_transactions"`
}

// findPgbench looks in PATH, then in /usr/lib/postgresql/<version>/bin,
// newest major version first.
func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	major := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(matches, func(a, b string) int { return major(b) - major(a) })
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode()&0o111 != 0 {
			return m, nil
		}
	}
	return "", errors.New("pgbench not found in PATH or /usr/lib/postgresql/*/bin (install postgresql-client or postgresql-contrib)")
}

// libpqConn turns a DATABASE_URL into a connection string libpq accepts
// plus a password to pass through PGPASSWORD rather than the command line.
// pgx-only URL parameters (pool_*, statement cache and exec mode settings)
// are dropped because libpq rejects unknown URI parameters. Key=value
// strings are passed through unchanged.
func libpqConn(dbURL string) (conn, password string, err error) {
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return dbURL, "", nil
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", "", fmt.Errorf("parse -db: %w", err)
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			password = pw
			u.User = url.User(u.User.Username())
		}
	}
	q := u.Query()
	for k := range q {
		switch {
		case strings.HasPrefix(k, "pool_"), k == "statement_cache_capacity", k == "description_cache_capacity",
			k == "default_query_exec_mode", k == "min_read_buffer_size", k == "prefer_simple_protocol":
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), password, nil
}

var (
	tpsExcl = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection`)
	tpsAny  = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	txDone  = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	txFail  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// parsePgbench reads the summary pgbench prints. It prefers the tps figure
// without connection set-up time, as printed by pgbench 14 and later
// ("tps = N (without initial connection time)"; older versions say
// "excluding connections establishing").
func parsePgbench(out string, res *pgbenchResult) error {
	m := tpsExcl.FindStringSubmatch(out)
	if m == nil {
		m = tpsAny.FindStringSubmatch(out)
	}
	if m == nil {
		return errors.New("no \"tps = N\" line in pgbench output")
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return fmt.Errorf("tps %q: %w", m[1], err)
	}
	res.TPS = tps
	if m := txDone.FindStringSubmatch(out); m != nil {
		res.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := txFail.FindStringSubmatch(out); m != nil {
		res.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return nil
}

// runPgbench measures durable single-row inserts per second on the same
// database: it creates the scratch table, runs
// `pgbench -n -c clients -j 2 -T seconds -f script` with synchronous_commit
// forced on, and drops the table again (also when pgbench fails).
func runPgbench(ctx context.Context, dbURL string, clients, seconds int) (res *pgbenchResult, err error) {
	bin, err := findPgbench()
	if err != nil {
		return nil, err
	}
	connStr, password, err := libpqConn(dbURL)
	if err != nil {
		return nil, err
	}

	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := pgx.Connect(cctx, dbURL)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to -db: %w", err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer conn.Close(cleanupCtx)
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+pgbenchTable); err != nil {
		return nil, fmt.Errorf("drop old scratch table: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE `+pgbenchTable+` (id bigserial primary key, brn text, payload text, created_at timestamptz default now())`); err != nil {
		return nil, fmt.Errorf("create scratch table: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(cleanupCtx, 30*time.Second)
		defer cancel()
		if _, derr := conn.Exec(dctx, `DROP TABLE IF EXISTS `+pgbenchTable); derr != nil && err == nil {
			err = fmt.Errorf("drop scratch table %s: %w", pgbenchTable, derr)
		}
	}()

	dir, err := os.MkdirTemp("", "relief-pgbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o600); err != nil {
		return nil, err
	}

	res = &pgbenchResult{Binary: bin, Clients: clients, Threads: min(2, clients), Seconds: seconds}
	pctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(pctx, bin, "-n",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(res.Threads),
		"-T", strconv.Itoa(seconds), "-f", script, connStr)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c synchronous_commit=on")
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pgbench: %w: %s", err, snippet(stderr.Bytes()))
	}
	if err := parsePgbench(stdout.String(), res); err != nil {
		return nil, fmt.Errorf("%w; stderr: %s", err, snippet(stderr.Bytes()))
	}
	return res, nil
}
