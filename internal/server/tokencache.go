package server

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
)

// tokenCache remembers bearer tokens that passed validation for a given store tenant and
// audience, until they expire, so that a client reusing its token (as the Azure SDKs do for
// an hour) costs a hash and a map lookup instead of a signature check. Entries are keyed by
// SHA-256 of the token and the expectations, so a token is never accepted for another
// tenant or audience than the one it was checked against.
type tokenCache struct {
	mu  sync.Mutex
	m   map[[32]byte]cachedToken
	max int
}

type cachedToken struct {
	caller api.Caller
	exp    time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]cachedToken), max: max}
}

func cacheKey(raw, tenantID, resource string) [32]byte {
	bp := keyBufs.Get().(*[]byte)
	b := append((*bp)[:0], raw...)
	b = append(b, 0)
	b = append(b, tenantID...)
	b = append(b, 0)
	b = append(b, resource...)
	k := sha256.Sum256(b)
	clear(b) // it held a bearer token
	*bp = b[:0]
	keyBufs.Put(bp)
	return k
}

// keyBufs are cacheKey's scratch buffers: hashing through hash.Hash copied the token to the
// heap on every request.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func (c *tokenCache) get(k [32]byte, now time.Time) (api.Caller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return api.Caller{}, false
	}
	if !now.Before(e.exp) {
		delete(c.m, k)
		return api.Caller{}, false
	}
	return e.caller, true
}

func (c *tokenCache) put(k [32]byte, caller api.Caller, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m) // bounded memory beats a perfect hit rate
		}
	}
	c.m[k] = cachedToken{caller: caller, exp: exp}
}

// reset drops every entry (on seal: tokens are re-checked after unseal).
func (c *tokenCache) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
