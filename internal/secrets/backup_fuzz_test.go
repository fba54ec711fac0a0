package secrets

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// FuzzRestoreBody fuzzes what is behind a backup blob's AEAD: the body is sealed with the
// installation's key and restored into a fresh vault. Restore must fail with ErrBadParameter
// alone, or restore a secret whose latest version reads back and whose own backup restores
// into another vault of the tenant with the same value.
func FuzzRestoreBody(f *testing.F) {
	ctx := context.Background()
	bkey := bytes.Repeat([]byte{6}, 32)
	fresh := func() *Service { return NewService(mem.New(), nil, bkey) }
	seed := fresh()
	v, base := vault(tenantA, "vault1", 90, false), "https://vault1.coffer.test"
	for i, p := range []SetParams{
		{Value: val("v1")},
		{Value: val("v2"), ContentType: "text/plain", Tags: map[string]string{"a": "b"}},
		{Value: val(""), Attributes: &SecretAttributes{Enabled: ptr(false), NotBefore: ptr(int64(1)), Expires: ptr(int64(2))}},
	} {
		if _, err := seed.Set(ctx, v, base, "s", p); err != nil {
			f.Fatalf("seed %d: %v", i, err)
		}
		blob, err := seed.Backup(ctx, v, base, "s")
		if err != nil {
			f.Fatal(err)
		}
		plain, err := seed.backup.Open(blob.Value, backupAADFor(tenantA))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	f.Add([]byte(`{"name":"x","latest":"00000000000000000000000000000000","versions":[{"version":"00000000000000000000000000000000","value":"dg"}]}`))

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
		name := strings.TrimPrefix(got.ID, base+"/secrets/")
		name = name[:strings.IndexByte(name, '/')]
		latest, err := svc.Get(ctx, v, base, name, "")
		if errors.Is(err, ErrSecretDisabled) && got.Attributes.Enabled != nil && !*got.Attributes.Enabled {
			err, latest.ID = nil, got.ID // a disabled version's value is not read
		}
		if err != nil || latest.ID != got.ID {
			t.Fatalf("Get(%q) after Restore = %+v, %v; want %s", name, latest.ID, err, got.ID)
		}
		again, err := svc.Backup(ctx, v, base, name)
		if err != nil {
			t.Fatalf("Backup of a restored secret = %v", err)
		}
		other := vault(tenantA, "vault2", 90, false)
		if _, err := svc.Restore(ctx, other, base, again.Value); err != nil {
			t.Fatalf("Restore of the restored secret's backup = %v", err)
		}
		copied, err := svc.Get(ctx, other, base, name, "")
		if errors.Is(err, ErrSecretDisabled) && latest.Value == nil {
			return
		}
		if err != nil || (copied.Value == nil) != (latest.Value == nil) || copied.Value != nil && *copied.Value != *latest.Value {
			t.Fatalf("the value changed across backup and restore: %v", err)
		}
	})
}
