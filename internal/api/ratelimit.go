package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/tenancy"
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

// CreateWindow is the window of the key-creation limits: Key Vault counts key creations per
// vault per 10 seconds.
const CreateWindow = 10 * time.Second

// CreateLimiter is the separate, lower bucket of key creations (SECURITY-NOTES R2): per
// vault or managed HSM pool, at most limit weighted creations of software keys and hsmLimit
// of -HSM keys within any CreateWindow, a sliding window. Past it keys.Service answers the
// creation with the *ThrottleError it returns, before any key material is made.
type CreateLimiter struct {
	limit, hsmLimit int
	now             func() time.Time

	mu     sync.Mutex
	vaults map[createBucket]*createLog
	swept  time.Time
}

type createBucket struct {
	kind     tenancy.Kind
	name     string
	hsm      bool
	tenantID string
}

// createLog is a bucket's admitted creations within the window, oldest first.
type createLog struct {
	at     []time.Time
	weight []int
	sum    int
}

// NewCreateLimiter returns a limiter of limit weighted creations of software keys and
// hsmLimit of -HSM keys per vault within CreateWindow; 0 disables that limit. now is the
// clock (nil: time.Now).
func NewCreateLimiter(limit, hsmLimit int, now func() time.Time) *CreateLimiter {
	if now == nil {
		now = time.Now
	}
	return &CreateLimiter{limit: limit, hsmLimit: hsmLimit, now: now, vaults: map[createBucket]*createLog{}}
}

// AdmitCreate takes weight from v's bucket of software (hsm false) or -HSM key creations,
// or returns the *ThrottleError to answer, whose Retry-After is the time until the bucket
// has room for weight. A weight above the limit counts as the limit: such a creation fits
// an empty bucket.
func (l *CreateLimiter) AdmitCreate(v tenancy.Vault, hsm bool, weight int) error {
	limit := l.limit
	if hsm {
		limit = l.hsmLimit
	}
	if limit <= 0 {
		return nil
	}
	weight = min(max(weight, 1), limit)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	key := createBucket{kind: v.Kind, name: v.Name, hsm: hsm, tenantID: v.TenantID}
	b := l.vaults[key]
	if b == nil {
		b = &createLog{}
		l.vaults[key] = b
	}
	b.expire(now)
	if b.sum+weight > limit {
		// The oldest creations leave the window first: wait until enough have.
		freed, i := 0, 0
		for ; b.sum-freed+weight > limit; i++ {
			freed += b.weight[i]
		}
		kind := "key creations"
		if hsm {
			kind = "HSM key creations"
		}
		return &ThrottleError{RetryAfter: b.at[i-1].Add(CreateWindow).Sub(now),
			Reason: "the vault's " + kind + " exceed " + strconv.Itoa(limit) + " per 10 seconds (RSA-3072 counts 4, RSA-4096 8)"}
	}
	b.at, b.weight, b.sum = append(b.at, now), append(b.weight, weight), b.sum+weight
	return nil
}

// expire drops the creations that have left the window ending at now.
func (b *createLog) expire(now time.Time) {
	i := 0
	for i < len(b.at) && !now.Before(b.at[i].Add(CreateWindow)) {
		b.sum -= b.weight[i]
		i++
	}
	b.at, b.weight = b.at[i:], b.weight[i:]
}

// sweep forgets, once per window, the buckets whose creations have all left it.
func (l *CreateLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < CreateWindow {
		return
	}
	l.swept = now
	for k, b := range l.vaults {
		if b.expire(now); b.sum == 0 {
			delete(l.vaults, k)
		}
	}
}
