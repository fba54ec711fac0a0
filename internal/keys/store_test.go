package keys

import (
	"context"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// specProvider records the KeySpec of every Generate.
type specProvider struct {
	provider.Provider
	mu     sync.Mutex
	stores []string
}

func (p *specProvider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	p.mu.Lock()
	p.stores = append(p.stores, spec.Store)
	p.mu.Unlock()
	return p.Provider.Generate(ctx, spec)
}

func (p *specProvider) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stores) == 0 {
		return ""
	}
	return p.stores[len(p.stores)-1]
}

// TestKeySpecNamesTheStore: every KeySpec the keys domain builds (create, rotate, a
// certificate's managed key) names the vault or pool the key will live in, lower case, so
// the server can send a pool's HSM keys to the pool's own token.
func TestKeySpecNamesTheStore(t *testing.T) {
	f := newFixture(t)
	sp := &specProvider{Provider: f.prov}
	f.svc.prov = sp
	pool := tenancy.Vault{TenantID: tenantA, Name: "Pool1", Kind: tenancy.KindManagedHSM, SoftDeleteRetention: 7}
	vault := vault(tenantA, "Vault1", 7, false)
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"ok/create-in-vault", func() error { _, err := f.svc.Create(f.ctx, vault, f.base, "k", ecKey); return err }, "vaults/vault1"},
		{"ok/create-in-pool", func() error { _, err := f.svc.Create(f.ctx, pool, f.base, "k", ecKey); return err }, "managedhsms/pool1"},
		{"ok/rotate-in-pool", func() error { _, err := f.svc.Rotate(f.ctx, pool, f.base, "k"); return err }, "managedhsms/pool1"},
		{"ok/rotate-in-vault", func() error { _, err := f.svc.Rotate(f.ctx, vault, f.base, "k"); return err }, "vaults/vault1"},
		{"ok/certificate-key-in-vault", func() error {
			p, err := f.svc.PrepareManagedGenerate(f.ctx, vault, f.base, "cert", ManagedKey{Version: records.NewVersion()}, provider.KeySpec{Type: provider.EC, Curve: provider.P256, Store: "managedhsms/elsewhere"})
			f.svc.DiscardManaged(f.ctx, p)
			return err
		}, "vaults/vault1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err != nil {
				t.Fatal(err)
			}
			if got := sp.last(); got != tt.want {
				t.Errorf("KeySpec.Store = %q; want %q", got, tt.want)
			}
		})
	}
}
