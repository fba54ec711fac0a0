package keys

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestPoolBackupAllRestoreAll: a pool's keys are backed up under the pool key and restore,
// all of them in one transaction, only into a pool with the same key; a taken name or a
// foreign blob in the set restores nothing.
func TestPoolBackupAllRestoreAll(t *testing.T) {
	f := newFixture(t)
	poolKeys := map[string][]byte{"pa": bytes.Repeat([]byte{1}, 32), "pb": bytes.Repeat([]byte{1}, 32), "pc": bytes.Repeat([]byte{2}, 32)}
	f.svc.SealPoolBackupsWith(func(_ context.Context, v tenancy.Vault) ([]byte, error) {
		k, ok := poolKeys[v.Name]
		if !ok {
			return nil, errors.New("no domain")
		}
		return bytes.Clone(k), nil
	})
	pool := func(name string) tenancy.Vault {
		return tenancy.Vault{TenantID: tenantA, Name: name, Kind: tenancy.KindManagedHSM, SoftDeleteRetention: 7}
	}
	pa, pb, pc := pool("pa"), pool("pb"), pool("pc")
	for _, n := range []string{"k1", "k2", "k3"} {
		f.mustCreate(pa, n, CreateParams{Kty: provider.EC})
	}
	if _, err := f.svc.Delete(f.ctx, pa, f.base, "k3"); err != nil {
		t.Fatal(err)
	}
	all, err := f.svc.BackupAll(f.ctx, pa)
	if err != nil || len(all) != 2 {
		t.Fatalf("BackupAll = %d blobs, %v; want the 2 live keys", len(all), err)
	}

	// Another domain: nothing restores.
	if _, err := f.svc.RestoreAll(f.ctx, pc, f.base, all); !errors.Is(err, ErrBadParameter) {
		t.Errorf("RestoreAll(other domain) = %v; want ErrBadParameter", err)
	}
	// A vault blob in the set: nothing restores.
	f.mustCreate(f.v, "vk", CreateParams{Kty: provider.EC})
	vb, err := f.svc.Backup(f.ctx, f.v, "vk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RestoreAll(f.ctx, pb, f.base, append(all[:2:2], NamedBackup{Name: "vk", Blob: vb.Value})); !errors.Is(err, ErrBadParameter) {
		t.Errorf("RestoreAll(with a vault blob) = %v; want ErrBadParameter", err)
	}
	// A taken name: nothing restores.
	f.mustCreate(pb, "k2", CreateParams{Kty: provider.EC})
	if _, err := f.svc.RestoreAll(f.ctx, pb, f.base, all); !errors.Is(err, ErrConflict) {
		t.Errorf("RestoreAll(name taken) = %v; want ErrConflict", err)
	}
	if _, err := f.svc.Get(f.ctx, pb, f.base, "k1", ""); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Get(k1) after a refused RestoreAll = %v; want ErrKeyNotFound (nothing written)", err)
	}
	// Same domain, free names: everything restores.
	if _, err := f.svc.Delete(f.ctx, pb, f.base, "k2"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Purge(f.ctx, pb, f.base, "k2"); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.RestoreAll(f.ctx, pb, f.base, all)
	if err != nil || len(got) != 2 {
		t.Fatalf("RestoreAll(same domain) = %d, %v", len(got), err)
	}
	for _, n := range []string{"k1", "k2"} {
		if _, err := f.svc.Get(f.ctx, pb, f.base, n, ""); err != nil {
			t.Errorf("Get(%s) after RestoreAll = %v", n, err)
		}
	}
}
