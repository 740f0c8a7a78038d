// Package pgtest gives integration tests a freshly migrated PostgreSQL
// database each. A test binary starts one private cluster (see pgcluster),
// migrates a template database once, and every NewDB copies the template,
// which takes milliseconds instead of a migration run per test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.NewDB(t)
//		...
//	}
//
// With RELIEF_TEST_DATABASE_URL set (a postgres:// URL of a role allowed to
// create databases), the databases are made on that server instead.
//
// pgtest imports models, so tests of package models itself must live in
// package models_test to use it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
)

// EnvDatabaseURL names the variable that points the tests at an external server.
const EnvDatabaseURL = "RELIEF_TEST_DATABASE_URL"

// tempPrefix names the cluster directories in os.TempDir, so a later test
// binary can find and remove those a crashed one left behind.
const tempPrefix = "relief-pgtest-"

var (
	cluster  *pgcluster.Cluster
	server   *url.URL // any database on the server; urlFor swaps the path
	template string
	prefix   string // unique per test binary: names never collide on a shared server
	seq      atomic.Int64
)

// Main starts the database server, migrates the template, runs the tests,
// tears everything down and exits. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	teardown, err := setup(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: teardown:", err)
	}
	return code
}

func setup(ctx context.Context) (teardown func() error, err error) {
	prefix = "t" + randomHex(4)
	if ext := os.Getenv(EnvDatabaseURL); ext != "" {
		if server, err = url.Parse(ext); err != nil || (server.Scheme != "postgres" && server.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDatabaseURL)
		}
		template = prefix + "_template"
		// The server outlives us: leave nothing behind.
		teardown = func() error {
			_ = adminExec(context.Background(), "ALTER DATABASE "+quote(template)+" IS_TEMPLATE false") // fails when absent
			return adminExec(context.Background(), "DROP DATABASE IF EXISTS "+quote(template)+" WITH (FORCE)")
		}
	} else {
		sweepAbandoned()
		dir, err := os.MkdirTemp("", tempPrefix)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		if cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir, NoSync: true}); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		server, _ = url.Parse(cluster.URL("postgres"))
		template = "relief_template"
		teardown = func() error {
			return errors.Join(cluster.Stop(context.Background()), os.RemoveAll(dir))
		}
	}

	err = pgcluster.CreateDatabase(ctx, server.String(), template, "")
	if err == nil {
		err = models.Migrate(ctx, urlFor(template))
	}
	if err == nil {
		// A template nobody can connect to can always be copied: CREATE
		// DATABASE fails while another session is connected to its source.
		err = adminExec(ctx, "ALTER DATABASE "+quote(template)+" IS_TEMPLATE true ALLOW_CONNECTIONS false")
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("template database: %w", err), teardown())
	}
	return teardown, nil
}

// Cluster is the cluster the tests run on, for fault drills (StopImmediate,
// Restart); nil when RELIEF_TEST_DATABASE_URL points elsewhere.
func Cluster() *pgcluster.Cluster { return cluster }

// NewDB creates a fully migrated database for this test alone, drops it when
// the test ends, and returns its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	if server == nil {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain")
	}
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pgcluster.CreateDatabase(ctx, server.String(), name, template); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// FORCE ends sessions the test left open (an unclosed pool, say).
		if err := adminExec(context.Background(), "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return urlFor(name)
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// dbName is unique and still tells which test made it, for anyone inspecting a server.
func dbName(test string) string {
	name := fmt.Sprintf("%s_%d_%s", prefix, seq.Add(1), nonIdent.ReplaceAllString(strings.ToLower(test), "_"))
	return strings.TrimRight(name[:min(len(name), 63)], "_") // 63: PostgreSQL's identifier limit
}

func urlFor(db string) string {
	u := *server
	u.Path = "/" + db
	return u.String()
}

func adminExec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, server.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sweepAbandoned stops and removes clusters of test binaries that died
// without tearing down (a panic or `go test -timeout` skips the end of Main).
func sweepAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // its owner is still setting it up
		}
		if pid, _ := strconv.Atoi(string(owner)); pid <= 0 || alive(pid) {
			continue
		}
		if err := pgcluster.StopDir(dir); err != nil {
			continue // leave it to a human rather than delete a live cluster's files
		}
		_ = os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
