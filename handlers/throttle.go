package handlers

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// loginThrottle limits login attempts per account and per client address with
// one token bucket per key (GCRA: a single "theoretical arrival time" each).
// A key may make burst attempts at once and regains one every
// window/burst, so there is no moment where every counter resets together
// (a fixed window lets an attacker spend a full allowance just before and
// again just after the boundary).
//
// Memory is bounded: keys are stored as 16-byte digests, at most maxKeys per
// kind; buckets that have fully refilled are dropped (they mean "never seen");
// when a spray of distinct emails fills the table, new keys share a fixed
// array of overflow buckets (collisions only throttle more, never less), so an
// attacker can neither exhaust memory nor evict a victim's bucket.
//
// A successful login refunds the attempt it cost its address (people behind
// one carrier NAT must not lock each other out on a surge day) and clears the
// account's bucket. It is per process: with several replicas each enforces its
// own share, which still bounds guessing.
type loginThrottle struct {
	mu      sync.Mutex
	perKey  *buckets
	perAddr *buckets
}

const (
	throttleWindow  = 15 * time.Minute
	throttlePerKey  = 10 // attempts per account per window
	throttlePerAddr = 50 // attempts per client address per window
	throttleMaxKeys = 50_000
	throttleSlots   = 4096
)

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{
		perKey:  newBuckets("e:", throttlePerKey, throttleWindow, throttleMaxKeys, throttleSlots),
		perAddr: newBuckets("a:", throttlePerAddr, throttleWindow, throttleMaxKeys, throttleSlots),
	}
}

// allow records an attempt and reports whether it may proceed. A refused
// attempt costs nothing (the caller answers 429 without checking a password).
func (t *loginThrottle) allow(email, addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := now.UnixNano()
	ek, ak := t.perKey.digest(email), t.perAddr.digest(addr)
	eTAT, eOK := t.perKey.next(ek, n)
	aTAT, aOK := t.perAddr.next(ak, n)
	if !eOK || !aOK {
		return false
	}
	t.perKey.set(ek, eTAT, ak, n)
	t.perAddr.set(ak, aTAT, ak, n)
	return true
}

// reset forgets an account's failures after a successful login and gives the
// address the attempt back.
func (t *loginThrottle) reset(email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ek := t.perKey.digest(email)
	if e, ok := t.perKey.exact[ek]; ok {
		t.perAddr.refund(e.addr)
		delete(t.perKey.exact, ek)
	}
}

type digest [16]byte

type bucket struct {
	tat  int64  // when the bucket will be full again (unix ns)
	addr digest // the address of the latest attempt (account buckets only)
}

type buckets struct {
	prefix    string
	burst     int64
	interval  int64 // ns to regain one attempt
	maxKeys   int
	exact     map[digest]bucket
	overflow  []int64
	lastSweep int64
}

func newBuckets(prefix string, burst int, window time.Duration, maxKeys, slots int) *buckets {
	return &buckets{prefix: prefix, burst: int64(burst), interval: int64(window) / int64(burst), maxKeys: maxKeys,
		exact: map[digest]bucket{}, overflow: make([]int64, slots)}
}

func (b *buckets) digest(key string) digest {
	h := sha256.Sum256([]byte(b.prefix + key))
	var d digest
	copy(d[:], h[:])
	return d
}

func (b *buckets) slot(d digest) int {
	return int(binary.LittleEndian.Uint64(d[:8]) % uint64(len(b.overflow)))
}

func (b *buckets) tat(d digest) int64 {
	if e, ok := b.exact[d]; ok {
		return e.tat
	}
	return b.overflow[b.slot(d)]
}

// next returns the bucket's arrival time after one more attempt at now, and
// whether that attempt fits in the burst.
func (b *buckets) next(d digest, now int64) (int64, bool) {
	tat := max(b.tat(d), now)
	if tat-now > (b.burst-1)*b.interval {
		return 0, false
	}
	return tat + b.interval, true
}

func (b *buckets) set(d digest, tat int64, addr digest, now int64) {
	if _, ok := b.exact[d]; !ok && len(b.exact) >= b.maxKeys {
		b.sweep(now)
	}
	if _, ok := b.exact[d]; ok || len(b.exact) < b.maxKeys {
		b.exact[d] = bucket{tat: tat, addr: addr}
		return
	}
	s := b.slot(d)
	b.overflow[s] = max(b.overflow[s], tat)
}

// sweep drops buckets that are full again; at most once a second, so a spray
// cannot turn every request into a scan of the table.
func (b *buckets) sweep(now int64) {
	if now-b.lastSweep < int64(time.Second) {
		return
	}
	b.lastSweep = now
	for k, e := range b.exact {
		if e.tat <= now {
			delete(b.exact, k)
		}
	}
}

func (b *buckets) refund(d digest) {
	if e, ok := b.exact[d]; ok {
		e.tat -= b.interval
		b.exact[d] = e
	}
}
