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
	h := sha256.New()
	h.Write([]byte(raw))
	h.Write([]byte{0})
	h.Write([]byte(tenantID))
	h.Write([]byte{0})
	h.Write([]byte(resource))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

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
