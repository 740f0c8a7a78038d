package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// drillTemporalRestart: steady claim load; the Temporal server is stopped
// for a few seconds and started again on the same SQLite file and address.
// Intake never waits on Temporal, so every claim must be answered 202 (no
// 5xx at all), and afterwards the outbox must start every claim's workflow.
func drillTemporalRestart(ctx context.Context, e *env, o *options, r *result) {
	l, err := newLoad(e, loadOpts{rate: o.rate, dur: o.duration, seedBase: 3_000_000, giveUp: 90 * time.Second})
	if err != nil {
		r.fail("prepare load: %v", err)
		return
	}
	stopProbe := make(chan struct{})
	probes := readyProbe(ctx, e, 250*time.Millisecond, stopProbe)
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, e) }()

	_ = sleepCtx(ctx, o.duration/4)
	t0 := time.Now()
	e.temporal.stop(30 * time.Second)
	downAt := time.Now()
	r.detail("Temporal server stopped at +%.1fs (stop took %v)", downAt.Sub(l.start).Seconds(), downAt.Sub(t0).Round(time.Millisecond))
	_ = sleepCtx(ctx, o.outage)
	upFrom := time.Now()
	if err := e.startTemporal(ctx); err != nil {
		r.fail("restart Temporal: %v", err)
	}
	r.detail("Temporal down %.1fs; back on %s after %v", upFrom.Sub(downAt).Seconds(), e.tempAddr, time.Since(upFrom).Round(time.Millisecond))
	close(stopProbe)
	<-done
	ps := probes()
	var nDown, n503 int
	for _, p := range ps {
		if !p.at.Before(downAt) && p.at.Before(upFrom) {
			nDown++
			if p.status == http.StatusServiceUnavailable && slices.Contains(p.down, "temporal") {
				n503++
			}
		}
	}
	r.detail("/readyz during the outage: %d of %d probes answered 503 naming temporal (informational)", n503, nDown)

	s := l.summary()
	r.detail("load: %d claims at %.0f/s, %d attempts; answers: %s", s.sent, o.rate, s.attempts, fmtStatus(s.byStatus))
	outage := l.window(downAt, upFrom)
	n202 := 0
	for _, a := range outage {
		if a.status == http.StatusAccepted {
			n202++
		}
	}
	r.detail("API during the outage: %d of %d attempts answered 202", n202, len(outage))
	if s.acked != s.sent {
		r.fail("%d of %d claims not acknowledged (%d gave up, refused: %s)", s.sent-s.acked, s.sent, s.gaveUp, l.refusals())
	}
	n5xx := 0
	for k, v := range s.byStatus {
		if len(k) == 3 && k[0] == '5' {
			n5xx += v
		}
	}
	if n5xx > 0 {
		r.fail("%d answers were 5xx: intake must not depend on Temporal", n5xx)
	}
	if len(outage) == 0 || n202 != len(outage) {
		r.fail("only %d of %d claims filed during the outage answered 202", n202, len(outage))
	}
	c, err := e.checkClaims(ctx, l.reqs, o.settle)
	if err != nil {
		r.fail("check claims: %v", err)
		return
	}
	r.detail("after %.1fs: %s", c.waited.Seconds(), c)
	if !c.ok() {
		r.fail("claims: %s", c)
	}
	r.counts = fmt.Sprintf("acked=%d/%d during_outage_202=%d/%d 5xx=%d lost=%d workflows=%d/%d verifying=%d/%d",
		s.acked, s.sent, n202, len(outage), n5xx, c.lost, c.inTemporal, c.stored, c.reached, c.stored)
}
