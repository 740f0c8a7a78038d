// Command ledger measures the sales-ledger import: it writes a synthetic
// ledger file (default 1,000,000 rows of CSV), imports it through the same
// code the web process runs (streaming parse, per-row validation, COPY into a
// staging table, one-transaction swap) and prints rows per second and the
// process's peak RSS. Goals: ≥ 100,000 rows/s and < 300 MB; it exits 1 when
// one is missed.
//
//	go run ./bench/ledger [-rows 1000000] [-format csv|xlsx] [-db postgres://...]
//
// Without -db (or DATABASE_URL) it starts a private PostgreSQL cluster in a
// temporary directory and removes it afterwards.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
)

const (
	goalRowsPerSecond = 100_000
	goalRSSMB         = 300
)

func main() {
	rows := flag.Int("rows", 1_000_000, "ledger rows")
	format := flag.String("format", "csv", "csv or xlsx")
	db := flag.String("db", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default: a private cluster)")
	flag.Parse()
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "relief-bench-ledger-")
	check(err)
	defer os.RemoveAll(tmp)

	url := *db
	if url == "" {
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
	admin, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("bench-%d@example.kr", time.Now().UnixNano()), Name: "벤치",
		Password: "correct horse battery", Roles: []string{models.RoleProgramAdmin}, Agency: "KPOST"})
	check(err)

	path := filepath.Join(tmp, "ledger."+*format)
	t0 := time.Now()
	size := writeLedger(path, *format, *rows)
	fmt.Printf("wrote %s rows of %s (%.1f MB) in %.1fs\n", rules.FormatNumber(int64(*rows)), *format, float64(size)/1e6, time.Since(t0).Seconds())

	runtime.GC()
	li, err := store.NewLedgerImport(ctx, admin, models.DemoProgram, filepath.Base(path), *format, size, []byte{})
	check(err)
	start := time.Now()
	res, err := store.RunLedgerImport(ctx, li.ID, path, *format)
	check(err)
	took := time.Since(start)
	if res.ErrorCount > 0 {
		fmt.Fprintln(os.Stderr, "import reported errors:", res.Errors[:min(5, len(res.Errors))])
		os.Exit(1)
	}
	var n int64
	check(store.Pool.QueryRow(ctx, `SELECT count(*) FROM sales_ledger WHERE program_code = $1`, models.DemoProgram).Scan(&n))
	rate := float64(res.Rows) / took.Seconds()
	rss := vmHWM()
	fmt.Printf("imported %s rows (%s in the table) in %.2fs: %s rows/s; peak RSS %.0f MB\n",
		rules.FormatNumber(res.Rows), rules.FormatNumber(n), took.Seconds(), rules.FormatNumber(int64(rate)), rss)
	ok := rate >= goalRowsPerSecond && rss < goalRSSMB && n == int64(*rows)
	fmt.Printf("goals: ≥ %s rows/s, < %d MB: %v\n", rules.FormatNumber(goalRowsPerSecond), goalRSSMB, ok)
	if !ok {
		os.Exit(1)
	}
}

// writeLedger writes rows rows: 84 days per seller, as many sellers as needed.
func writeLedger(path, format string, rows int) int64 {
	day0 := rules.Date{Year: 2025, Month: 8, Day: 29}
	record := func(i int) (string, string, int64, int64, string) {
		seller, d := i/84, i%84
		gross := int64(50_000 + (i*7919)%900_000)
		return rules.ValidBRNFromSeed(seller*13 + 1).Formatted(), day0.AddDays(d).String(), gross, gross * 6 / 100, models.Categories[seller%len(models.Categories)]
	}
	switch format {
	case "csv":
		f, err := os.Create(path)
		check(err)
		w := bufio.NewWriterSize(f, 1<<20)
		w.WriteString(strings.Join(models.LedgerColumns, ",") + "\n")
		for i := range rows {
			brn, day, gross, comm, cat := record(i)
			w.WriteString(brn + "," + day + "," + strconv.FormatInt(gross, 10) + "," + strconv.FormatInt(comm, 10) + "," + cat + "\n")
		}
		check(w.Flush())
		check(f.Close())
	case "xlsx":
		x := excelize.NewFile()
		sw, err := x.NewStreamWriter("Sheet1")
		check(err)
		header := make([]any, len(models.LedgerColumns))
		for i, c := range models.LedgerColumns {
			header[i] = c
		}
		check(sw.SetRow("A1", header))
		for i := range rows {
			brn, day, gross, comm, cat := record(i)
			cell, _ := excelize.CoordinatesToCellName(1, i+2)
			check(sw.SetRow(cell, []any{brn, day, gross, comm, cat}))
		}
		check(sw.Flush())
		check(x.SaveAs(path))
		check(x.Close())
	default:
		check(fmt.Errorf("unknown format %q", format))
	}
	st, err := os.Stat(path)
	check(err)
	return st.Size()
}

// vmHWM is the process's peak resident set size in MB.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ledger:", err)
		os.Exit(1)
	}
}
