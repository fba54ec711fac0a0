package barrier

import "sync"

// readCache keeps opened records by logical path so that a read of an unchanged record
// skips the backend's read transaction and the AES-GCM open (~8% of a secret read's server
// CPU, BENCHMARKS.md). It is correct only while every write to the data records passes
// through this Barrier — true for the embedded bbolt store, which one process owns — so it
// is off unless EnableReadCache turns it on; a shared backend (several nodes) must leave it
// off.
//
// Invalidation: a transaction evicts the paths it wrote twice. Once before the backend
// commits (writing): from then until the transaction is over the paths are pending, and no
// read fills them, so a read that starts after the commit reaches the backend and sees the
// commit, as reads of uncached records and listings do (without this, a reader could see a
// record of the transaction and the old value of another from the cache). Once after the
// commit (written), when the paths stop being pending. Both bump gen. A read notes gen
// before it reads the backend and fills the cache only if gen is unchanged and the path is
// not pending when it is done, so a value read before a concurrent write can never be
// cached after that write's eviction. Sealing, rotating the keyring and closing empty the
// cache and wipe the values it held.
type readCache struct {
	mu       sync.Mutex
	gen      uint64
	m        map[string][]byte
	pending  map[string]int // paths written by transactions not over yet, with their count
	size     int            // bytes of values held
	maxBytes int
}

// maxCachedRecord is the largest record the cache keeps: bigger ones (certificate chains,
// backups) are rare on the hot path and would crowd out the small ones.
const maxCachedRecord = 16 << 10

// EnableReadCache makes Get serve unchanged records from memory, holding at most maxBytes
// of opened values. Call it before serving, and only if nothing but this Barrier writes to
// the backend's data records (see readCache).
func (b *Barrier) EnableReadCache(maxBytes int) {
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	b.cache.maxBytes = maxBytes
}

// get returns a copy of the cached value at key (callers may clear what they get).
func (c *readCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// generation is the write generation a read must still see to fill the cache.
func (c *readCache) generation() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.maxBytes > 0
}

// fill caches a copy of value at key if no write happened since gen was read.
func (c *readCache) fill(key string, value []byte, gen uint64) {
	if len(value) > maxCachedRecord {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.maxBytes <= 0 || c.pending[key] > 0 {
		return
	}
	if c.size+len(value) > c.maxBytes {
		c.wipeLocked() // start over: simpler than an LRU, and the hot records come back at once
		c.gen = gen
	}
	if c.m == nil {
		c.m = make(map[string][]byte)
	}
	if old, ok := c.m[key]; ok {
		c.size -= len(old)
		clear(old)
	}
	c.m[key] = append([]byte(nil), value...)
	c.size += len(value)
}

// writing evicts keys a transaction is about to commit and makes them pending until written
// is called with them; it fails every read still in flight to fill.
func (c *readCache) writing(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evictLocked(keys)
	if len(keys) > 0 && c.pending == nil {
		c.pending = make(map[string]int)
	}
	for _, k := range keys {
		c.pending[k]++
	}
}

// written evicts keys after a write to them was committed (or failed: either way the
// cached value may be stale), ends the pending state writing gave them, and fails every
// read still in flight to fill.
func (c *readCache) written(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evictLocked(keys)
	for _, k := range keys {
		if n := c.pending[k]; n > 1 {
			c.pending[k] = n - 1
		} else {
			delete(c.pending, k)
		}
	}
}

func (c *readCache) evictLocked(keys []string) {
	c.gen++
	for _, k := range keys {
		if v, ok := c.m[k]; ok {
			c.size -= len(v)
			clear(v)
			delete(c.m, k)
		}
	}
}

// reset wipes every value and fails every read in flight to fill.
func (c *readCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.wipeLocked()
}

func (c *readCache) wipeLocked() {
	for _, v := range c.m {
		clear(v)
	}
	c.m, c.size = nil, 0
}
