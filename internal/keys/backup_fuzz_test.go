package keys

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/soft"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// FuzzRestoreBody fuzzes what is behind a backup blob's AEAD: the body is sealed with the
// installation's key (as a blob of another Coffer version, or one made with a leaked backup
// key, would be) and restored into a fresh vault. Restore must fail with ErrBadParameter
// alone, or restore a key that serves its latest version and whose own backup restores again
// into another vault of the tenant.
func FuzzRestoreBody(f *testing.F) {
	ctx := context.Background()
	bkey := bytes.Repeat([]byte{5}, 32)
	fresh := func() *Service { return NewService(mem.New(), soft.New(), nil, bkey) }
	seed := fresh()
	v, base := vault(tenantA, "vault1", 90, false), "https://vault1.coffer.test"
	for _, p := range []CreateParams{ecKey, {Kty: provider.RSA, KeySize: 2048, KeyOps: []string{"sign"}, Tags: map[string]string{"a": "b"}}, {Kty: provider.EC, Curve: "P-384"}} {
		name := strings.ReplaceAll("k"+string(p.Kty)+string(p.Curve), "-", "")
		for i := 0; i < 2; i++ {
			if _, err := seed.Create(ctx, v, base, name, p); err != nil {
				f.Fatal(err)
			}
		}
		if _, err := seed.UpdateRotationPolicy(ctx, v, base, name, KeyRotationPolicy{
			LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P30D"}, Action: LifetimeActionType{Type: "rotate"}}},
		}); err != nil {
			f.Fatal(err)
		}
		blob, err := seed.Backup(ctx, v, name)
		if err != nil {
			f.Fatal(err)
		}
		plain, err := seed.backup.Open(blob.Value, backupAADFor(tenantA))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Add([]byte(`{"provider":"software","name":"x","latest":"00000000000000000000000000000000","versions":[{"version":"00000000000000000000000000000000","kty":"EC","handle":"AA==","public":null,"keyOps":[],"enabled":true,"created":0,"updated":0}]}`))

	f.Fuzz(func(t *testing.T, plain []byte) {
		svc := fresh()
		blob, err := svc.backup.Seal(plain, backupAADFor(tenantA))
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Restore(ctx, v, base, blob)
		if err != nil {
			if !errors.Is(err, ErrBadParameter) {
				t.Fatalf("Restore = %v; want ErrBadParameter or success", err)
			}
			return
		}
		name := got.Key.KID[len(base+"/keys/") : len(got.Key.KID)-33]
		latest, err := svc.Get(ctx, v, base, name, "")
		if err != nil || latest.Key.KID != got.Key.KID {
			t.Fatalf("Get(%q) after Restore = %+v, %v; want %s", name, latest.Key, err, got.Key.KID)
		}
		again, err := svc.Backup(ctx, v, name)
		if err != nil {
			t.Fatalf("Backup of a restored key = %v", err)
		}
		if _, err := svc.Restore(ctx, vault(tenantA, "vault2", 90, false), base, again.Value); err != nil {
			t.Fatalf("Restore of the restored key's backup = %v", err)
		}
	})
}
