package handlers

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestThrottlePerAccountSlides(t *testing.T) {
	th := newLoginThrottle()
	t0 := time.Date(2025, 10, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < throttlePerKey; i++ {
		if !th.allow("victim@example.kr", fmt.Sprintf("198.51.100.%d", i), t0) {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if th.allow("victim@example.kr", "203.0.113.1", t0) {
		t.Fatal("11th attempt on one account allowed (from a fresh address)")
	}
	if !th.allow("other@example.kr", "203.0.113.1", t0) {
		t.Fatal("another account was throttled")
	}
	// One attempt comes back every window/burst, not all at once.
	step := throttleWindow / throttlePerKey
	if th.allow("victim@example.kr", "203.0.113.1", t0.Add(step-time.Second)) {
		t.Fatal("allowed before an attempt was regained")
	}
	if !th.allow("victim@example.kr", "203.0.113.1", t0.Add(step)) {
		t.Fatal("no attempt regained after window/burst")
	}
	if th.allow("victim@example.kr", "203.0.113.1", t0.Add(step)) {
		t.Fatal("regained more than one attempt")
	}
	// No global reset: an account that started guessing late is still
	// throttled right after the first account's window would have ended.
	t1 := t0.Add(14 * time.Minute)
	for i := 0; i < throttlePerKey; i++ {
		th.allow("late@example.kr", "192.0.2.44", t1)
	}
	if th.allow("late@example.kr", "192.0.2.44", t0.Add(throttleWindow+time.Second)) {
		t.Fatal("a fixed window reset let the late account guess again")
	}
	// After a full window of silence everything is back.
	if !th.allow("late@example.kr", "192.0.2.45", t1.Add(throttleWindow)) {
		t.Fatal("not refilled after a whole window")
	}
}

func TestThrottlePerAddressAndRefundOnSuccess(t *testing.T) {
	th := newLoginThrottle()
	t0 := time.Date(2025, 10, 1, 9, 0, 0, 0, time.UTC)
	// Password spraying: one address, many accounts.
	for i := 0; i < throttlePerAddr; i++ {
		if !th.allow(fmt.Sprintf("user%d@example.kr", i), "198.51.100.7", t0) {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if th.allow("fresh@example.kr", "198.51.100.7", t0) {
		t.Fatal("the address exceeded its budget")
	}
	if !th.allow("fresh@example.kr", "198.51.100.8", t0) {
		t.Fatal("another address was throttled")
	}
	// Successful logins behind one NAT give their attempt back to the address.
	nat := "203.0.113.200"
	for i := 0; i < 3*throttlePerAddr; i++ {
		email := fmt.Sprintf("merchant%d@example.kr", i)
		if !th.allow(email, nat, t0) {
			t.Fatalf("legitimate login %d behind a shared address refused", i+1)
		}
		th.reset(email)
	}
	// reset clears the account.
	for i := 0; i < throttlePerKey; i++ {
		th.allow("me@example.kr", "192.0.2.1", t0)
	}
	th.reset("me@example.kr")
	if !th.allow("me@example.kr", "192.0.2.1", t0) {
		t.Fatal("reset did not clear the account")
	}
}

// A spray of distinct e-mails from many addresses cannot grow the throttle
// without bound, nor push a victim's bucket out.
func TestThrottleMemoryIsBounded(t *testing.T) {
	th := newLoginThrottle()
	t0 := time.Date(2025, 10, 1, 9, 0, 0, 0, time.UTC)
	for i := 0; i < throttlePerKey; i++ {
		th.allow("victim@example.kr", "192.0.2.1", t0)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const spray = 3 * throttleMaxKeys
	for i := 0; i < spray; i++ {
		th.allow(fmt.Sprintf("spray-%d@example.kr", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), t0.Add(time.Duration(i)*time.Microsecond))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := len(th.perKey.exact); n > throttleMaxKeys {
		t.Fatalf("%d account buckets kept, bound is %d", n, throttleMaxKeys)
	}
	if n := len(th.perAddr.exact); n > throttleMaxKeys {
		t.Fatalf("%d address buckets kept, bound is %d", n, throttleMaxKeys)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 32<<20 {
		t.Fatalf("heap grew by %d MiB for %d sprayed accounts", grown>>20, spray)
	}
	if th.allow("victim@example.kr", "192.0.2.99", t0.Add(time.Second)) {
		t.Fatal("the spray evicted the victim's bucket")
	}
	// Long after, the table drains: full buckets are dropped.
	later := t0.Add(2 * throttleWindow)
	th.allow("someone@example.kr", "192.0.2.2", later)
	th.allow("someone-else@example.kr", "192.0.2.3", later.Add(2*time.Second))
	if n := len(th.perKey.exact); n > 10 {
		t.Fatalf("%d stale buckets survived a sweep", n)
	}
}
