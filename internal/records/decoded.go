package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Decoded keeps JSON records decoded, by path, with the bytes each was decoded from. A read
// still fetches the record (from the barrier, whose own cache makes that cheap); only when
// the bytes equal the cached bytes is the JSON decoding skipped, so an update, a rotation
// or another node's write is never missed. Decoding was ~12% of a key or secret read's
// handler CPU (BENCHMARKS.md).
//
// Callers get a deep copy made by the clone function, so nothing they change reaches the
// cache. The cache lives as long as its owner (a service, which the server drops on seal)
// and starts over when it holds max records.
type Decoded[T any] struct {
	mu    sync.Mutex
	m     map[string]decodedEntry[T]
	max   int
	clone func(*T) *T
}

type decodedEntry[T any] struct {
	raw []byte
	rec *T
}

// NewDecoded returns a cache of at most max records; clone must copy a record and
// everything it points to.
func NewDecoded[T any](max int, clone func(*T) *T) *Decoded[T] {
	return &Decoded[T]{max: max, clone: clone}
}

// Get reads and decodes the record at key, like Get; found is false if there is none.
func (d *Decoded[T]) Get(ctx context.Context, r storage.Reader, key string) (rec *T, found bool, err error) {
	return d.get(ctx, r, key, true)
}

// GetShared is Get without the copy on a cache hit: the record it returns may be the
// cache's own, shared with every other reader, so the caller must only read it — never
// change it or anything it points to, nor hand it on to code that might. It is for reads
// that render the record into a fresh value straight away (a key's GET, ~5 allocations
// fewer).
func (d *Decoded[T]) GetShared(ctx context.Context, r storage.Reader, key string) (rec *T, found bool, err error) {
	return d.get(ctx, r, key, false)
}

func (d *Decoded[T]) get(ctx context.Context, r storage.Reader, key string, clone bool) (rec *T, found bool, err error) {
	b, err := r.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", key, err)
	}
	d.mu.Lock()
	hit, ok := d.m[key]
	d.mu.Unlock()
	if ok && bytes.Equal(hit.raw, b) {
		clear(b)
		if !clone {
			return hit.rec, true, nil
		}
		return d.clone(hit.rec), true, nil
	}
	rec = new(T)
	if err := json.Unmarshal(b, rec); err != nil {
		clear(b)
		return nil, false, fmt.Errorf("decode %s: record is damaged", key)
	}
	d.mu.Lock()
	if d.m == nil || len(d.m) >= d.max {
		for _, e := range d.m {
			clear(e.raw)
		}
		d.m = make(map[string]decodedEntry[T])
	}
	if old, ok := d.m[key]; ok {
		clear(old.raw)
	}
	d.m[key] = decodedEntry[T]{raw: b, rec: d.clone(rec)}
	d.mu.Unlock()
	return rec, true, nil
}
