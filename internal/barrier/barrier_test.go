package barrier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

// newUnsealed returns a barrier over a fresh in-memory backend, initialised with one share
// and unsealed, with its raw backend for tampering.
func newUnsealed(t testing.TB) (*Barrier, *Manager, storage.Backend) {
	t.Helper()
	b, m, raw, _ := newUnsealedLimits(t, defaultSealLimits, StoreChecks{})
	return b, m, raw
}

// newUnsealedLimits is newUnsealed with the keyring terms' seal limits lim and the store
// checks c; it also returns the one unseal share.
func newUnsealedLimits(t testing.TB, lim sealLimits, c StoreChecks) (*Barrier, *Manager, storage.Backend, string) {
	t.Helper()
	ctx := context.Background()
	raw := mem.New()
	b := New(raw)
	b.limits = lim
	m := NewManager(raw, b, nil, time.Now)
	m.SetStoreChecks(c)
	res, err := m.Init(ctx, InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatalf("Init = %v", err)
	}
	if _, err := m.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatalf("Unseal = %v", err)
	}
	return b, m, raw, res.Shares[0]
}

func TestBarrierConformance(t *testing.T) {
	storagetest.RunMaxKeyLen(t, MaxKeyLen, func(t *testing.T) storage.Backend {
		b, _, _ := newUnsealed(t)
		return b
	})
}

func TestNothingStoredInTheClear(t *testing.T) {
	ctx := context.Background()
	b, _, raw := newUnsealed(t)
	secret := []byte("canary-4f1e9d2c-plaintext-value")
	if err := b.Put(ctx, "secrets/canary", secret); err != nil {
		t.Fatal(err)
	}
	page, err := raw.List(ctx, "", storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Keys {
		v, err := raw.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(v), string(secret)) {
			t.Errorf("raw record %q holds the plaintext", k)
		}
	}
}

func TestTamperingIsDetected(t *testing.T) {
	ctx := context.Background()
	b, _, raw := newUnsealed(t)
	for _, k := range []string{"keys/a", "keys/b"} {
		if err := b.Put(ctx, k, []byte("value of "+k+" that is long enough to matter")); err != nil {
			t.Fatal(err)
		}
	}
	orig := map[string][]byte{}
	for _, k := range []string{"keys/a", "keys/b"} {
		v, _ := raw.Get(ctx, dataPrefix+k)
		orig[k] = v
	}
	restore := func() {
		for k, v := range orig {
			if err := raw.Put(ctx, dataPrefix+k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	expectBroken := func(t *testing.T, key, want string) {
		t.Helper()
		got, err := b.Get(ctx, key)
		if err == nil {
			t.Fatalf("Get(%q) = %q, nil; want an integrity error", key, got)
		}
		if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), `"`+key+`"`) || !strings.Contains(err.Error(), want) {
			t.Errorf("Get(%q) error = %v; want ErrIntegrity naming the record and %q", key, err, want)
		}
	}

	t.Run("fail/flip-every-byte", func(t *testing.T) {
		rec := orig["keys/a"]
		for i := range rec {
			bad := append([]byte(nil), rec...)
			bad[i] ^= 0x01
			raw.Put(ctx, dataPrefix+"keys/a", bad)
			if got, err := b.Get(ctx, "keys/a"); err == nil || !errors.Is(err, ErrIntegrity) {
				t.Fatalf("byte %d flipped: Get = %q, %v; want ErrIntegrity", i, got, err)
			}
		}
		restore()
	})
	t.Run("fail/swap-records", func(t *testing.T) {
		raw.Put(ctx, dataPrefix+"keys/a", orig["keys/b"])
		raw.Put(ctx, dataPrefix+"keys/b", orig["keys/a"])
		expectBroken(t, "keys/a", "moved from another path")
		expectBroken(t, "keys/b", "moved from another path")
		restore()
	})
	t.Run("fail/copy-to-new-path", func(t *testing.T) {
		raw.Put(ctx, dataPrefix+"keys/c", orig["keys/a"])
		expectBroken(t, "keys/c", "failed authentication")
	})
	t.Run("fail/truncated", func(t *testing.T) {
		raw.Put(ctx, dataPrefix+"keys/a", orig["keys/a"][:10])
		expectBroken(t, "keys/a", "truncated")
		raw.Put(ctx, dataPrefix+"keys/a", nil)
		expectBroken(t, "keys/a", "truncated")
		restore()
	})
	t.Run("fail/unknown-term", func(t *testing.T) {
		bad := append([]byte(nil), orig["keys/a"]...)
		bad[3] = 99
		raw.Put(ctx, dataPrefix+"keys/a", bad)
		expectBroken(t, "keys/a", "term 99")
		restore()
	})
	t.Run("fail/unknown-version", func(t *testing.T) {
		bad := append([]byte(nil), orig["keys/a"]...)
		bad[4] = 7
		raw.Put(ctx, dataPrefix+"keys/a", bad)
		expectBroken(t, "keys/a", "version 7")
		restore()
	})
	t.Run("fail/other-keyring", func(t *testing.T) {
		other, _, _ := newUnsealed(t)
		if err := other.backend.Put(ctx, dataPrefix+"keys/a", orig["keys/a"]); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, "keys/a"); !errors.Is(err, ErrIntegrity) {
			t.Errorf("Get with another keyring = %v; want ErrIntegrity", err)
		}
	})
	t.Run("ok/intact-after-restore", func(t *testing.T) {
		for k := range orig {
			if v, err := b.Get(ctx, k); err != nil || string(v) != "value of "+k+" that is long enough to matter" {
				t.Errorf("Get(%q) = %q, %v", k, v, err)
			}
		}
	})
}

func TestRotationKeepsOldRecordsReadable(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	b := New(raw)
	m := NewManager(raw, b, nil, time.Now)
	res, err := m.Init(ctx, InitOptions{Shares: 3, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	unseal := func() {
		t.Helper()
		for _, s := range res.Shares[:2] {
			if _, err := m.Unseal(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if b.Sealed() {
			t.Fatal("still sealed after 2 of 3 shares")
		}
	}
	unseal()
	if err := b.Put(ctx, "old", []byte("term-1")); err != nil {
		t.Fatal(err)
	}
	for want := uint32(2); want <= 4; want++ {
		term, err := m.Rotate(ctx)
		if err != nil || term != want {
			t.Fatalf("Rotate = %d, %v; want %d", term, err, want)
		}
	}
	if err := b.Put(ctx, "new", []byte("term-4")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key      string
		wantTerm uint32
	}{{"old", 1}, {"new", 4}} {
		rec, _ := raw.Get(ctx, dataPrefix+tc.key)
		if term, _ := recordTerm(tc.key, rec); term != tc.wantTerm {
			t.Errorf("record %q sealed with term %d; want %d", tc.key, term, tc.wantTerm)
		}
	}
	// Seal and unseal: the rotated keyring was persisted.
	m.Seal()
	if _, err := b.Get(ctx, "old"); !errors.Is(err, ErrSealed) {
		t.Fatalf("Get while sealed = %v; want ErrSealed", err)
	}
	unseal()
	for k, want := range map[string]string{"old": "term-1", "new": "term-4"} {
		if v, err := b.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("after rotate+reseal Get(%q) = %q, %v; want %q", k, v, err, want)
		}
	}
	if got := b.ActiveTerm(); got != 4 {
		t.Errorf("ActiveTerm after unseal = %d; want 4", got)
	}
}

// TestRecordFormatVector pins format v1 (docs/FORMAT.md): a record sealed by an earlier build
// must stay readable.
func TestRecordFormatVector(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	rec := mustHex(t, recordVectorHex)
	if term, err := recordTerm("tenants/t1/secrets/s1", rec); err != nil || term != 1 {
		t.Fatalf("recordTerm = %d, %v; want 1", term, err)
	}
	pt, err := openRecord(aead, "tenants/t1/secrets/s1", rec)
	if err != nil || string(pt) != "coffer format v1" {
		t.Fatalf("openRecord(vector) = %q, %v; want %q", pt, err, "coffer format v1")
	}
	if _, err := openRecord(aead, "tenants/t2/secrets/s1", rec); !errors.Is(err, ErrIntegrity) {
		t.Errorf("openRecord(vector, other path) = %v; want ErrIntegrity", err)
	}
}

func FuzzOpenRecord(f *testing.F) {
	b, _, raw := newUnsealed(f)
	ctx := context.Background()
	b.Put(ctx, "k", []byte("seed value"))
	seed, _ := raw.Get(ctx, dataPrefix+"k")
	f.Add(seed)
	f.Add([]byte{})
	f.Add(make([]byte, overhead))
	f.Fuzz(func(t *testing.T, rec []byte) {
		kr, _ := b.keyring()
		pt, err := kr.open("k", rec)
		if err == nil && string(pt) != "seed value" {
			t.Fatalf("open accepted a forged record: %q", pt)
		}
		if err != nil && !errors.Is(err, ErrIntegrity) {
			t.Fatalf("open error %v is not ErrIntegrity", err)
		}
	})
}
