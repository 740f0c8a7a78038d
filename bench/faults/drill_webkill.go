package main

import (
	"context"
	"fmt"
	"time"
)

// drillWebKill: steady claim load; kill -9 `relief serve` (web and outbox
// dispatcher) a third of the way in and start it again; clients retry with
// the same Idempotency-Key and body. Every acknowledged claim must be in
// PostgreSQL, no BRN twice, every claim's workflow started, and no 5xx other
// than 503 ever answered.
func drillWebKill(ctx context.Context, e *env, o *options, r *result) {
	l, err := newLoad(e, loadOpts{rate: o.rate, dur: o.duration, seedBase: 1_000_000, giveUp: 90 * time.Second})
	if err != nil {
		r.fail("prepare load: %v", err)
		return
	}
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, e) }()

	if sleepCtx(ctx, o.duration/3) != nil {
		r.fail("interrupted")
		<-done
		return
	}
	pid := e.serve.pid()
	killed := time.Now()
	e.serve.kill9()
	r.detail("kill -9 relief serve (pid %d) at +%.1fs", pid, killed.Sub(l.start).Seconds())
	_ = sleepCtx(ctx, time.Second)
	if err := e.startServe(ctx); err != nil {
		r.fail("restart serve: %v", err)
	}
	back := time.Now()
	r.detail("relief serve ready again after %.1fs (pid %d)", back.Sub(killed).Seconds(), e.serve.pid())
	<-done

	s := l.summary()
	r.detail("load: %d claims at %.0f/s, %d attempts; answers: %s", s.sent, o.rate, s.attempts, fmtStatus(s.byStatus))
	if s.acked != s.sent {
		r.fail("%d of %d claims not acknowledged (%d gave up, refused: %s)", s.sent-s.acked, s.sent, s.gaveUp, l.refusals())
	}
	if s.bad5xx > 0 {
		r.fail("%d answers were 5xx other than 503", s.bad5xx)
	}
	if s.retried == 0 {
		r.fail("no claim needed a retry: the kill did not land under load")
	}
	c, err := e.checkClaims(ctx, l.reqs, o.settle)
	if err != nil {
		r.fail("check claims: %v", err)
		return
	}
	r.detail("after %.1fs: %s (stored without a 202: %d)", c.waited.Seconds(), c, c.storedUnacked)
	if !c.ok() {
		r.fail("claims: %s", c)
	}
	r.counts = fmt.Sprintf("acked=%d/%d retried=%d lost=%d dup_brn=%d bad_5xx=%d workflows=%d/%d", s.acked, s.sent, s.retried, c.lost, c.dupBRN, s.bad5xx, c.inTemporal, c.stored)
}
