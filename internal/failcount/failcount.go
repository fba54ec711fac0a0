// Package failcount counts failed authentications per key (a client, a source address) in
// fixed windows, so that guessing credentials or flooding a server with bad tokens is
// refused early once a key has failed too often (SECURITY-NOTES A16, R3). Successes are
// never counted; memory stays bounded under a flood of distinct keys.
package failcount

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxKeys bounds the keys counted: past it the counts start over (bounded memory beats
// perfect counting under a flood of distinct keys).
const maxKeys = 100000

// Counter counts failures per key in windows of Window.
type Counter struct {
	now    func() time.Time
	window time.Duration

	mu     sync.RWMutex // Blocked, asked before every token check, only reads
	counts map[string]*count
}

type count struct {
	n     int
	start time.Time
}

// New returns a Counter with windows of window; now is the clock (nil: time.Now).
func New(now func() time.Time, window time.Duration) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{now: now, window: window, counts: map[string]*count{}}
}

// Blocked reports how long key must wait before it may try again — until its window ends —
// once it has failed max times in the window; 0 if it may go on.
func (c *Counter) Blocked(key string, max int) time.Duration {
	c.mu.RLock()
	n := c.counts[key]
	var start time.Time
	var failed int
	if n != nil {
		start, failed = n.start, n.n
	}
	c.mu.RUnlock()
	now := c.now()
	if failed < max || now.Sub(start) >= c.window || now.Before(start) {
		return 0 // a passed window is replaced by the next Fail
	}
	return start.Add(c.window).Sub(now)
}

// Fail counts one failure of each key.
func (c *Counter) Fail(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.counts) > maxKeys {
		clear(c.counts)
	}
	for _, k := range keys {
		n := c.counts[k]
		if n == nil || now.Sub(n.start) >= c.window || now.Before(n.start) {
			n = &count{start: now}
			c.counts[k] = n
		}
		n.n++
	}
}

// SourceKey is what a source address is counted under: an IPv4 address alone (an
// IPv4-mapped IPv6 address as its IPv4 address), an IPv6 address by its /64, which one site
// or host is normally given whole (RFC 6177), so that stepping through the addresses of one
// /64 does not escape a per-source limit. The zone is dropped.
func SourceKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Source returns the key of a request's RemoteAddr (SourceKey) as text: "192.0.2.7",
// "2001:db8::/64"; a RemoteAddr that is not an IP address and port is its own key.
func Source(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
			return h
		}
		return remoteAddr
	}
	k := SourceKey(ap.Addr())
	if k.Addr().Is4() {
		return k.Addr().String()
	}
	return k.String()
}
