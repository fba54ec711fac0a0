package barrier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

// memoryAnchor is a GenerationAnchor in memory: the anchor seam under test here is the
// Manager's; the PKCS#11 token's data object is tested with SoftHSM2 in internal/server.
type memoryAnchor struct {
	mu    sync.Mutex
	gen   uint64
	found bool
}

func (a *memoryAnchor) Describe() string { return "the test anchor" }

func (a *memoryAnchor) LoadGeneration(context.Context) (uint64, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen, a.found, nil
}

func (a *memoryAnchor) StoreGeneration(_ context.Context, gen uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen, a.found = gen, true
	return nil
}

// boltStore is a Shamir-sealed bbolt store that can be closed, copied and reopened.
type boltStore struct {
	path, share string
	anchor      *memoryAnchor
	db          *bolt.Backend
	b           *Barrier
	m           *Manager
}

func newBoltStore(t *testing.T) *boltStore {
	t.Helper()
	s := &boltStore{path: filepath.Join(t.TempDir(), "coffer.db"), anchor: &memoryAnchor{}}
	s.open(t, StoreChecks{Anchor: s.anchor})
	res, err := s.m.Init(context.Background(), InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.share = res.Shares[0]
	t.Cleanup(func() { s.b.Close() })
	return s
}

func (s *boltStore) open(t *testing.T, checks StoreChecks) {
	t.Helper()
	db, err := bolt.Open(s.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.db, s.b = db, New(db)
	s.m = NewManager(db, s.b, nil, time.Now)
	s.m.SetStoreChecks(checks)
}

// restart closes the store and opens it again, sealed, with checks.
func (s *boltStore) restart(t *testing.T, checks StoreChecks) {
	t.Helper()
	if err := s.b.Close(); err != nil {
		t.Fatal(err)
	}
	s.open(t, checks)
}

func (s *boltStore) unseal(ctx context.Context) error {
	_, err := s.m.Unseal(ctx, s.share)
	return err
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestGenerationAdvancesWithEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := newBoltStore(t)
	if err := s.unseal(ctx); err != nil {
		t.Fatal(err)
	}
	g0 := s.b.Generation()
	steps := []func() error{
		func() error { return s.b.Put(ctx, "a", []byte("1")) },
		func() error { return s.b.Put(ctx, "a", []byte("2")) },
		func() error { return s.b.Delete(ctx, "a") },
		func() error {
			return s.b.Txn(ctx, func(tx storage.Tx) error {
				tx.Put(ctx, "b", []byte("x"))
				return tx.Put(ctx, "c", []byte("y"))
			})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if got := s.b.Generation(); got != g0+uint64(i)+1 {
			t.Fatalf("after write %d generation = %d; want %d (one per transaction)", i+1, got, g0+uint64(i)+1)
		}
	}
	// A read-only or failed transaction advances nothing.
	s.b.Txn(ctx, func(tx storage.Tx) error { _, err := tx.Get(ctx, "b"); return err })
	s.b.Txn(ctx, func(tx storage.Tx) error { tx.Put(ctx, "d", []byte("z")); return errors.New("no") })
	if got := s.b.Generation(); got != g0+4 {
		t.Errorf("generation after a read-only and a failed transaction = %d; want %d", got, g0+4)
	}
	if _, err := s.m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.b.Generation(); got != g0+4 {
		t.Errorf("generation after a keyring rotation = %d; want %d (unchanged)", got, g0+4)
	}
	if err := s.m.AnchorGeneration(ctx); err != nil || s.anchor.gen != g0+4 {
		t.Errorf("AnchorGeneration = %v, anchor at %d; want %d", err, s.anchor.gen, g0+4)
	}
	if gen, err := s.b.Verify(ctx); err != nil || gen != g0+4 {
		t.Errorf("Verify = %d, %v; want %d, nil", gen, err, g0+4)
	}
}

func TestWholeStoreRollbackIsDetected(t *testing.T) {
	ctx := context.Background()
	s := newBoltStore(t)
	if err := s.unseal(ctx); err != nil {
		t.Fatal(err)
	}
	s.b.Put(ctx, "tenants/t1/keys/k", []byte("before the snapshot"))
	s.m.AnchorGeneration(ctx)
	older := s.b.Generation()
	s.restart(t, StoreChecks{Anchor: s.anchor})
	snapshot := s.path + ".snapshot"
	copyFile(t, s.path, snapshot)
	if err := s.unseal(ctx); err != nil {
		t.Fatal(err)
	}
	s.b.Put(ctx, "tenants/t1/keys/k", []byte("after the snapshot"))
	s.b.Delete(ctx, "tenants/t1/keys/revoked")
	newer := s.b.Generation()
	if err := s.m.AnchorGeneration(ctx); err != nil {
		t.Fatal(err)
	}

	// The old copy is consistent with itself: only the anchor tells it is old.
	s.b.Close()
	copyFile(t, snapshot, s.path)
	s.open(t, StoreChecks{Anchor: s.anchor})
	err := s.unseal(ctx)
	if !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "accept-store-rollback") {
		t.Fatalf("unseal of the old copy = %v; want ErrRollback naming the override", err)
	}
	for _, want := range []string{fmt.Sprintf("at generation %d", older), fmt.Sprintf("recorded generation %d", newer), "the test anchor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unseal error %q does not say %q", err, want)
		}
	}
	if !s.b.Sealed() || newer != older+2 {
		t.Fatalf("sealed = %v, generations %d then %d; want sealed, two writes apart", s.b.Sealed(), older, newer)
	}

	// The operator accepts the old copy: it unseals at a generation above both.
	s.restart(t, StoreChecks{Anchor: s.anchor, AcceptStore: true})
	if err := s.unseal(ctx); err != nil {
		t.Fatalf("unseal with AcceptStore = %v", err)
	}
	if got, _ := s.b.Get(ctx, "tenants/t1/keys/k"); string(got) != "before the snapshot" {
		t.Errorf("accepted store serves %q", got)
	}
	if g := s.b.Generation(); g != newer+1 || s.anchor.gen != g {
		t.Errorf("after accepting: generation %d, anchor %d; want both %d", g, s.anchor.gen, newer+1)
	}
	// Without the override again, the store unseals: the anchor moved with it.
	s.restart(t, StoreChecks{Anchor: s.anchor})
	if err := s.unseal(ctx); err != nil {
		t.Errorf("unseal after the accepted rollback = %v", err)
	}
}

func TestStoreStateRecordTampering(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, s *boltStore)
		want   string
	}{
		{"fail/state-deleted", func(t *testing.T, s *boltStore) { s.db.Delete(ctx, storeStatePath) }, "is missing"},
		{"fail/state-flipped", func(t *testing.T, s *boltStore) {
			v, _ := s.db.Get(ctx, storeStatePath)
			v[len(v)-3] ^= 4
			s.db.Put(ctx, storeStatePath, v)
		}, "core/store-state"},
		{"fail/record-deleted", func(t *testing.T, s *boltStore) { s.db.Delete(ctx, dataPrefix+"x") }, "2 records recorded, 1 found"},
		{"fail/record-added", func(t *testing.T, s *boltStore) {
			v, _ := s.db.Get(ctx, dataPrefix+"x")
			s.db.Put(ctx, dataPrefix+"y", v)
		}, `"y"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBoltStore(t)
			if err := s.unseal(ctx); err != nil {
				t.Fatal(err)
			}
			s.b.Put(ctx, "x", []byte("x"))
			s.b.Put(ctx, "z", []byte("z"))
			s.m.Seal()
			tc.mutate(t, s)
			err := s.unseal(ctx)
			if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("unseal = %v; want ErrIntegrity saying %q", err, tc.want)
			}
			if !s.b.Sealed() {
				t.Error("unsealed a tampered store")
			}
		})
	}
}

// A store written before store states (no core/store-state, a keyring without the mark)
// unseals, and gets both: from then on deleting the state record is detected.
func TestStoreWithoutStateIsAdopted(t *testing.T) {
	ctx := context.Background()
	s := newBoltStore(t)
	if err := s.unseal(ctx); err != nil {
		t.Fatal(err)
	}
	s.b.Put(ctx, "old/record", []byte("written by an older build"))
	// Make it an older build's store: no state record, no mark in the keyring.
	kr, _ := s.b.keyring()
	kr.storeState = false
	b, _ := kr.marshal()
	blob, err := sealWithKey(s.m.rootKey, keyringPath, b)
	if err != nil {
		t.Fatal(err)
	}
	s.m.Seal()
	s.db.Put(ctx, keyringPath, blob)
	s.db.Delete(ctx, storeStatePath)

	if err := s.unseal(ctx); err != nil {
		t.Fatalf("unseal of a store without a state = %v", err)
	}
	if v, err := s.b.Get(ctx, "old/record"); err != nil || string(v) != "written by an older build" {
		t.Errorf("Get = %q, %v", v, err)
	}
	if _, err := s.b.Verify(ctx); err != nil {
		t.Errorf("Verify after adoption = %v", err)
	}
	s.m.Seal()
	s.db.Delete(ctx, storeStatePath)
	if err := s.unseal(ctx); !errors.Is(err, ErrIntegrity) {
		t.Errorf("unseal after deleting the adopted state = %v; want ErrIntegrity", err)
	}
}

// TestStoreStateVector pins the store state format and its hash (docs/FORMAT.md).
func TestStoreStateVector(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	hk, err := deriveHashKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kr := &keyring{hashKey: hk}
	st := storeState{gen: 7}
	st.add(kr, "tenants/t1/secrets/s1", mustHex(t, recordVectorHex))
	want := mustHex(t, storeStateVectorHex)
	if got := st.marshal(); !bytes.Equal(got, want) {
		t.Fatalf("store state = %x; want %x", got, want)
	}
	parsed, err := parseStoreState(want)
	if err != nil || parsed != st {
		t.Fatalf("parseStoreState(vector) = %+v, %v; want %+v", parsed, err, st)
	}
	// Taking the record out again gives the empty store's hash.
	st.remove(kr, "tenants/t1/secrets/s1", mustHex(t, recordVectorHex))
	if !st.matches(storeState{}) {
		t.Errorf("after remove: count %d, hash %x; want the empty store", st.count, st.hash)
	}
	for _, bad := range [][]byte{want[:len(want)-1], append([]byte("x"), want[1:]...)} {
		if _, err := parseStoreState(bad); !errors.Is(err, ErrIntegrity) {
			t.Errorf("parseStoreState(%x) = %v; want ErrIntegrity", bad, err)
		}
	}
}

// pausingScan is a backend whose first List of the data records, in a transaction or a
// snapshot, reports on scanning and then waits for release: it holds a scan in the middle.
type pausingScan struct {
	storage.Backend
	once     sync.Once
	scanning chan struct{}
	release  chan struct{}
}

func (p *pausingScan) pause(prefix string) {
	if prefix == dataPrefix {
		p.once.Do(func() { close(p.scanning); <-p.release })
	}
}

func (p *pausingScan) Txn(ctx context.Context, fn func(storage.Tx) error) error {
	return p.Backend.Txn(ctx, func(tx storage.Tx) error { return fn(pausingTx{Tx: tx, p: p}) })
}

func (p *pausingScan) View(ctx context.Context, fn func(storage.Reader) error) error {
	return p.Backend.View(ctx, func(r storage.Reader) error { return fn(pausingTx{Tx: storagetest.ReadOnlyTx(r), p: p}) })
}

type pausingTx struct {
	storage.Tx
	p *pausingScan
}

func (t pausingTx) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	t.p.pause(prefix)
	return t.Tx.List(ctx, prefix, opts)
}

// TestVerifyDoesNotHoldUpWrites: a write issued while verify-store scans the store commits
// before the scan ends (the scan reads a snapshot, outside bbolt's single committer), and the
// scan, of the store as it was when it began, still matches its store state.
func TestVerifyDoesNotHoldUpWrites(t *testing.T) {
	ctx := context.Background()
	s := newBoltStore(t)
	if err := s.unseal(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := s.b.Put(ctx, fmt.Sprintf("tenants/t1/secrets/s%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	p := &pausingScan{Backend: s.db, scanning: make(chan struct{}), release: make(chan struct{})}
	s.b.backend = p
	released := false
	defer func() {
		if !released {
			close(p.release)
		}
	}()
	before := s.b.Generation()
	verified := make(chan error, 1)
	go func() { _, err := s.b.Verify(ctx); verified <- err }()
	<-p.scanning

	wrote := make(chan error, 1)
	go func() { wrote <- s.b.Put(ctx, "tenants/t1/secrets/during", []byte("v")) }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("Put during Verify = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Put issued while Verify scanned did not commit within 10s: Verify holds up writes")
	}
	close(p.release)
	released = true
	if err := <-verified; err != nil {
		t.Errorf("Verify with a write during its scan = %v; want nil", err)
	}
	if gen, err := s.b.Verify(ctx); err != nil || gen != before+1 {
		t.Errorf("Verify after the write = %d, %v; want %d, nil", gen, err, before+1)
	}
}
