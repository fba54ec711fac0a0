package idp

import (
	"net"
	"sync"
	"time"
)

// failureLimiter slows down credential guessing at the token endpoint (SECURITY-NOTES A16,
// R3): after MaxFailures failed authentications of one client id, or MaxSourceFailures from
// one source address, within Window, further requests of that client or source are refused
// with 429 until the window ends. Successful requests are never counted.
type failureLimiter struct {
	now               func() time.Time
	window            time.Duration
	maxFailures       int
	maxSourceFailures int

	mu     sync.Mutex
	counts map[string]*failureCount
}

type failureCount struct {
	n     int
	start time.Time
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	return &failureLimiter{now: now, window: time.Minute, maxFailures: 20, maxSourceFailures: 100, counts: map[string]*failureCount{}}
}

func sourceOf(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// blocked reports how long the client (tenant+app) or source must wait, or 0.
func (l *failureLimiter) blocked(client, source string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	wait := time.Duration(0)
	for _, k := range []struct {
		key string
		max int
	}{{"c:" + client, l.maxFailures}, {"s:" + source, l.maxSourceFailures}} {
		c := l.counts[k.key]
		if c == nil {
			continue
		}
		if now.Sub(c.start) >= l.window {
			delete(l.counts, k.key)
			continue
		}
		if c.n >= k.max {
			if w := c.start.Add(l.window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	return wait
}

// fail counts one failed authentication of client from source.
func (l *failureLimiter) fail(client, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.counts) > 100000 {
		clear(l.counts) // bounded memory beats perfect counting under a flood
	}
	for _, k := range []string{"c:" + client, "s:" + source} {
		c := l.counts[k]
		if c == nil || now.Sub(c.start) >= l.window {
			c = &failureCount{start: now}
			l.counts[k] = c
		}
		c.n++
	}
}
