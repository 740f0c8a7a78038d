package models

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A lookup that read the database before an eviction must not put what it
// read into the cache afterwards: it may be the very session being ended.
func TestSessionCacheDropsReadsThatRacedAnEviction(t *testing.T) {
	var c sessionCache
	now := time.Now()
	u := User{ID: uuid.New()}
	h := sha256.Sum256([]byte("token"))
	entry := cachedSession{user: u, lastSeen: now, expires: now.Add(time.Hour), fetched: now}

	if _, live := c.begin(); live {
		t.Fatal("a cache without its listener must not be live")
	}
	epoch, _ := c.begin()
	c.fill(h, epoch, entry)
	if _, _, ok := c.lookup(h, now, time.Hour); ok {
		t.Fatal("filled while not live")
	}

	c.setLive(true)
	epoch, _ = c.begin()
	c.forgetUsers(u.ID) // a logout lands between the read and the fill
	c.fill(h, epoch, entry)
	if _, _, ok := c.lookup(h, now, time.Hour); ok {
		t.Fatal("a read older than an eviction was cached")
	}

	epoch, _ = c.begin()
	c.fill(h, epoch, entry)
	got, until, ok := c.lookup(h, now, time.Hour)
	if !ok || got.ID != u.ID || !until.Equal(now.Add(time.Hour)) {
		t.Fatalf("fresh fill: %v %v %v", got, until, ok)
	}
	got.Name = "changed by a handler"
	if again, _, _ := c.lookup(h, now, time.Hour); again.Name != "" {
		t.Fatal("callers share the cached user")
	}

	c.apply("not-a-uuid") // a payload we do not understand empties the cache
	if _, _, ok := c.lookup(h, now, time.Hour); ok {
		t.Fatal("an unreadable notification left entries behind")
	}
	epoch, _ = c.begin()
	c.fill(h, epoch, entry)
	c.apply(uuid.NewString() + "," + u.ID.String())
	if _, _, ok := c.lookup(h, now, time.Hour); ok {
		t.Fatal("a notification naming the user left their session cached")
	}
	epoch, _ = c.begin()
	c.fill(h, epoch, entry)
	c.setLive(false)
	if _, _, ok := c.lookup(h, now, time.Hour); ok {
		t.Fatal("a lost listener left entries behind")
	}
}
