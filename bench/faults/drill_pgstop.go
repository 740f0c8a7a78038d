package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/relief/relief/bench/internal/loadgen"
)

// probe is one GET /readyz.
type probe struct {
	at     time.Time
	lat    time.Duration
	status int // 0: transport error
	down   []string
}

// readyProbe polls /readyz every interval until stop is closed.
func readyProbe(ctx context.Context, e *env, interval time.Duration, stop <-chan struct{}) func() []probe {
	var mu sync.Mutex
	var out []probe
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			t0 := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			st, data, _, err := apiCall(rctx, e.http, http.MethodGet, e.base+"/readyz", "", "", nil)
			cancel()
			p := probe{at: t0, lat: time.Since(t0), status: st}
			if err != nil {
				p.status = 0
			}
			var body struct {
				Down []string `json:"down"`
			}
			if json.Unmarshal(data, &body) == nil {
				p.down = body.Down
			}
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}()
	return func() []probe {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// drillPostgresStop: steady claim load; PostgreSQL is stopped in immediate
// mode (a crash: no shutdown checkpoint) for a few seconds and started again
// on the same port. Meanwhile /readyz must answer 503 naming postgres and
// the API must answer promptly (p99 well under 2 s: nothing hangs on the dead
// database). Afterwards nothing acknowledged is lost and every claim is
// dispatched.
func drillPostgresStop(ctx context.Context, e *env, o *options, r *result) {
	l, err := newLoad(e, loadOpts{rate: o.rate, dur: o.duration, seedBase: 2_000_000, giveUp: 90 * time.Second})
	if err != nil {
		r.fail("prepare load: %v", err)
		return
	}
	stopProbe := make(chan struct{})
	probes := readyProbe(ctx, e, 200*time.Millisecond, stopProbe)
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, e) }()

	_ = sleepCtx(ctx, o.duration/4)
	t0 := time.Now()
	if err := e.cluster.StopImmediate(); err != nil {
		r.fail("pg_ctl stop -m immediate: %v", err)
	}
	downAt := time.Now()
	r.detail("PostgreSQL stopped (immediate) at +%.1fs in %v", downAt.Sub(l.start).Seconds(), downAt.Sub(t0).Round(time.Millisecond))
	_ = sleepCtx(ctx, o.outage)
	upFrom := time.Now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	err = e.cluster.Restart(rctx)
	cancel()
	if err != nil {
		r.fail("restart PostgreSQL: %v", err)
	}
	upAt := time.Now()
	r.detail("PostgreSQL down %.1fs, crash recovery and start took %v", upFrom.Sub(downAt).Seconds(), upAt.Sub(upFrom).Round(time.Millisecond))
	if err := e.waitReady(ctx, 60*time.Second); err != nil {
		r.fail("not ready after PostgreSQL came back: %v", err)
	}
	readyAgain := time.Since(upAt)
	close(stopProbe)
	<-done
	ps := probes()

	// /readyz while PostgreSQL was down.
	var nDown, n503pg int
	var probeLat []time.Duration
	for _, p := range ps {
		if p.at.Before(downAt) || !p.at.Before(upFrom) {
			continue
		}
		nDown++
		probeLat = append(probeLat, p.lat)
		if p.status == http.StatusServiceUnavailable && slices.Contains(p.down, "postgres") {
			n503pg++
		}
	}
	pl := loadgen.Summarize(probeLat)
	r.detail("/readyz during the outage: %d probes, %d answered 503 naming postgres, latency max %v; ready again %.1fs after the start",
		nDown, n503pg, pl.Max.Round(time.Millisecond), readyAgain.Seconds())
	if nDown == 0 || n503pg != nDown {
		r.fail("/readyz: %d of %d probes during the outage answered 503 naming postgres", n503pg, nDown)
	}

	// The API while PostgreSQL was down.
	atts := l.window(downAt, upFrom)
	var lat []time.Duration
	st := map[string]int{}
	for _, a := range atts {
		lat = append(lat, a.lat)
		k := fmt.Sprint(a.status)
		if a.status == 0 {
			k = "conn:" + a.err
		}
		st[k]++
	}
	al := loadgen.Summarize(lat)
	r.detail("API during the outage: %d attempts: %s; latency p50 %v p99 %v max %v",
		len(atts), fmtStatus(st), al.P50.Round(time.Millisecond), al.P99.Round(time.Millisecond), al.Max.Round(time.Millisecond))
	if len(atts) == 0 {
		r.fail("no API call during the outage")
	}
	if al.P99 > o.maxOutageP99 || pl.Max > o.maxOutageP99 {
		r.fail("answers during the outage too slow: API p99 %v, /readyz max %v (limit %v)", al.P99.Round(time.Millisecond), pl.Max.Round(time.Millisecond), o.maxOutageP99)
	}
	if n := len(atts) - st["503"] - st["429"]; n > 0 {
		r.fail("%d attempts during the outage got neither 503 nor 429", n)
	}

	s := l.summary()
	r.detail("load: %d claims at %.0f/s, %d attempts; answers: %s", s.sent, o.rate, s.attempts, fmtStatus(s.byStatus))
	if s.acked != s.sent {
		r.fail("%d of %d claims not acknowledged (%d gave up, refused: %s)", s.sent-s.acked, s.sent, s.gaveUp, l.refusals())
	}
	if s.bad5xx > 0 {
		var first, last time.Duration = -1, 0
		for _, a := range l.window(l.start, time.Now()) {
			if a.status >= 500 && a.status != http.StatusServiceUnavailable {
				d := a.start.Add(a.lat).Sub(t0)
				if first < 0 || d < first {
					first = d
				}
				last = max(last, d)
			}
		}
		r.fail("%d answers were 5xx other than 503 (answered %v to %v after the stop began; see serve.log)",
			s.bad5xx, first.Round(time.Millisecond), last.Round(time.Millisecond))
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
	r.counts = fmt.Sprintf("acked=%d/%d lost=%d readyz_503_pg=%d/%d outage_attempts=%d p99=%v bad_5xx=%d workflows=%d/%d",
		s.acked, s.sent, c.lost, n503pg, nDown, len(atts), al.P99.Round(time.Millisecond), s.bad5xx, c.inTemporal, c.stored)
}
