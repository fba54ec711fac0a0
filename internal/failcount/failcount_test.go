package failcount

import (
	"fmt"
	"testing"
	"time"
)

// TestWindows: a key is blocked once it has failed max times in its window, for the rest of
// the window; other keys are not; the count starts over in the next window, and when the
// clock goes back.
func TestWindows(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := New(func() time.Time { return now }, time.Minute)
	for range 3 {
		if w := c.Blocked("a", 3); w != 0 {
			t.Fatalf("blocked after fewer than 3 failures (%s)", w)
		}
		c.Fail("a", "b")
	}
	now = now.Add(20 * time.Second)
	if w := c.Blocked("a", 3); w != 40*time.Second {
		t.Errorf("Blocked after 3 failures = %s; want the 40 s left of the window", w)
	}
	if w := c.Blocked("b", 4); w != 0 {
		t.Errorf("b (3 of 4) blocked for %s", w)
	}
	if w := c.Blocked("other", 1); w != 0 {
		t.Errorf("a key without failures blocked for %s", w)
	}
	now = now.Add(40 * time.Second)
	if w := c.Blocked("a", 3); w != 0 {
		t.Errorf("blocked in the next window for %s", w)
	}
	c.Fail("a", "a", "a")
	now = now.Add(-time.Hour)
	if w := c.Blocked("a", 3); w != 0 {
		t.Errorf("blocked for %s after the clock went back", w)
	}
}

// TestBounded: a flood of distinct keys does not grow the counts past maxKeys.
func TestBounded(t *testing.T) {
	c := New(nil, time.Minute)
	for i := range maxKeys + 10 {
		c.Fail(fmt.Sprint(i))
	}
	if n := len(c.counts); n > maxKeys+1 {
		t.Errorf("%d keys counted; want at most %d", n, maxKeys+1)
	}
	if got := Source("192.0.2.7:4431"); got != "192.0.2.7" {
		t.Errorf("Source = %q", got)
	}
	// An IPv6 source counts by its /64: its other addresses are the same source.
	for addr, want := range map[string]string{
		"[2001:db8::1]:443":      "2001:db8::/64",
		"[2001:db8::ffff:1]:443": "2001:db8::/64",
		"[2001:db8:0:1::1]:443":  "2001:db8:0:1::/64",
		"[::ffff:192.0.2.7]:443": "192.0.2.7",
		"[fe80::1%eth0]:443":     "fe80::/64",
		"not-an-address":         "not-an-address",
	} {
		if got := Source(addr); got != want {
			t.Errorf("Source(%q) = %q; want %q", addr, got, want)
		}
	}
}
