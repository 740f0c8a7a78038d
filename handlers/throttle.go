package handlers

import (
	"sync"
	"time"
)

// loginThrottle limits login attempts per account and per client address in a
// fixed window. It is per process; with several replicas each enforces its own
// share, which still bounds guessing.
type loginThrottle struct {
	mu      sync.Mutex
	window  time.Duration
	perKey  int
	perAddr int
	counts  map[string]int
	started time.Time
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{window: 15 * time.Minute, perKey: 10, perAddr: 50, counts: map[string]int{}, started: time.Now()}
}

// allow records an attempt and reports whether it may proceed.
func (t *loginThrottle) allow(email, addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.started) > t.window {
		t.counts = map[string]int{}
		t.started = now
	}
	t.counts["e:"+email]++
	t.counts["a:"+addr]++
	return t.counts["e:"+email] <= t.perKey && t.counts["a:"+addr] <= t.perAddr
}

// reset forgets an account's failures after a successful login.
func (t *loginThrottle) reset(email string) {
	t.mu.Lock()
	delete(t.counts, "e:"+email)
	t.mu.Unlock()
}
