package barrier

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type sealFixture struct {
	raw storage.Backend
	b   *Barrier
	m   *Manager
	res InitResult
}

func newSealFixture(t *testing.T, shares, threshold int) *sealFixture {
	t.Helper()
	raw := mem.New()
	b := New(raw)
	m := NewManager(raw, b, nil, time.Now)
	res, err := m.Init(context.Background(), InitOptions{Shares: shares, Threshold: threshold})
	if err != nil {
		t.Fatalf("Init(%d, %d) = %v", shares, threshold, err)
	}
	if len(res.Shares) != shares || !strings.HasPrefix(res.RootToken, "cof.") {
		t.Fatalf("Init = %d shares, token %q; want %d shares and a cof. token", len(res.Shares), res.RootToken, shares)
	}
	if !b.Sealed() {
		t.Fatal("barrier unsealed right after a Shamir init")
	}
	return &sealFixture{raw: raw, b: b, m: m, res: res}
}

func (f *sealFixture) status(t *testing.T) Status {
	t.Helper()
	st, err := f.m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestUnsealAnyThresholdSubset(t *testing.T) {
	ctx := context.Background()
	f := newSealFixture(t, 5, 3)
	for _, subset := range [][]int{{0, 1, 2}, {4, 2, 0}, {1, 3, 4}, {3, 2, 1}} {
		f.m.Seal()
		for i, idx := range subset {
			st, err := f.m.Unseal(ctx, f.res.Shares[idx])
			if err != nil {
				t.Fatalf("subset %v: Unseal(share %d) = %v", subset, idx, err)
			}
			if last := i == len(subset)-1; st.Sealed == last {
				t.Fatalf("subset %v after %d shares: sealed=%v", subset, i+1, st.Sealed)
			}
			if i < len(subset)-1 && st.Progress != i+1 {
				t.Errorf("progress after %d shares = %d", i+1, st.Progress)
			}
		}
		if err := f.m.CheckRootToken(ctx, f.res.RootToken); err != nil {
			t.Errorf("CheckRootToken(init token) = %v", err)
		}
	}
}

func TestBadSharesChangeNothing(t *testing.T) {
	ctx := context.Background()
	f := newSealFixture(t, 5, 3)
	other := newSealFixture(t, 5, 3)
	if _, err := f.m.Unseal(ctx, f.res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	corrupt := []byte(f.res.Shares[1])
	corrupt[5] ^= 0x04
	tests := []struct {
		name  string
		share string
		want  error
	}{
		{"fail/duplicate", f.res.Shares[0], ErrDuplicateShare},
		{"fail/corrupt", string(corrupt), nil},
		{"fail/garbage", "not a share at all", nil},
		{"fail/empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.m.Unseal(ctx, tt.share)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Unseal(%s) = %v; want error %v", tt.name, err, tt.want)
			}
			if strings.Contains(err.Error(), tt.share) && tt.share != "" {
				t.Errorf("error echoes the share: %v", err)
			}
			if st := f.status(t); !st.Sealed || st.Progress != 1 {
				t.Errorf("after %s: sealed=%v progress=%d; want sealed, progress 1", tt.name, st.Sealed, st.Progress)
			}
		})
	}
	t.Run("fail/shares-of-another-store-reset-progress", func(t *testing.T) {
		// Shares' x coordinates are random: a foreign share may have the x of f's share 0
		// (about 1 in 255), and is then refused as a duplicate. Feed foreign shares until the
		// threshold is reached.
		var err error
		for _, s := range other.res.Shares {
			if _, err = f.m.Unseal(ctx, s); err != nil && !errors.Is(err, ErrDuplicateShare) {
				break
			}
		}
		if !errors.Is(err, ErrWrongShares) {
			t.Fatalf("Unseal(foreign shares) = %v; want ErrWrongShares", err)
		}
		if st := f.status(t); !st.Sealed || st.Progress != 0 {
			t.Errorf("after wrong shares: sealed=%v progress=%d; want sealed, 0", st.Sealed, st.Progress)
		}
		if _, err := f.b.Get(ctx, "x"); !errors.Is(err, ErrSealed) {
			t.Errorf("Get after wrong shares = %v; want ErrSealed", err)
		}
	})
	t.Run("ok/right-shares-still-work", func(t *testing.T) {
		for _, s := range f.res.Shares[2:] {
			if _, err := f.m.Unseal(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if f.b.Sealed() {
			t.Error("still sealed after 3 good shares")
		}
	})
}

// TestUnsealWhileUnsealed: an unsealed barrier answers a well-formed share with its status
// (nothing happens twice) and still refuses a malformed one, as Vault does.
func TestUnsealWhileUnsealed(t *testing.T) {
	ctx := context.Background()
	f := newSealFixture(t, 1, 1)
	if _, err := f.m.Unseal(ctx, f.res.Shares[0]); err != nil || f.b.Sealed() {
		t.Fatalf("Unseal = %v, sealed=%v", err, f.b.Sealed())
	}
	other := newSealFixture(t, 1, 1)
	if st, err := f.m.Unseal(ctx, other.res.Shares[0]); err != nil || st.Sealed {
		t.Errorf("Unseal(a well-formed share) while unsealed = %+v, %v; want the unsealed status", st, err)
	}
	corrupt := []byte(f.res.Shares[0])
	corrupt[5] ^= 0x04
	for _, s := range []string{"", "   ", "not a share", string(corrupt), "AAAA"} {
		st, err := f.m.Unseal(ctx, s)
		if err == nil {
			t.Errorf("Unseal(%q) while unsealed = nil; want an error", s)
		}
		if st.Sealed || f.b.Sealed() {
			t.Errorf("Unseal(%q) while unsealed sealed the barrier", s)
		}
	}
}

func TestDamagedSealRecordsRefuseToUnseal(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		path   string
		mutate func([]byte) []byte
		want   string
	}{
		{"fail/keyring-flipped", keyringPath, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "core/keyring"},
		{"fail/keyring-truncated", keyringPath, func(b []byte) []byte { return b[:8] }, "core/keyring"},
		{"fail/root-key-flipped", rootKeyPath, func(b []byte) []byte { b[20] ^= 1; return b }, "core/root-key"},
		{"fail/seal-config-edited", sealConfigPath, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"shares":3`, `"shares":4`, 1))
		}, "core/root-key"},
		{"fail/seal-config-garbage", sealConfigPath, func(b []byte) []byte { return []byte("{{{") }, "core/seal-config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSealFixture(t, 3, 2)
			v, err := f.raw.Get(ctx, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			f.raw.Put(ctx, tt.path, tt.mutate(v))
			var uerr error
			for _, s := range f.res.Shares[:2] {
				if _, uerr = f.m.Unseal(ctx, s); uerr != nil {
					break
				}
			}
			if uerr == nil || !strings.Contains(uerr.Error(), tt.want) {
				t.Errorf("Unseal with damaged %s = %v; want an error naming %s", tt.path, uerr, tt.want)
			}
			if !f.b.Sealed() {
				t.Error("barrier unsealed despite damage")
			}
		})
	}
}

func TestInitRules(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name              string
		shares, threshold int
		ok                bool
	}{
		{"ok/1-of-1", 1, 1, true}, {"ok/3-of-5", 5, 3, true}, {"ok/5-of-5", 5, 5, true},
		{"fail/threshold-above-shares", 3, 4, false}, {"fail/threshold-1-of-3", 3, 1, false},
		{"fail/zero", 0, 0, false}, {"fail/too-many", 256, 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := mem.New()
			m := NewManager(raw, New(raw), nil, time.Now)
			_, err := m.Init(ctx, InitOptions{Shares: tt.shares, Threshold: tt.threshold})
			if (err == nil) != tt.ok {
				t.Fatalf("Init(%d, %d) = %v; want ok=%v", tt.shares, tt.threshold, err, tt.ok)
			}
			if !tt.ok {
				if p, _ := raw.List(ctx, "", storage.ListOptions{}); len(p.Keys) != 0 {
					t.Errorf("failed Init wrote %v", p.Keys)
				}
			}
		})
	}
	f := newSealFixture(t, 1, 1)
	if _, err := f.m.Init(ctx, InitOptions{Shares: 1, Threshold: 1}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("second Init = %v; want ErrAlreadyInitialized", err)
	}
}

func TestRootToken(t *testing.T) {
	ctx := context.Background()
	f := newSealFixture(t, 1, 1)
	if err := f.m.CheckRootToken(ctx, f.res.RootToken); !errors.Is(err, ErrSealed) {
		t.Errorf("CheckRootToken while sealed = %v; want ErrSealed", err)
	}
	f.m.Unseal(ctx, f.res.Shares[0])
	for _, bad := range []string{"", "cof.", f.res.RootToken + "x", strings.ToUpper(f.res.RootToken)} {
		if err := f.m.CheckRootToken(ctx, bad); !errors.Is(err, ErrBadRootToken) {
			t.Errorf("CheckRootToken(%q) = %v; want ErrBadRootToken", bad, err)
		}
	}
	if err := f.m.CheckRootToken(ctx, f.res.RootToken); err != nil {
		t.Errorf("CheckRootToken(good) = %v", err)
	}
}

// staticWrapper is an auto-unseal wrapper keyed by a fixed AES key: the same AEAD a real
// HSM-backed wrapper would provide, used here to exercise the seam.
type staticWrapper struct{ key []byte }

func (w staticWrapper) Type() string { return "static" }
func (w staticWrapper) Wrap(_ context.Context, pt, aad []byte) ([]byte, error) {
	return sealWithKey(w.key, string(aad), pt)
}
func (w staticWrapper) Unwrap(_ context.Context, blob, aad []byte) ([]byte, error) {
	return openWithKey(w.key, string(aad), blob)
}

func TestAutoUnsealSeam(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	w := staticWrapper{key: randomBytes(32)}
	b := New(raw)
	m := NewManager(raw, b, w, time.Now)
	res, err := m.Init(ctx, InitOptions{})
	if err != nil || len(res.Shares) != 0 || b.Sealed() {
		t.Fatalf("auto Init = %d shares, sealed=%v, %v; want no shares, unsealed", len(res.Shares), b.Sealed(), err)
	}
	b.Put(ctx, "k", []byte("v"))
	// A restart: a new manager over the same storage unseals without shares.
	b2 := New(raw)
	m2 := NewManager(raw, b2, w, time.Now)
	if err := m2.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := b2.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("Get after auto-unseal = %q, %v", v, err)
	}
	// The wrong HSM key cannot unseal.
	m3 := NewManager(raw, New(raw), staticWrapper{key: randomBytes(32)}, time.Now)
	if err := m3.AutoUnseal(ctx); err == nil || !strings.Contains(err.Error(), "core/root-key") {
		t.Errorf("AutoUnseal with another key = %v; want an error naming core/root-key", err)
	}
}
