package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// earlyMiss ends a judged ramp phase (a step or a hold) as soon as its
// verdict can only be a miss, instead of offering the rest of it.
//
// A missed 60 s hold at 5,000 claims/s adds 300,000 claims to the database
// the next hold runs on, and the ramp's later holds missed on a grown
// database at rates a first hold keeps (README, Capacity). Stopping early
// does not change a verdict: a step passes only if every answer is 202 and
// the accepted p99 is within -slo-p99, so one other answer decides it, and so
// do more than 1% of the phase's n claims accepted above the bound, since
// the p99 of A ≤ n accepted claims (rank ⌈0.99·A⌉, loadgen.Percentile) has
// at most 0.01·A ≤ 0.01·n of them above it.
type earlyMiss struct {
	slo    time.Duration // accepted p99 bound (-slo-p99)
	n      int           // claims the phase offers
	slow   int           // accepted so far above slo
	rate   float64       // claims/s offered, to tell when a claim was due
	last   int           // the furthest claim answered so far (answers come out of order)
	stop   context.CancelFunc
	reason string // why it stopped; "" while it runs
}

// observe takes the answer to claim i: status (stTransport for a transport
// error), whether a 202 carried a claim id, and its latency from the
// intended time. It runs on the load loop's goroutine.
func (m *earlyMiss) observe(i int, status int16, filed bool, latency time.Duration) {
	if m.reason != "" {
		return
	}
	m.last = max(m.last, i)
	switch {
	case status == stTransport:
		m.end(fmt.Sprintf("claim %d ended in a transport error", i+1))
	case status != http.StatusAccepted:
		m.end(fmt.Sprintf("claim %d answered %d", i+1, status))
	case !filed:
		m.end(fmt.Sprintf("claim %d answered 202 without a claim", i+1))
	case latency.Microseconds() > m.slo.Microseconds(): // as judgeStep compares
		m.slow++
		if m.slow*100 > m.n {
			m.end(fmt.Sprintf("%d claims accepted slower than %s, over 1%% of the %d offered, so p99 > %s", m.slow, m.slo, m.n, m.slo))
		}
	}
}

// end stops the phase, saying how far it had come and why.
func (m *earlyMiss) end(why string) {
	m.reason = fmt.Sprintf("after claim %d of %d (due at %.1fs): %s", m.last+1, m.n, float64(m.last)/m.rate, why)
	m.stop()
}
