package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limiter keeps one tenant's load from starving another's: a token bucket of requests per
// second and a cap on requests in flight, per tenant. Over either limit a request gets 429
// Throttled with Retry-After, Key Vault's throttling answer.
type Limiter struct {
	rate, burst   float64
	maxConcurrent int

	mu      sync.Mutex
	tenants map[string]*tenantBucket
}

type tenantBucket struct {
	tokens   float64
	last     time.Time
	inFlight int
}

// NewLimiter returns a limiter allowing rate requests per second with bursts of burst, and at
// most maxConcurrent requests in flight, per tenant. Zero values disable that limit.
func NewLimiter(rate, burst float64, maxConcurrent int) *Limiter {
	return &Limiter{rate: rate, burst: burst, maxConcurrent: maxConcurrent, tenants: map[string]*tenantBucket{}}
}

// Acquire admits one request of tenant at now. When admitted it returns a release function to
// call when the request ends; otherwise the error to answer (429 with its Retry-After).
func (l *Limiter) Acquire(tenant string, now time.Time) (func(), *ThrottleError) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.tenants[tenant]
	if b == nil {
		b = &tenantBucket{tokens: l.burst, last: now}
		l.tenants[tenant] = b
	}
	if l.rate > 0 {
		b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
		if b.tokens < 1 {
			wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
			return nil, &ThrottleError{RetryAfter: wait, Reason: "the tenant's request rate limit is exceeded"}
		}
	}
	if l.maxConcurrent > 0 && b.inFlight >= l.maxConcurrent {
		return nil, &ThrottleError{RetryAfter: time.Second, Reason: "the tenant has too many requests in flight"}
	}
	if l.rate > 0 {
		b.tokens--
	}
	b.inFlight++
	return func() {
		l.mu.Lock()
		b.inFlight--
		l.mu.Unlock()
	}, nil
}

// ThrottleError is a 429 answer.
type ThrottleError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *ThrottleError) Error() string { return e.Reason }

// write sends Key Vault's 429 Throttled with Retry-After (whole seconds, at least 1).
func (e *ThrottleError) write(w http.ResponseWriter) *Error {
	secs := int(math.Ceil(e.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return WriteError(w, Errorf(http.StatusTooManyRequests, "Throttled", "Request was not processed because too many requests were received. Reason: "+e.Reason+". Retry after "+strconv.Itoa(secs)+" seconds."))
}
