package models_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/vault"
)

// watchedStore is a seeded store whose session cache is live, plus a second
// store on the same database standing for another web process.
func watchedStore(t *testing.T) (s, other *models.Store, clock *secClock) {
	t.Helper()
	keys := vault.NewKeySpec("k1")
	s, url := secStore(t, keys)
	other = secOpen(t, url, keys)
	clock = &secClock{t: time.Now()}
	s.Now = clock.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.WatchSessions(ctx, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the session listener", func() bool {
		tok := login(t, s, merchantOf(t, s))
		_, err := s.SessionUser(context.Background(), tok, time.Hour)
		return err == nil && s.CachedSessions() > 0
	})
	return s, other, clock
}

func merchantOf(t *testing.T, s *models.Store) *models.User {
	t.Helper()
	return secUser(t, s, "m-"+models.NewSessionToken()[:8]+"@shop.kr", "", models.RoleMerchant)
}

func login(t *testing.T, s *models.Store, u *models.User) string {
	t.Helper()
	tok := models.NewSessionToken()
	if err := s.CreateSession(context.Background(), u.ID, tok, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	return tok
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A session ended by another process (or by psql) stops working here as soon
// as the notification arrives, although this process had it cached.
func TestSessionCacheEvictedByOtherProcesses(t *testing.T) {
	s, other, _ := watchedStore(t)
	ctx := context.Background()
	m := merchantOf(t, s)
	tok := login(t, s, m)
	alive := func() bool { _, err := s.SessionUser(ctx, tok, time.Hour); return err == nil }
	for range 2 { // the second lookup is answered from the cache
		if !alive() {
			t.Fatal("fresh session refused")
		}
	}
	// Logout on another web process.
	if err := other.DeleteSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "logout elsewhere to end the cached session", func() bool { return !alive() })

	// A role change by SQL ends sessions through the users trigger.
	tok = login(t, s, m)
	if !alive() {
		t.Fatal("second session refused")
	}
	if _, err := other.Pool.Exec(ctx, `UPDATE users SET roles = ARRAY['merchant','reviewer'], agency_code = 'KPOST' WHERE id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a role change to end the cached session", func() bool { return !alive() })

	// A rename reaches the cached user too.
	tok = login(t, s, m)
	if !alive() {
		t.Fatal("third session refused")
	}
	if _, err := other.Pool.Exec(ctx, `UPDATE users SET name = '새 이름' WHERE id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a rename to reach the cached user", func() bool {
		u, err := s.SessionUser(ctx, tok, time.Hour)
		return err == nil && u.Name == "새 이름"
	})
}

// This process's own logout and role change take effect before they return,
// without waiting for the notification.
func TestSessionCacheEvictsOwnChangesAtOnce(t *testing.T) {
	s, _, _ := watchedStore(t)
	ctx := context.Background()
	admin := secUser(t, s, "admin2@kpost.kr", "KPOST", models.RoleProgramAdmin)
	staff := secUser(t, s, "rev2@kpost.kr", "KPOST", models.RoleReviewer)
	for i := 0; i < 20; i++ {
		tok := login(t, s, staff)
		if _, err := s.SessionUser(ctx, tok, time.Hour); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.DeleteSession(ctx, tok); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.ChangeUserRoles(ctx, admin, staff.ID, []string{models.RoleReviewer}, "KPOST"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, tok, time.Hour); err == nil {
			t.Fatalf("round %d: an ended session still resolved from the cache", i)
		}
	}
}

// The cache is really used, and trusted for at most SessionCacheTTL: with the
// notification switched off, a deleted session keeps working from the cache
// until the TTL passes, then never again.
func TestSessionCacheTTLBoundsStaleness(t *testing.T) {
	s, _, clock := watchedStore(t)
	ctx := context.Background()
	tok := login(t, s, merchantOf(t, s))
	if _, err := s.SessionUser(ctx, tok, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `ALTER TABLE sessions DISABLE TRIGGER sessions_notify_users`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, tok, time.Hour); err != nil {
		t.Fatalf("within the TTL the cached session should still answer: %v", err)
	}
	clock.Add(models.SessionCacheTTL)
	if _, err := s.SessionUser(ctx, tok, time.Hour); err == nil {
		t.Fatal("a session deleted without notification outlived the cache TTL")
	}
}

// Idle and absolute timeouts hold for cached sessions as for stored ones.
func TestSessionCacheKeepsTimeouts(t *testing.T) {
	s, _, clock := watchedStore(t)
	ctx := context.Background()
	tok := login(t, s, merchantOf(t, s))
	idle := 10 * time.Second // shorter than the cache TTL on purpose
	if _, err := s.SessionUser(ctx, tok, idle); err != nil {
		t.Fatal(err)
	}
	clock.Add(idle + time.Second)
	if _, err := s.SessionUser(ctx, tok, idle); err == nil {
		t.Fatal("an idle session resolved from the cache")
	}
}

// Without the listener nothing is cached: every lookup asks the database.
func TestSessionCacheOffWithoutListener(t *testing.T) {
	s, _ := secStore(t, vault.NewKeySpec("k1"))
	ctx := context.Background()
	tok := login(t, s, merchantOf(t, s))
	for i := 0; i < 3; i++ {
		if _, err := s.SessionUser(ctx, tok, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.CachedSessions(); n != 0 {
		t.Fatalf("cached %d sessions without a listener", n)
	}
}

// Requests of one session that miss the cache together share one database
// read. At the end of every TTL, and before a session is cached at all,
// each request in flight used to read it itself: in a surge, a burst of
// identical queries that grew the connection pool.
func TestSessionReadIsShared(t *testing.T) {
	s, _, clock := watchedStore(t)
	ctx := context.Background()
	u := merchantOf(t, s)
	tok := login(t, s, u)
	const n = 64
	for round := range 3 {
		before := s.SessionReads()
		users := make([]*models.User, n)
		errs := make([]error, n)
		atOnce(n, func(i int) { users[i], errs[i] = s.SessionUser(ctx, tok, time.Hour) })
		for i := range n {
			if errs[i] != nil || users[i] == nil || users[i].ID != u.ID {
				t.Fatalf("round %d, request %d: %+v %v", round, i, users[i], errs[i])
			}
			if i > 0 && users[i] == users[0] {
				t.Fatalf("round %d: requests were given one *User to share", round)
			}
		}
		// One read, or two when a request checked the cache just before the
		// read filled it and asked just after the read ended.
		if reads := s.SessionReads() - before; reads < 1 || reads > 2 {
			t.Fatalf("round %d: %d requests at once read the session %d times", round, n, reads)
		}
		clock.Add(models.SessionCacheTTL) // the entry expires: the next round misses again
	}
	// A request after a logout does not join a read from before it.
	if err := s.DeleteSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, tok, time.Hour); err == nil {
		t.Fatal("a session resolved after its logout")
	}
}
