package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
)

// AES-GCM invocation limit (SECURITY-NOTES C4). An oct-HSM key encrypts A128GCM, A192GCM
// and A256GCM with a 96-bit IV its provider draws at random; NIST SP 800-38D §8.3 allows
// such a key at most 2^32 invocations, beyond which the chance of two equal IVs (which
// gives away the authentication key and the XOR of the plaintexts) exceeds 2^-32. Every
// GCM encryption of a key version is counted here and the one past the limit is refused
// (ErrGCMLimit); decryption is never counted or refused.
//
// The count is not written per encryption. A sealed record per token key holds the ceiling
// reserved so far; the service counts in memory up to it and, when it gets there, raises
// the stored ceiling by a block durably (a committed transaction) before it encrypts again.
// After a restart or kill -9 the count resumes at the stored ceiling, so the unused rest of
// the last block is lost but nothing used is ever counted twice as free. The reservation
// reads the stored ceiling in the same transaction it raises it in, so servers sharing one
// store never reserve the same block.
//
// The record is keyed by the version's provider handle (SHA-256 of its exact bytes), not
// by the key's name: a vault's HSM key restores from a backup by reference to the same
// token object, and its count must survive the purge and restore (the record is kept when
// the key is purged).
const (
	// GCMLimit is the number of AES-GCM encryptions one key version may make.
	GCMLimit = uint64(1) << 32
	// gcmBlock is how many encryptions one durable reservation covers.
	gcmBlock = uint64(1) << 20
	// gcmCountPrefix is where the records live, under tenants/<tid>/.
	gcmCountPrefix = "keygcm/"
)

// ErrGCMLimit: the key version has made GCMLimit AES-GCM encryptions and makes no more;
// it still decrypts. It wraps ErrForbiddenOp (403).
var ErrGCMLimit = fmt.Errorf("%w: AES-GCM invocation limit reached", ErrForbiddenOp)

// gcmRecord is the stored reservation of a token key: encryptions up to Ceiling may have
// been made.
type gcmRecord struct {
	V       int    `json:"v"`
	Ceiling uint64 `json:"ceiling"`
}

// gcmCounters counts AES-GCM encryptions per token key, in memory within the reserved
// ceilings. One entry per key used since start: entries are never dropped, because a
// dropped entry would waste the rest of its block on every reload.
type gcmCounters struct {
	limit, block uint64 // GCMLimit and gcmBlock, lowered by tests (export_test.go)
	mu           sync.Mutex
	m            map[string]*gcmCount
}

// gcmCount is one key's count: used encryptions of the reserved ceiling. mu is held across
// a reservation, so a key's encryptions wait for it (once per block).
type gcmCount struct {
	mu            sync.Mutex
	loaded        bool
	used, ceiling uint64
}

func newGCMCounters() *gcmCounters {
	return &gcmCounters{limit: GCMLimit, block: gcmBlock, m: map[string]*gcmCount{}}
}

// isGCM reports whether an encryption of a key of type kty with alg is counted.
func isGCM(kty provider.KeyType, alg string) bool {
	return baseType(kty) == provider.Oct &&
		(alg == provider.AlgA128GCM || alg == provider.AlgA192GCM || alg == provider.AlgA256GCM)
}

// gcmCountPath is the record of the token key that handle names.
func gcmCountPath(tenantID string, handle []byte) string {
	sum := sha256.Sum256(handle)
	return "tenants/" + tenantID + "/" + gcmCountPrefix + hex.EncodeToString(sum[:])
}

// take counts one encryption by the key at path, reserving a block first when the
// reserved ceiling is used up; name and version word the refusal past the limit.
func (g *gcmCounters) take(ctx context.Context, store storage.Backend, path, name, version string) error {
	g.mu.Lock()
	c := g.m[path]
	if c == nil {
		c = &gcmCount{}
		g.m[path] = c
	}
	g.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded || c.used >= c.ceiling && c.ceiling < g.limit {
		if err := g.reserve(ctx, store, path, c); err != nil {
			return err
		}
	}
	if c.used >= g.limit {
		return errorf(ErrGCMLimit, "Key %s version %s has reached the AES-GCM limit of %s encryptions with random IVs (NIST SP 800-38D §8.3) and encrypts no more; decrypt with it still works. Rotate the key (create a new version) and encrypt with the new version.", name, version, limitText(g.limit))
	}
	c.used++
	return nil
}

// reserve raises the stored ceiling by a block (at most to the limit) in one committed
// transaction and continues the count from the ceiling stored before: the rest of a block
// reserved earlier (before a restart, or by another server) is never used.
func (g *gcmCounters) reserve(ctx context.Context, store storage.Backend, path string, c *gcmCount) error {
	var from, to uint64
	err := store.Txn(ctx, func(tx storage.Tx) error {
		var r gcmRecord
		if _, err := records.Get(ctx, tx, path, &r); err != nil {
			return err
		}
		from, to = max(r.Ceiling, c.ceiling), min(max(r.Ceiling, c.ceiling)+g.block, g.limit)
		if to == r.Ceiling {
			return nil // at the limit: nothing to reserve
		}
		return records.Put(ctx, tx, path, gcmRecord{V: 1, Ceiling: to})
	})
	if err != nil {
		return fmt.Errorf("reserve AES-GCM encryptions: %w", err)
	}
	c.loaded, c.used, c.ceiling = true, from, to
	return nil
}

// limitText writes the limit as the message states it: 2^32, or a test's lowered number.
func limitText(n uint64) string {
	if n == GCMLimit {
		return "2^32"
	}
	return fmt.Sprint(n)
}

// LowerGCMLimitForTest makes the service refuse AES-GCM encryptions past limit instead of
// GCMLimit, reserving block at a time. Tests only: call it before the service is used.
func (s *Service) LowerGCMLimitForTest(limit, block uint64) {
	s.gcm.limit, s.gcm.block = min(limit, GCMLimit), max(block, 1)
}
