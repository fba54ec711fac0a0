// Package mem owns an in-memory storage.Backend for tests: a map guarded by a mutex, with
// transactions that buffer their writes in an overlay applied only when fn succeeds.
//
// Threat model: none beyond the storage contract. Data lives in process memory and is lost on
// exit, so mem is not durable and must only ever be wired into tests, never into a server.
//
// This package imports only internal/storage of Coffer's packages.
package mem

import (
	"context"
	"errors"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Backend is an in-memory storage.Backend. Transactions hold an exclusive lock while fn runs,
// so they are serialisable; fn must not call the Backend itself (only the Tx it is given).
type Backend struct {
	mu     sync.RWMutex
	data   map[string][]byte
	closed bool
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty, open in-memory backend.
func New() *Backend {
	return &Backend{data: make(map[string][]byte)}
}

// check reports the error an operation must return before doing any work.
func (b *Backend) check(ctx context.Context) error {
	if b.closed {
		return storage.ErrClosed
	}
	return ctx.Err()
}

// Get returns a copy of the value stored at key, or ErrNotFound.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return lookup(b.data, nil, key)
}

// List returns one page of the keys that start with prefix, in ascending byte order.
func (b *Backend) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if err := b.check(ctx); err != nil {
		return storage.Page{}, err
	}
	return list(b.data, nil, prefix, opts), nil
}

// Put stores a copy of value at key.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	return b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, key, value) })
}

// Delete removes key; deleting a missing key is not an error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	return b.Txn(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, key) })
}

// Txn runs fn under the write lock against an overlay of the data and applies the overlay
// only if fn returns nil. A panic in fn propagates to the caller with nothing applied.
func (b *Backend) Txn(ctx context.Context, fn func(tx storage.Tx) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(ctx); err != nil {
		return err
	}
	tx := &memTx{base: b.data, writes: make(map[string]*[]byte)}
	defer func() { tx.done = true }()
	if err := fn(tx); err != nil {
		return err
	}
	for k, v := range tx.writes {
		if v == nil {
			delete(b.data, k)
		} else {
			b.data[k] = *v
		}
	}
	return nil
}

// View runs fn over a copy of the map taken under the read lock, so fn holds no lock and
// writes go on while it runs (values are never changed in place, only replaced).
func (b *Backend) View(ctx context.Context, fn func(r storage.Reader) error) error {
	b.mu.RLock()
	if err := b.check(ctx); err != nil {
		b.mu.RUnlock()
		return err
	}
	snap := maps.Clone(b.data)
	b.mu.RUnlock()
	tx := &memTx{base: snap}
	defer func() { tx.done = true }()
	return fn(struct{ storage.Reader }{tx})
}

// Ping reports ErrClosed after Close, and otherwise only the context's error.
func (b *Backend) Ping(ctx context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.check(ctx)
}

// Close discards the data. Operations after Close, including Close, return ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return storage.ErrClosed
	}
	b.closed = true
	b.data = nil
	return nil
}

// memTx is a Tx whose writes are buffered in writes: a nil entry is a delete.
type memTx struct {
	base   map[string][]byte
	writes map[string]*[]byte
	done   bool
}

// errTxDone is returned when a Tx is used after its Txn returned.
var errTxDone = errors.New("mem: transaction used after its Txn returned")

func (t *memTx) check(ctx context.Context) error {
	if t.done {
		return errTxDone
	}
	return ctx.Err()
}

func (t *memTx) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	return lookup(t.base, t.writes, key)
}

func (t *memTx) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	if err := t.check(ctx); err != nil {
		return storage.Page{}, err
	}
	return list(t.base, t.writes, prefix, opts), nil
}

func (t *memTx) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := t.check(ctx); err != nil {
		return err
	}
	v := append(make([]byte, 0, len(value)), value...)
	t.writes[key] = &v
	return nil
}

func (t *memTx) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := t.check(ctx); err != nil {
		return err
	}
	t.writes[key] = nil
	return nil
}

// lookup returns a copy of key's value in base as changed by writes, or ErrNotFound.
func lookup(base map[string][]byte, writes map[string]*[]byte, key string) ([]byte, error) {
	v, ok := base[key]
	if w, written := writes[key]; written {
		ok = w != nil
		if ok {
			v = *w
		}
	}
	if !ok {
		return nil, storage.ErrNotFound
	}
	return append(make([]byte, 0, len(v)), v...), nil
}

// list returns one page of the keys of base as changed by writes.
func list(base map[string][]byte, writes map[string]*[]byte, prefix string, opts storage.ListOptions) storage.Page {
	limit := storage.ClampLimit(opts.Limit)
	in := func(k string) bool { return k > opts.After && strings.HasPrefix(k, prefix) }
	var keys []string
	for k := range base {
		if _, written := writes[k]; !written && in(k) {
			keys = append(keys, k)
		}
	}
	for k, v := range writes {
		if v != nil && in(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) <= limit {
		return storage.Page{Keys: keys}
	}
	return storage.Page{Keys: keys[:limit:limit], Next: keys[limit-1]}
}
