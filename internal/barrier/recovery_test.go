package barrier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// TestRecoveryShares: an auto-unseal init with recovery shares unseals itself, and when the
// wrapper's key is lost the recovery shares (threshold of them) open the store; wrong shares
// do not; a seal config edited on disk breaks the recovery record too.
func TestRecoveryShares(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	w := staticWrapper{key: randomBytes(32)}
	b := New(raw)
	m := NewManager(raw, b, w, time.Now)
	res, err := m.Init(ctx, InitOptions{Shares: 3, Threshold: 2})
	if err != nil || len(res.Shares) != 3 || b.Sealed() {
		t.Fatalf("Init with recovery = %d shares, sealed=%v, %v; want 3 shares, unsealed", len(res.Shares), b.Sealed(), err)
	}
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status(ctx)
	if st.Type != "static" || st.Shares != 3 || st.Threshold != 2 {
		t.Errorf("Status = %+v; want type static, 2 of 3 recovery shares", st)
	}

	// The HSM key is lost: auto-unseal fails, two recovery shares unseal.
	lost := staticWrapper{key: randomBytes(32)}
	b2 := New(raw)
	m2 := NewManager(raw, b2, lost, time.Now)
	if err := m2.AutoUnseal(ctx); err == nil || !b2.Sealed() {
		t.Fatalf("AutoUnseal with a lost key = %v, sealed=%v; want an error, sealed", err, b2.Sealed())
	}
	if _, err := m2.Unseal(ctx, res.Shares[0]); err != nil || !b2.Sealed() {
		t.Fatalf("first recovery share = %v, sealed=%v; want progress, sealed", err, b2.Sealed())
	}
	if _, err := m2.Unseal(ctx, res.Shares[2]); err != nil || b2.Sealed() {
		t.Fatalf("second recovery share = %v, sealed=%v; want unsealed", err, b2.Sealed())
	}
	if v, err := b2.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("Get after recovery = %q, %v", v, err)
	}

	// Shares of another init are refused and leave the store sealed.
	otherRaw := mem.New()
	res2, err := NewManager(otherRaw, New(otherRaw), w, time.Now).Init(ctx, InitOptions{Shares: 2, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	b3 := New(raw)
	m3 := NewManager(raw, b3, lost, time.Now)
	m3.Unseal(ctx, res2.Shares[0])
	if _, err := m3.Unseal(ctx, res2.Shares[1]); !errors.Is(err, ErrWrongShares) || !b3.Sealed() {
		t.Errorf("foreign recovery shares = %v, sealed=%v; want ErrWrongShares, sealed", err, b3.Sealed())
	}
}

// TestAutoUnsealWithoutRecovery: with no recovery shares, entering a share is ErrAutoUnseal.
func TestAutoUnsealWithoutRecovery(t *testing.T) {
	ctx := context.Background()
	raw := mem.New()
	w := staticWrapper{key: randomBytes(32)}
	if _, err := NewManager(raw, New(raw), w, time.Now).Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	b := New(raw)
	if _, err := NewManager(raw, b, w, time.Now).Unseal(ctx, "anything"); !errors.Is(err, ErrAutoUnseal) || !b.Sealed() {
		t.Errorf("Unseal without recovery shares = %v; want ErrAutoUnseal, sealed", err)
	}
	if _, err := NewManager(mem.New(), New(mem.New()), w, time.Now).Init(ctx, InitOptions{Shares: 1, Threshold: 3}); err == nil {
		t.Error("Init with threshold > shares succeeded")
	}
}
