// Package loadgen is a small open-loop load generator for the Relief benches.
//
// Open loop means the offered load does not depend on the server: request i
// is due at start + i/rate whether or not earlier requests have answered, and
// its latency is measured from that intended time. A server that stalls
// therefore shows its stall in the latency of every request that was due
// during it (no coordinated omission), even when the in-flight cap makes the
// generator hold requests back.
package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what one attempt of a request reports back to Run.
type Outcome struct {
	// Retry asks Run to attempt the same request again after RetryAfter. The
	// waiting request does not count against the in-flight cap.
	Retry      bool
	RetryAfter time.Duration
	// Aborted reports that the attempt ended because the run's context ended
	// (the duration cap or an interrupt); the request then has no latency and
	// is counted as cancelled.
	Aborted bool
}

// Func performs attempt number attempt (0 for the first) of request i. It is
// called from many goroutines at once, but never concurrently for the same i.
type Func func(ctx context.Context, i, attempt int) Outcome

// Config describes the offered load.
type Config struct {
	N           int           // number of requests
	Rate        float64       // requests per second, > 0
	Concurrency int           // maximum attempts in flight, >= 1
	Duration    time.Duration // hard cap on the whole run; 0 means none
}

// Report is the result of Run. Per-request slices are indexed by request.
type Report struct {
	Start time.Time
	// Elapsed runs from Start to the last completion, or to the moment the cap
	// or an interrupt ended the run, whichever is later.
	Elapsed time.Duration
	// Latency is, per request, the time from its intended send time to the end
	// of its final attempt; -1 when the request did not complete.
	Latency   []time.Duration
	Scheduled int // requests whose intended time came before the run ended
	Started   int // requests with at least one attempt started
	Completed int // requests whose final attempt returned (any result)
	Cancelled int // started but cut off by the end of the run
	NotSent   int // never attempted (N - Started)
	Retries   int // extra attempts requested via Outcome.Retry
	// MaxStartLag is the worst delay between a request's intended time and its
	// first attempt starting; LateStarts counts first attempts more than 1 ms
	// late. Both grow when the in-flight cap is reached or the generator
	// itself cannot keep up.
	MaxStartLag time.Duration
	LateStarts  int
	MaxInFlight int
	// CapReached is true when the duration cap ended the run before every
	// request completed; Interrupted when the parent context did.
	CapReached  bool
	Interrupted bool
}

// Intended returns the intended send time of request i.
func Intended(start time.Time, rate float64, i int) time.Time {
	return start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
}

const (
	stNone uint8 = iota
	stStarted
	stCompleted
	stAborted
)

type job struct{ i, attempt int }

// Run offers cfg.N requests at cfg.Rate per second, at most cfg.Concurrency
// attempts in flight, and stops at cfg.Duration or when ctx ends. It returns
// when every started attempt has returned.
func Run(ctx context.Context, cfg Config, fn Func) *Report {
	n := cfg.N
	rate := cfg.Rate
	if rate <= 0 {
		rate = 1
	}
	conc := max(cfg.Concurrency, 1)

	runCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()

	rep := &Report{Latency: make([]time.Duration, n)}
	for i := range rep.Latency {
		rep.Latency[i] = -1
	}
	state := make([]uint8, n) // written by the worker that owns request i

	var (
		jobs        = make(chan int, min(max(n, 1), 1<<16))
		retryCh     = make(chan job)
		allDone     = make(chan struct{})
		closeOnce   sync.Once
		outstanding atomic.Int64
		schedDone   atomic.Bool
		scheduled   atomic.Int64
		retries     atomic.Int64
		inFlight    atomic.Int64
		maxInFlight atomic.Int64
		maxLag      atomic.Int64
		lateStarts  atomic.Int64
		lastDone    atomic.Int64 // UnixNano of the latest completion
		workers     sync.WaitGroup
		schedExit   = make(chan struct{})
	)
	finishOne := func() {
		if outstanding.Add(-1) == 0 && schedDone.Load() {
			closeOnce.Do(func() { close(allDone) })
		}
	}
	storeMax := func(a *atomic.Int64, v int64) {
		for {
			old := a.Load()
			if v <= old || a.CompareAndSwap(old, v) {
				return
			}
		}
	}

	start := time.Now()
	rep.Start = start

	// Scheduler: emits request i at its intended time. When the workers are
	// all busy, requests wait in the buffered channel; their latency still
	// counts from the intended time.
	go func() {
		defer close(schedExit)
		defer close(jobs)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for i := range n {
			if d := time.Until(Intended(start, rate, i)); d > 0 {
				timer.Reset(d)
				select {
				case <-runCtx.Done():
					return
				case <-timer.C:
				}
			}
			outstanding.Add(1)
			select {
			case jobs <- i:
				scheduled.Add(1)
			case <-runCtx.Done():
				outstanding.Add(-1)
				return
			}
		}
		schedDone.Store(true)
		if outstanding.Load() == 0 {
			closeOnce.Do(func() { close(allDone) })
		}
	}()

	worker := func() {
		defer workers.Done()
		jobsCh := jobs
		for {
			var j job
			select {
			case <-runCtx.Done():
				return
			case <-allDone:
				return
			case j = <-retryCh:
			case i, ok := <-jobsCh:
				if !ok {
					jobsCh = nil
					continue
				}
				j = job{i: i}
			}
			if j.attempt == 0 {
				lag := time.Since(Intended(start, rate, j.i))
				storeMax(&maxLag, int64(lag))
				if lag > time.Millisecond {
					lateStarts.Add(1)
				}
				state[j.i] = stStarted
			}
			storeMax(&maxInFlight, inFlight.Add(1))
			out := fn(runCtx, j.i, j.attempt)
			inFlight.Add(-1)
			switch {
			case out.Aborted:
				state[j.i] = stAborted
				finishOne()
			case out.Retry:
				retries.Add(1)
				next := job{i: j.i, attempt: j.attempt + 1}
				time.AfterFunc(max(out.RetryAfter, 0), func() {
					select {
					case retryCh <- next:
					case <-runCtx.Done():
					}
				})
			default:
				now := time.Now()
				rep.Latency[j.i] = now.Sub(Intended(start, rate, j.i))
				state[j.i] = stCompleted
				storeMax(&lastDone, now.UnixNano())
				finishOne()
			}
		}
	}
	workers.Add(conc)
	for range conc {
		go worker()
	}

	select {
	case <-allDone:
	case <-runCtx.Done():
		if ctx.Err() != nil {
			rep.Interrupted = true
		} else {
			rep.CapReached = true
		}
	}
	endedAt := time.Now()
	cancel()
	workers.Wait()
	<-schedExit

	rep.Elapsed = time.Duration(lastDone.Load() - start.UnixNano())
	if (rep.CapReached || rep.Interrupted) && endedAt.Sub(start) > rep.Elapsed {
		rep.Elapsed = endedAt.Sub(start)
	}
	if rep.Elapsed < 0 {
		rep.Elapsed = 0
	}
	for _, s := range state {
		switch s {
		case stStarted, stAborted:
			rep.Started++
			rep.Cancelled++
		case stCompleted:
			rep.Started++
			rep.Completed++
		}
	}
	rep.NotSent = n - rep.Started
	rep.Scheduled = int(scheduled.Load())
	rep.Retries = int(retries.Load())
	rep.MaxStartLag = time.Duration(maxLag.Load())
	rep.LateStarts = int(lateStarts.Load())
	rep.MaxInFlight = int(maxInFlight.Load())
	return rep
}
