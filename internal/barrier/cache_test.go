package barrier

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

// countingBackend counts the reads that reach the backend.
type countingBackend struct {
	storage.Backend
	gets atomic.Int64
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}

func newCached(t testing.TB) (*Barrier, *Manager, *countingBackend) {
	t.Helper()
	b, m, raw := newUnsealed(t)
	cb := &countingBackend{Backend: raw}
	b.backend = cb
	b.EnableReadCache(1 << 20)
	return b, m, cb
}

// The cached barrier still passes the whole storage conformance suite.
func TestReadCacheConformance(t *testing.T) {
	storagetest.RunMaxKeyLen(t, MaxKeyLen, func(t *testing.T) storage.Backend {
		b, _, _ := newCached(t)
		return b
	})
}

// A second read of an unchanged record does not reach the backend; every kind of write
// (Put, Delete, Txn) is seen by the next read; callers may clear what they get.
func TestReadCacheHitsAndWrites(t *testing.T) {
	ctx := context.Background()
	b, _, cb := newCached(t)
	if err := b.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	read := func(want string) {
		t.Helper()
		v, err := b.Get(ctx, "k")
		if want == "" {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get = %q, %v; want ErrNotFound", v, err)
			}
			return
		}
		if err != nil || string(v) != want {
			t.Fatalf("Get = %q, %v; want %q", v, err, want)
		}
		clear(v) // must not reach the cache
	}
	read("v1")
	n := cb.gets.Load()
	read("v1")
	read("v1")
	if got := cb.gets.Load(); got != n {
		t.Errorf("two cached reads reached the backend %d times; want 0", got-n)
	}
	if err := b.Put(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	read("v2")
	if err := b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, "k", []byte("v3")) }); err != nil {
		t.Fatal(err)
	}
	read("v3")
	read("v3")
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	read("")
	// A failed transaction changes nothing, and the next read still sees the stored value.
	if err := b.Put(ctx, "k", []byte("v4")); err != nil {
		t.Fatal(err)
	}
	read("v4")
	boom := errors.New("boom")
	if err := b.Txn(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, "k", []byte("v5")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Txn = %v; want boom", err)
	}
	read("v4")
}

// Sealing empties the cache: nothing is served while sealed, and after unsealing reads go
// to the backend again.
func TestReadCacheSealWipes(t *testing.T) {
	ctx := context.Background()
	b, m, cb := newCached(t)
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	m.Seal()
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrSealed) {
		t.Fatalf("Get while sealed = %v; want ErrSealed", err)
	}
	if len(b.cache.m) != 0 || b.cache.size != 0 {
		t.Errorf("after Seal the cache holds %d records (%d bytes)", len(b.cache.m), b.cache.size)
	}
	_ = cb
}

// Readers racing a writer never see a value older than the last acknowledged write: a read
// that began before a write must not put the old value back after the write's eviction.
func TestReadCacheNeverStale(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newCached(t)
	if err := b.Put(ctx, "n", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				min := acked.Load()
				v, err := b.Get(ctx, "n")
				if err != nil {
					t.Error(err)
					return
				}
				got, _ := strconv.ParseInt(string(v), 10, 64)
				if got < min {
					t.Errorf("read %d after write %d was acknowledged", got, min)
					return
				}
			}
		}()
	}
	for i := int64(1); i <= 2000; i++ {
		var err error
		if i%2 == 0 {
			err = b.Put(ctx, "n", []byte(strconv.FormatInt(i, 10)))
		} else {
			err = b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, "n", []byte(strconv.FormatInt(i, 10))) })
		}
		if err != nil {
			t.Fatal(err)
		}
		acked.Store(i)
	}
	close(stop)
	wg.Wait()
}

// The budget holds: filling past maxBytes starts over instead of growing.
func TestReadCacheBudget(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newCached(t)
	b.EnableReadCache(4096)
	val := make([]byte, 1000)
	for i := range 20 {
		k := "k" + strconv.Itoa(i)
		if err := b.Put(ctx, k, val); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
		if b.cache.size > 4096 {
			t.Fatalf("cache holds %d bytes; budget 4096", b.cache.size)
		}
	}
}

// hookedBackend runs afterCommit once a transaction has committed in the backend, before
// the Barrier's Txn returns (the window where the barrier evicts what it wrote), and
// afterGet after a Get read the backend, before that Get returns.
type hookedBackend struct {
	storage.Backend
	afterCommit func()
	afterGet    func()
}

func (h *hookedBackend) Txn(ctx context.Context, fn func(tx storage.Tx) error) error {
	err := h.Backend.Txn(ctx, fn)
	if err == nil && h.afterCommit != nil {
		h.afterCommit()
	}
	return err
}

func (h *hookedBackend) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := h.Backend.Get(ctx, key)
	if h.afterGet != nil {
		h.afterGet()
	}
	return v, err
}

// A transaction's writes are visible through the cache as soon as the backend has committed
// them, not only once Txn returns: otherwise a reader could see one record of a transaction
// (read from the backend) and the old version of another (from the cache): a certificate's
// new version listed but the certificate record still naming the old one as latest.
func TestReadCacheCommittedWriteVisible(t *testing.T) {
	ctx := context.Background()
	b, _, cb := newCached(t)
	hb := &hookedBackend{Backend: b.backend}
	b.backend = hb
	mustRead := func(key, want string) {
		t.Helper()
		if v, err := b.Get(ctx, key); err != nil || string(v) != want {
			t.Errorf("Get(%q) after the commit, before Txn returned = %q, %v; want %q", key, v, err, want)
		}
	}

	// A cached record written by a transaction.
	if err := b.Put(ctx, "cached", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	mustRead("cached", "v1") // fills the cache
	hb.afterCommit = func() { mustRead("cached", "v2") }
	if err := b.Put(ctx, "cached", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	hb.afterCommit = nil

	// A read that got the old value from the backend before the commit and fills the cache
	// after it, while the writer has not returned yet.
	if err := b.Put(ctx, "raced", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	readOld, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	hb.afterGet = func() {
		hb.afterGet = nil // only the racing read waits
		close(readOld)
		<-release
	}
	go func() {
		defer close(done)
		if v, err := b.Get(ctx, "raced"); err != nil || string(v) != "v1" {
			t.Errorf("racing Get = %q, %v; want the old value v1", v, err)
		}
	}()
	<-readOld
	hb.afterCommit = func() {
		close(release)
		<-done
		mustRead("raced", "v2")
	}
	if err := b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, "raced", []byte("v2")) }); err != nil {
		t.Fatal(err)
	}
	hb.afterCommit = nil
	mustRead("raced", "v2")
	mustRead("cached", "v2")
	// Once the transactions are over their records are cached again.
	n := cb.gets.Load()
	mustRead("raced", "v2")
	mustRead("cached", "v2")
	if got := cb.gets.Load(); got != n || len(b.cache.pending) != 0 {
		t.Errorf("after the writes returned, reads reached the backend %d times and %d paths are pending; want 0 and 0", got-n, len(b.cache.pending))
	}
}
