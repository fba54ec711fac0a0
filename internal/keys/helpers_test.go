package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/records/recordstest"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

const (
	tenantA = "11111111-1111-4111-8111-111111111111"
	tenantB = "22222222-2222-4222-8222-222222222222"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock = recordstest.Clock

// wantErr checks that err wraps want (nil: no error); mustJSON marshals v.
var wantErr, mustJSON = recordstest.WantErr, recordstest.MustJSON

// countingProvider wraps the software provider and counts what reaches key material.
type countingProvider struct {
	provider.Provider
	generates, loads, ops atomic.Int64
	mu                    sync.Mutex
	destroyed             [][]byte
	handles               [][]byte // every handle produced
}

func (p *countingProvider) record(k provider.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handles = append(p.handles, append([]byte(nil), k.Handle()...))
}

func (p *countingProvider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	p.generates.Add(1)
	k, err := p.Provider.Generate(ctx, spec)
	if err == nil {
		p.record(k)
	}
	return k, err
}

func (p *countingProvider) Import(ctx context.Context, jwk *provider.JWK) (provider.Key, error) {
	k, err := p.Provider.Import(ctx, jwk)
	if err == nil {
		p.record(k)
	}
	return k, err
}

func (p *countingProvider) Load(ctx context.Context, handle []byte) (provider.Key, error) {
	p.loads.Add(1)
	k, err := p.Provider.Load(ctx, handle)
	if err != nil {
		return nil, err
	}
	return &countingKey{Key: k, ops: &p.ops}, nil
}

func (p *countingProvider) Destroy(ctx context.Context, handle []byte) error {
	p.mu.Lock()
	p.destroyed = append(p.destroyed, append([]byte(nil), handle...))
	p.mu.Unlock()
	return p.Provider.Destroy(ctx, handle)
}

func (p *countingProvider) destroyedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.destroyed)
}

type countingKey struct {
	provider.Key
	ops *atomic.Int64
}

func (k *countingKey) Sign(ctx context.Context, alg string, digest []byte) ([]byte, error) {
	k.ops.Add(1)
	return k.Key.Sign(ctx, alg, digest)
}

func (k *countingKey) Verify(ctx context.Context, alg string, digest, sig []byte) (bool, error) {
	k.ops.Add(1)
	return k.Key.Verify(ctx, alg, digest, sig)
}

func (k *countingKey) Encrypt(ctx context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	k.ops.Add(1)
	return k.Key.Encrypt(ctx, p)
}

func (k *countingKey) Decrypt(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	k.ops.Add(1)
	return k.Key.Decrypt(ctx, p)
}

func (k *countingKey) WrapKey(ctx context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	k.ops.Add(1)
	return k.Key.WrapKey(ctx, p)
}

func (k *countingKey) UnwrapKey(ctx context.Context, p provider.EncryptParams) ([]byte, error) {
	k.ops.Add(1)
	return k.Key.UnwrapKey(ctx, p)
}

// fixture is a Service over a fresh mem store, the counting soft provider and a fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	svc   *Service
	store *mem.Backend
	prov  *countingProvider
	clk   *fakeClock
	bkey  []byte
	v     tenancy.Vault
	base  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bkey := make([]byte, 32)
	if _, err := rand.Read(bkey); err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t:     t,
		ctx:   context.Background(),
		store: mem.New(),
		prov:  &countingProvider{Provider: soft.New()},
		clk:   recordstest.NewClock(t0),
		bkey:  bkey,
		v:     vault(tenantA, "vault1", 90, false),
		base:  "https://vault1.coffer.test:8443",
	}
	f.svc = NewService(f.store, f.prov, f.clk.Now, bkey)
	return f
}

func vault(tenant, name string, retention int, purgeProtection bool) tenancy.Vault {
	return tenancy.Vault{TenantID: tenant, Name: name, Kind: tenancy.KindVault, SoftDeleteRetention: retention, PurgeProtection: purgeProtection}
}

// mustCreate creates a key or fails the test.
func (f *fixture) mustCreate(v tenancy.Vault, name string, p CreateParams) KeyBundle {
	f.t.Helper()
	b, err := f.svc.Create(f.ctx, v, f.base, name, p)
	if err != nil {
		f.t.Fatalf("Create(%q) = %v", name, err)
	}
	return b
}

// versionOf returns the version at the end of a kid.
func versionOf(kid string) string {
	if len(kid) < 32 {
		return ""
	}
	return kid[len(kid)-32:]
}

func digest(msg string) []byte {
	d := sha256.Sum256([]byte(msg))
	return d[:]
}

func ptr[T any](v T) *T { return &v }

var rsaKey = CreateParams{Kty: provider.RSA}
var ecKey = CreateParams{Kty: provider.EC}

// storageAll lists up to the backend's maximum page.
var storageAll = storage.ListOptions{}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
