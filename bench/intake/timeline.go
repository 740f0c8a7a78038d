package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/relief/relief/bench/internal/loadgen"
)

// writeTimeline writes one CSV line per claim: when it was due (Unix
// milliseconds: the intended send time the latency counts from), how long its
// answer took from then, and its status (0 never answered, -1 transport
// error). Matched against a server's own clock (logs, pg_stat_activity
// samples, /proc), it tells which moment a tail came from.
func writeTimeline(path string, rep *loadgen.Report, res *results, rate float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "due_unix_ms,latency_ms,status")
	for i, lat := range rep.Latency {
		due := loadgen.Intended(rep.Start, rate, i).UnixMicro()
		st := int16(0)
		if lat >= 0 {
			st = res.status[i]
		}
		fmt.Fprintf(w, "%d.%03d,%.3f,%d\n", due/1000, due%1000, float64(lat)/float64(time.Millisecond), st)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
