package idp

import (
	"time"

	"github.com/coffer-kms/coffer/internal/failcount"
)

// failureLimiter slows down credential guessing at the token endpoint (SECURITY-NOTES A16,
// R3): after maxFailures failed authentications of one client id, or maxSourceFailures from
// one source address, within a minute, further requests of that client or source are
// refused with 429 until the window ends. Successful requests are never counted.
type failureLimiter struct {
	counts                         *failcount.Counter
	maxFailures, maxSourceFailures int
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	return &failureLimiter{counts: failcount.New(now, time.Minute), maxFailures: 20, maxSourceFailures: 100}
}

func sourceOf(remoteAddr string) string { return failcount.Source(remoteAddr) }

// blocked reports how long the client (tenant+app) or source must wait, or 0.
func (l *failureLimiter) blocked(client, source string) time.Duration {
	return max(l.counts.Blocked("c:"+client, l.maxFailures), l.counts.Blocked("s:"+source, l.maxSourceFailures))
}

// fail counts one failed authentication of client from source.
func (l *failureLimiter) fail(client, source string) {
	l.counts.Fail("c:"+client, "s:"+source)
}
