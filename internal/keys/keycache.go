package keys

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/coffer-kms/coffer/internal/provider"
)

// keyCache keeps keys the provider has loaded, by SHA-256 of their handle, so a crypto
// operation does not re-parse (and, for RSA, re-validate) the key every time. It lives as
// long as the Service, which the server drops on seal. Bounded: when full it starts over.
type keyCache struct {
	mu  sync.Mutex
	m   map[[32]byte]provider.Key
	max int
}

func (c *keyCache) get(h []byte) (provider.Key, bool) {
	k := sha256.Sum256(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.m[k]
	return key, ok
}

func (c *keyCache) put(h []byte, key provider.Key) {
	k := sha256.Sum256(h)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[[32]byte]provider.Key)
	}
	c.m[k] = key
}

func (c *keyCache) drop(h []byte) {
	k := sha256.Sum256(h)
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// load returns the provider key of a handle, from the cache when possible.
func (s *Service) load(ctx context.Context, handle []byte) (provider.Key, error) {
	if key, ok := s.keys.get(handle); ok {
		return key, nil
	}
	key, err := s.prov.Load(ctx, handle)
	if err != nil {
		return nil, err
	}
	s.keys.put(handle, key)
	return key, nil
}
