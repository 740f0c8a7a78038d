package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestNewDBIsIsolatedAndMigrated(t *testing.T) {
	a, b := connect(t, pgtest.NewDB(t)), connect(t, pgtest.NewDB(t))
	for _, conn := range []*pgx.Conn{a, b} {
		var claims *string
		if err := conn.QueryRow(t.Context(), "SELECT to_regclass('claims')::text").Scan(&claims); err != nil || claims == nil {
			t.Fatalf("table claims missing (%v)", err)
		}
	}
	if _, err := a.Exec(t.Context(), "INSERT INTO agencies (code, name) VALUES ('ONLY_A', 'a')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), "SELECT count(*) FROM agencies WHERE code = 'ONLY_A'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("row inserted in one database visible in another: n=%d err=%v", n, err)
	}
}

// Parallel tests copy the template at the same time.
func TestNewDBParallel(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			var one int
			if err := connect(t, pgtest.NewDB(t)).QueryRow(t.Context(), "SELECT 1 FROM goose_db_version LIMIT 1").Scan(&one); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	var url string
	t.Run("inner", func(t *testing.T) {
		url = pgtest.NewDB(t)
		connect(t, url) // left open on purpose: cleanup must still drop the database
	})
	if _, err := pgx.Connect(t.Context(), url); err == nil {
		t.Fatal("database still exists after its test ended")
	}
}

func TestCluster(t *testing.T) {
	if os.Getenv(pgtest.EnvDatabaseURL) != "" {
		t.Skip("external server")
	}
	c := pgtest.Cluster()
	if c == nil {
		t.Fatal("no cluster")
	}
	url := pgtest.NewDB(t)
	if _, err := connect(t, url).Exec(t.Context(), "INSERT INTO agencies (code, name) VALUES ('KEPT', 'k')"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, url).QueryRow(t.Context(), "SELECT count(*) FROM agencies WHERE code = 'KEPT'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("committed row lost in crash: n=%d err=%v", n, err)
	}
}
