package models

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
)

// Session cache. Every request of a signed-in user resolves its cookie to a
// user; without a cache that is one query per request, the largest single
// cost of filing a claim after the claim itself (profiled at 800 claims/s).
// A web process keeps what it resolved for at most SessionCacheTTL, and only
// while it listens on SessionsChannel: triggers (migration 00010) NOTIFY on
// every statement that ends a session or changes a user, so a logout, a role
// change or a purge reaches every process within milliseconds, and this
// process's own changes evict before they return. Without the listener (a
// test, a lost connection) nothing is cached and every request asks the
// database, as before.
//
// The TTL bounds what a missed notification could cost and keeps last_seen
// (idle timeout) refreshed: a cached session is re-read, and its last_seen
// moved, at least every SessionCacheTTL while it is in use.

// SessionsChannel is the LISTEN/NOTIFY channel of session and user changes;
// the payload is a comma-separated list of user ids, or "*".
const SessionsChannel = "relief_sessions"

// SessionCacheTTL is the longest a process trusts a session it has read.
const SessionCacheTTL = 15 * time.Second

// sessionCacheMax bounds the cache; past it the cache starts over.
const sessionCacheMax = 100_000

type sessionCache struct {
	mu      sync.Mutex
	live    bool // the listener is connected: caching is allowed
	epoch   uint64
	entries map[[32]byte]cachedSession
	byUser  map[uuid.UUID]map[[32]byte]struct{} // the cached tokens of each user, for eviction by user
	indexed int                                 // tokens in byUser (they may outlive their entries)

	hits, misses atomic.Int64

	// reads lets one database read resolve a session for every request of
	// it that misses the cache meanwhile. A merchant's browser or client
	// sends several requests at once, and every cached session expires at
	// the end of its TTL: in a surge each expiry became a burst of identical
	// queries that grew the connection pool, and PostgreSQL spent the next
	// second starting and warming new backends with the machine already
	// full (README, Capacity).
	reads   singleflight.Group
	dbReads atomic.Int64 // sessions read from the database (SessionReads)
}

type cachedSession struct {
	user              User
	lastSeen, expires time.Time
	fetched           time.Time
}

// lookup returns a cached session that is still valid at now.
func (c *sessionCache) lookup(h [32]byte, now time.Time, idle time.Duration) (*User, time.Time, bool) {
	c.mu.Lock()
	e, ok := c.entries[h]
	stale := ok && (now.Sub(e.fetched) >= SessionCacheTTL || now.Before(e.fetched) ||
		!now.Before(e.expires) || now.Sub(e.lastSeen) >= idle)
	if stale {
		delete(c.entries, h) // the caller reads it again (and fills it anew if it is still valid)
	}
	c.mu.Unlock()
	if !ok || stale {
		c.misses.Add(1)
		return nil, time.Time{}, false
	}
	c.hits.Add(1)
	u := e.user // a copy: callers may not change what other requests see
	return &u, minTime(e.expires, e.lastSeen.Add(idle)), true
}

// begin returns the epoch a database read starts in; fill drops the result
// if anything was evicted meanwhile (it may be the session being read).
func (c *sessionCache) begin() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, c.live
}

func (c *sessionCache) fill(h [32]byte, epoch uint64, e cachedSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.epoch != epoch {
		return
	}
	if len(c.entries) >= sessionCacheMax || c.indexed >= 2*sessionCacheMax {
		c.entries, c.byUser, c.indexed = nil, nil, 0
	}
	if c.entries == nil {
		c.entries = map[[32]byte]cachedSession{}
		c.byUser = map[uuid.UUID]map[[32]byte]struct{}{}
	}
	tokens := c.byUser[e.user.ID]
	if tokens == nil {
		tokens = map[[32]byte]struct{}{}
		c.byUser[e.user.ID] = tokens
	}
	if _, had := tokens[h]; !had {
		tokens[h] = struct{}{}
		c.indexed++
	}
	c.entries[h] = e
}

// forgetToken, forgetUsers and forgetAll evict; each starts a new epoch.
func (c *sessionCache) forgetToken(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, h)
}

func (c *sessionCache) forgetUsers(ids ...uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, id := range ids {
		for h := range c.byUser[id] {
			delete(c.entries, h)
		}
		c.indexed -= len(c.byUser[id])
		delete(c.byUser, id)
	}
}

func (c *sessionCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.entries, c.byUser, c.indexed = nil, nil, 0
}

// setLive turns caching on (listener connected) or off (and empties it).
func (c *sessionCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.live = live
	c.entries, c.byUser, c.indexed = nil, nil, 0
}

// apply evicts what a notification names.
func (c *sessionCache) apply(payload string) {
	if payload == "*" || payload == "" {
		c.forgetAll()
		return
	}
	var ids []uuid.UUID
	for _, s := range strings.Split(payload, ",") {
		id, err := uuid.Parse(s)
		if err != nil {
			c.forgetAll() // not ours to understand: be safe
			return
		}
		ids = append(ids, id)
	}
	c.forgetUsers(ids...)
}

// SessionCacheStats reports lookups answered from the cache and those that
// asked the database, since the process started.
func (s *Store) SessionCacheStats() (hits, misses int64) {
	return s.sessions.hits.Load(), s.sessions.misses.Load()
}

// SessionReads counts the sessions this process has read from the database.
func (s *Store) SessionReads() int64 { return s.sessions.dbReads.Load() }

// CachedSessions reports how many sessions this process has cached (tests).
func (s *Store) CachedSessions() int {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return len(s.sessions.entries)
}

// WatchSessions lets this process cache session lookups, keeping the cache
// in step with the database through SessionsChannel, until ctx ends. On a
// lost connection the cache is emptied and off until the listener is back:
// caching starts only once LISTEN is in place, so that every change from
// then on is notified.
func (s *Store) WatchSessions(ctx context.Context, log *slog.Logger) {
	s.Listen(ctx, SessionsChannel, func() { s.sessions.setLive(true) }, s.sessions.apply, func(err error) {
		s.sessions.setLive(false)
		log.Warn("session cache off: listener lost, reconnecting", "err", err)
	})
	s.sessions.setLive(false)
}
