package pgcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func start(t *testing.T, dir string) *Cluster {
	t.Helper()
	t0 := time.Now()
	c, err := Start(t.Context(), Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func exec1(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	c := start(t, dir)
	exec1(t, c.URL(DefaultDatabase), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)")
	// PostgreSQL shows the setting in the largest unit that divides it.
	mb := sharedBuffersMB(memTotal())
	sharedBuffers := fmt.Sprintf("%dMB", mb)
	if mb%1024 == 0 {
		sharedBuffers = fmt.Sprintf("%dGB", mb/1024)
	}
	for name, want := range map[string]string{"fsync": "on", "synchronous_commit": "on", "max_connections": "200", "listen_addresses": "127.0.0.1",
		"shared_buffers": sharedBuffers, "max_wal_size": "16GB", "min_wal_size": "2GB", "wal_init_zero": "off", "wal_compression": c.walCompression()} {
		var got string
		conn, err := pgx.Connect(t.Context(), c.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, err, want)
		}
		conn.Close(t.Context())
	}

	// A new process finding the server still running adopts it.
	again := start(t, dir)
	if again.Port() != c.Port() {
		t.Fatalf("adopted port %d, want %d", again.Port(), c.Port())
	}

	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c2 := start(t, dir)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("second start took %v, want < 3s", d)
	}
	if c2.Port() != c.Port() {
		t.Errorf("second start on port %d, want the recorded %d", c2.Port(), c.Port())
	}
	if n := count(t, c2.URL(DefaultDatabase), "SELECT count(*) FROM kept"); n != 1 {
		t.Fatalf("rows after restart = %d", n)
	}

	// Crash drill: committed rows survive an immediate stop and a restart.
	exec1(t, c2.URL(DefaultDatabase), "INSERT INTO kept VALUES (2)")
	if err := c2.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c2.URL(DefaultDatabase), "SELECT count(*) FROM kept"); n != 2 {
		t.Fatalf("rows after crash = %d", n)
	}

	if err := c2.CreateDatabase(t.Context(), "copy", DefaultDatabase); err != nil {
		t.Fatal(err)
	}
	if n := count(t, c2.URL("copy"), "SELECT count(*) FROM kept"); n != 2 {
		t.Fatalf("rows in copy = %d", n)
	}
}

func TestSharedBuffersAreAQuarterOfMemory(t *testing.T) {
	for _, tc := range []struct {
		mem  int64
		want int64
	}{
		{0, 1024},                // unknown: 1GB
		{256 << 20, 128},         // never below PostgreSQL's default
		{4 << 30, 1024},          // a quarter
		{24 << 30, 6144},         // a quarter
		{31<<30 + 512<<20, 8064}, // a quarter, in whole MB
		{64 << 30, 8192},         // at most 8GB
	} {
		if got := sharedBuffersMB(tc.mem); got != tc.want {
			t.Errorf("sharedBuffersMB(%d) = %d, want %d", tc.mem, got, tc.want)
		}
	}
	if memTotal() <= 0 {
		t.Errorf("memTotal() = %d; /proc/meminfo unreadable?", memTotal())
	}
}

// A postmaster.pid left by a killed server whose PID now belongs to another
// process must not block the start.
func TestStalePIDFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	c := start(t, dir)
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	pidFile := strconv.Itoa(sleeper.Process.Pid) + "\n" + c.data + "\n1700000000\n" + strconv.Itoa(c.Port()) + "\n"
	if err := os.WriteFile(filepath.Join(c.data, "postmaster.pid"), []byte(pidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := start(t, dir)
	if n := count(t, c2.URL(DefaultDatabase), "SELECT 1"); n != 1 {
		t.Fatal("no answer")
	}
}

func TestSideBySide(t *testing.T) {
	a := start(t, filepath.Join(t.TempDir(), "a"))
	b := start(t, filepath.Join(t.TempDir(), "b"))
	if a.Port() == b.Port() {
		t.Fatalf("both on port %d", a.Port())
	}
	exec1(t, a.URL(DefaultDatabase), "CREATE TABLE only_a (v int)")
	if n := count(t, b.URL(DefaultDatabase), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_a'"); n != 0 {
		t.Fatal("clusters share data")
	}
}

// As root, a directory the postgres user cannot reach outside the temp dir
// is reported, not silently opened up.
func TestRootUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	base := t.TempDir()
	t.Setenv("TMPDIR", filepath.Join(base, "tmp"))
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{Dir: filepath.Join(private, "pg")})
	if err == nil || !strings.Contains(err.Error(), "chmod o+x "+private) {
		t.Fatalf("want an explanation naming %s, got %v", private, err)
	}
	if st, _ := os.Stat(private); st.Mode().Perm() != 0o700 {
		t.Fatalf("permissions of %s changed to %v", private, st.Mode().Perm())
	}
}

// wal_compression is lz4 only when this PostgreSQL accepts it; a build
// without lz4 gets pglz ("on") instead of a server that will not start.
func TestWALCompressionFallsBackToPglz(t *testing.T) {
	for _, tc := range []struct {
		exit int
		want string
	}{{0, "lz4"}, {1, "on"}} {
		bin := t.TempDir()
		script := fmt.Sprintf("#!/bin/sh\n[ \"$*\" = \"-D /data -C wal_compression -c wal_compression=lz4\" ] || exit 3\nexit %d\n", tc.exit)
		if err := os.WriteFile(filepath.Join(bin, "postgres"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		c := &Cluster{dir: t.TempDir(), data: "/data", bin: bin}
		if got := c.walCompression(); got != tc.want {
			t.Errorf("postgres -C exiting %d: wal_compression = %q, want %q", tc.exit, got, tc.want)
		}
	}
}
