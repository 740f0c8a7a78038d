package models_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// BenchmarkIntakeGroupStatement measures what intake's group statement costs
// PostgreSQL per claim: the CPU time of the backends that ran it, read from
// /proc (a local cluster on Linux), divided by the claims written, for groups
// of 1, 16 and 64 claims. Test clusters run without fsync, so this is the
// statement's own work (executor, indexes, triggers, WAL records), which is
// what the capacity of a small machine depends on and what schema changes
// move. Unlike a load test it does not depend on how groups happen to form.
//
//	go test ./models -run '^$' -bench IntakeGroupStatement -benchtime 400x
func BenchmarkIntakeGroupStatement(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	m := newMerchant(b, s, "bench@example.kr")
	next := 0
	group := func(size int) error {
		keys, in := make([]string, size), make([]*models.ClaimInput, size)
		for i := range in {
			next++
			keys[i] = "bench-" + strconv.Itoa(next)
			in[i] = validClaim(rules.ValidBRNFromSeed(1_000_000 + next).String())
			if next%2 == 0 { // intake's load tool files one or two goods lines
				in[i].Goods = append(in[i].Goods, models.GoodsItem{SKU: "B-2", Name: "배", UnitPrice: 30000, Quantity: 10})
			}
		}
		return s.WriteClaimGroup(ctx, m, keys, in)
	}
	for _, size := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("group=%d", size), func(b *testing.B) {
			for range 10 { // past PL/pgSQL's and the statement's first plans
				if err := group(size); err != nil {
					b.Fatal(err)
				}
			}
			before := backendCPU(b, s)
			b.ResetTimer()
			for range b.N {
				if err := group(size); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			claims := float64(b.N * size)
			b.ReportMetric(float64(backendCPU(b, s)-before)/claims, "pg-µs/claim")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/claims, "µs/claim")
		})
	}
}

// backendCPU is the user and system CPU, in microseconds, used so far by the
// backends of s's database (its pool's connections).
func backendCPU(b *testing.B, s *models.Store) int64 {
	b.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Skipf("backend CPU time needs a local cluster on Linux: %v", err)
		}
		// utime and stime are fields 14 and 15; the command name (field 2)
		// is in parentheses and may hold spaces, so count after its ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		for _, i := range []int{11, 12} {
			ticks, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += ticks * 10_000 // USER_HZ is 100 on Linux
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return total
}
