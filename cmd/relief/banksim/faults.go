package banksim

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Faults are the misbehaviours the sandbox injects, set at start (Config.Faults)
// or at runtime with PUT /admin/faults, which replaces them all and restarts the
// random source from Seed. With one client sending requests in sequence, the
// same Seed and settings inject the same faults into the same requests.
type Faults struct {
	Seed uint64 `json:"seed"`

	// Latency is added before every bank call (holder inquiry, transfer, lookup)
	// is processed: LatencyMS plus a uniform 0..LatencyJitterMS. A caller that
	// times out meanwhile gets an ambiguous error while the call still runs.
	LatencyMS       int `json:"latency_ms"`
	LatencyJitterMS int `json:"latency_jitter_ms"`

	// A bank call answers 503 before anything is stored, with this probability
	// and/or on every Nth call (0 = never).
	FailBeforeCommitRate  float64 `json:"fail_before_commit_rate"`
	FailBeforeCommitEvery int     `json:"fail_before_commit_every"`

	// A transfer is committed, then its response is lost, with this probability
	// and/or on every Nth transfer that got that far. Mode "drop" (default)
	// closes the connection without a response; "502" answers a bare 502.
	LoseAfterCommitRate  float64 `json:"lose_after_commit_rate"`
	LoseAfterCommitEvery int     `json:"lose_after_commit_every"`
	LoseAfterCommitMode  string  `json:"lose_after_commit_mode"`

	// DailyLimit caps the won credited to any one payee account per KST day
	// (0 = none); AccountDailyLimits overrides it per "bank/account".
	DailyLimit         int64            `json:"daily_limit"`
	AccountDailyLimits map[string]int64 `json:"account_daily_limits,omitempty"`

	// HolderMismatch lists "bank/account" entries whose holder the bank reports
	// as someone else: inquiry answers "다른예금주", transfers fail holder_mismatch.
	HolderMismatch []string `json:"holder_mismatch,omitempty"`
}

func (f Faults) validate() error {
	switch {
	case f.LatencyMS < 0 || f.LatencyJitterMS < 0 || f.LatencyMS+f.LatencyJitterMS > 120_000:
		return errors.New("latency_ms and latency_jitter_ms: 0..120000 in total")
	case f.FailBeforeCommitRate < 0 || f.FailBeforeCommitRate > 1 || f.LoseAfterCommitRate < 0 || f.LoseAfterCommitRate > 1:
		return errors.New("rates: 0..1")
	case f.FailBeforeCommitEvery < 0 || f.LoseAfterCommitEvery < 0:
		return errors.New("every: 0 (off) or more")
	case f.LoseAfterCommitMode != "" && f.LoseAfterCommitMode != "drop" && f.LoseAfterCommitMode != "502":
		return errors.New(`lose_after_commit_mode: "drop" or "502"`)
	case f.DailyLimit < 0:
		return errors.New("daily_limit: 0 (none) or more")
	}
	for k, l := range f.AccountDailyLimits {
		if l < 0 || !strings.Contains(k, "/") {
			return errors.New(`account_daily_limits: want "bank/account": limit >= 0`)
		}
	}
	for _, k := range f.HolderMismatch {
		if !strings.Contains(k, "/") {
			return errors.New(`holder_mismatch: want "bank/account" entries`)
		}
	}
	return nil
}

// faultKey normalises a "bank/account" entry the way requests are normalised.
func faultKey(s string) string {
	bankCode, account, _ := strings.Cut(s, "/")
	account, _ = normalizeAccount(account)
	return strings.TrimSpace(bankCode) + "/" + account
}

// chaos decides, request by request, which faults strike.
type chaos struct {
	mu       sync.Mutex
	f        Faults
	rng      *rand.Rand
	mismatch map[string]bool
	calls    int // bank calls seen, for FailBeforeCommitEvery
	commits  int // transfers committed, for LoseAfterCommitEvery
	failed   int // faults injected, for /v1/stats
	lost     int
}

func newChaos(f Faults) *chaos {
	c := &chaos{}
	c.set(f)
	return c
}

func (c *chaos) set(f Faults) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.f = f
	c.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	c.mismatch = make(map[string]bool, len(f.HolderMismatch))
	for _, k := range f.HolderMismatch {
		c.mismatch[faultKey(k)] = true
	}
	limits := make(map[string]int64, len(f.AccountDailyLimits))
	for k, l := range f.AccountDailyLimits {
		limits[faultKey(k)] = l
	}
	c.f.AccountDailyLimits = limits
	c.calls, c.commits = 0, 0
}

func (c *chaos) get() Faults {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f
}

// strike reports whether the nth event is hit by a fault firing every Nth time
// or with probability rate. The caller holds mu.
func (c *chaos) strike(n, every int, rate float64) bool {
	hit := every > 0 && n%every == 0
	if rate > 0 && c.rng.Float64() < rate {
		hit = true
	}
	return hit
}

func (c *chaos) latency() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := time.Duration(c.f.LatencyMS) * time.Millisecond
	if c.f.LatencyJitterMS > 0 {
		d += time.Duration(c.rng.IntN(c.f.LatencyJitterMS+1)) * time.Millisecond
	}
	return d
}

func (c *chaos) failBeforeCommit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	hit := c.strike(c.calls, c.f.FailBeforeCommitEvery, c.f.FailBeforeCommitRate)
	if hit {
		c.failed++
	}
	return hit
}

// loseAfterCommit reports whether to lose this transfer's response, and how.
func (c *chaos) loseAfterCommit() (lose bool, as502 bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commits++
	if !c.strike(c.commits, c.f.LoseAfterCommitEvery, c.f.LoseAfterCommitRate) {
		return false, false
	}
	c.lost++
	return true, c.f.LoseAfterCommitMode == "502"
}

func (c *chaos) dailyLimit(bankCode, account string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.f.AccountDailyLimits[bankCode+"/"+account]; ok {
		return l
	}
	return c.f.DailyLimit
}

func (c *chaos) forcedMismatch(bankCode, account string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mismatch[bankCode+"/"+account]
}

func (c *chaos) injected() (failed, lost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed, c.lost
}
