package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

func TestBackupRestore(t *testing.T) {
	f := newFixture(t)
	first := f.mustCreate(f.v, "Precious", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "b"}})
	second := f.mustCreate(f.v, "precious", CreateParams{Kty: provider.EC, KeyOps: []string{"sign", "verify"}})
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "precious", KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P30D"}, Action: LifetimeActionType{Type: "rotate"}}},
	}); err != nil {
		t.Fatal(err)
	}
	blob, err := f.svc.Backup(f.ctx, f.v, "PRECIOUS")
	if err != nil {
		t.Fatalf("Backup = %v", err)
	}
	if blob.Value[0] != 2 || len(blob.Value) < 1+32+12+16 {
		t.Fatalf("Backup blob starts %x, %d bytes; want version 2", blob.Value[:1], len(blob.Value))
	}
	for _, h := range f.prov.handles {
		if bytes.Contains(blob.Value, h) {
			t.Fatalf("the backup blob contains a provider handle in clear")
		}
	}

	// Restoring onto the existing name is a conflict; onto the deleted name too.
	_, err = f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	wantErr(t, "Restore(existing)", err, ErrConflict)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "precious"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	wantErr(t, "Restore(deleted)", err, ErrDeletedButRecoverable)
	if err := f.svc.Purge(f.ctx, f.v, f.base, "precious"); err != nil {
		t.Fatal(err)
	}

	restored, err := f.svc.Restore(f.ctx, f.v, f.base, blob.Value)
	if err != nil {
		t.Fatalf("Restore after purge = %v", err)
	}
	if mustJSON(t, restored.Key) != mustJSON(t, second.Key) {
		t.Errorf("Restore().Key = %s; want %s", mustJSON(t, restored.Key), mustJSON(t, second.Key))
	}
	old, err := f.svc.Get(f.ctx, f.v, f.base, "precious", versionOf(first.Key.KID))
	if err != nil || mustJSON(t, old) != mustJSON(t, first) {
		t.Errorf("Get(first version) after Restore = %s, %v; want %s", mustJSON(t, old), err, mustJSON(t, first))
	}
	pol, err := f.svc.GetRotationPolicy(f.ctx, f.v, f.base, "precious")
	if err != nil || len(pol.LifetimeActions) != 1 || pol.LifetimeActions[0].Trigger.TimeAfterCreate != "P30D" {
		t.Errorf("GetRotationPolicy after Restore = %+v, %v; want the backed-up policy", pol, err)
	}
	d := digest("restored")
	sig, err := f.svc.Sign(f.ctx, f.v, f.base, "precious", "", SignParams{Algorithm: provider.AlgES256, Value: d})
	if err != nil || sig.KID != second.Key.KID {
		t.Fatalf("Sign after Restore = %+v, %v", sig, err)
	}
	if ok, err := f.svc.Verify(f.ctx, f.v, f.base, "precious", "", VerifyParams{Algorithm: provider.AlgES256, Digest: d, Signature: sig.Value}); err != nil || !ok.Value {
		t.Errorf("Verify after Restore = %+v, %v", ok, err)
	}

	// Another vault of the same tenant accepts the blob; another tenant's vault does not.
	other := vault(tenantA, "vault2", 90, false)
	if _, err := f.svc.Restore(f.ctx, other, f.base, blob.Value); err != nil {
		t.Errorf("Restore into another vault of the tenant = %v", err)
	}
	foreign := vault(tenantB, "vaultb", 90, false)
	_, err = f.svc.Restore(f.ctx, foreign, f.base, blob.Value)
	wantErr(t, "Restore(other tenant)", err, ErrBadParameter)
	if _, err := f.svc.Get(f.ctx, foreign, f.base, "precious", ""); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Get in the other tenant after a refused restore = %v; want ErrKeyNotFound", err)
	}

	// Another installation (another backup key) cannot open the blob.
	otherKey := make([]byte, 32)
	if _, err := rand.Read(otherKey); err != nil {
		t.Fatal(err)
	}
	otherInstall := NewService(f.store, f.prov, f.clk.Now, otherKey)
	_, err = otherInstall.Restore(f.ctx, vault(tenantA, "vault3", 90, false), f.base, blob.Value)
	wantErr(t, "Restore(other installation)", err, ErrBadParameter)
	noKey := NewService(f.store, f.prov, f.clk.Now, nil)
	if _, err := noKey.Backup(f.ctx, f.v, "precious"); err == nil || errors.Is(err, ErrBadParameter) {
		t.Errorf("Backup without a backup key = %v; want an internal error", err)
	}
}

func TestRestoreCorrupt(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "fragile", ecKey)
	blob, err := f.svc.Backup(f.ctx, f.v, "fragile")
	if err != nil {
		t.Fatal(err)
	}
	good := blob.Value
	if err := deleteAndPurge(f, "fragile"); err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		blob []byte
	}{
		{"fail/empty", nil},
		{"fail/version-only", good[:1]},
		{"fail/truncated-nonce", good[:10]},
		{"fail/truncated-tag", good[:len(good)-1]},
		{"fail/truncated-half", good[:len(good)/2]},
		{"fail/extended", append(bytes.Clone(good), 0)},
		{"fail/flip-version", flip(0)},
		{"fail/version-3", append([]byte{3}, good[1:]...)},
		{"fail/as-version-1", append([]byte{1}, good[1:]...)},
		{"fail/flip-salt", flip(5)},
		{"fail/flip-nonce", flip(1 + 32 + 5)},
		{"fail/flip-first-ciphertext", flip(1 + 32 + 12 + 1)},
		{"fail/flip-middle", flip(len(good) / 2)},
		{"fail/flip-tag", flip(len(good) - 1)},
		{"fail/random", func() []byte {
			b := make([]byte, len(good))
			rand.Read(b)
			b[0] = 2
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Restore(f.ctx, f.v, f.base, tt.blob)
			wantErr(t, "Restore", err, ErrBadParameter)
			if err != nil && !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("Restore = %q; want the one corrupt-blob message", err)
			}
		})
	}
	if _, err := f.svc.Restore(f.ctx, f.v, f.base, good); err != nil {
		t.Errorf("Restore(good blob) after the corrupt ones = %v", err)
	}
}

// TestRestoreSealedGarbage checks the validation behind the AEAD: a blob sealed with the
// right key but carrying a body no Backup makes is refused.
func TestRestoreSealedGarbage(t *testing.T) {
	f := newFixture(t)
	seal := func(plain string) []byte {
		blob, err := f.svc.backup.Seal([]byte(plain), backupAADFor(tenantA))
		if err != nil {
			t.Fatal(err)
		}
		return blob
	}
	for _, tt := range []struct{ name, body string }{
		{"fail/not-json", "{"},
		{"fail/unknown-field", `{"provider":"software","name":"x","latest":"","versions":[],"extra":1}`},
		{"fail/no-versions", `{"provider":"software","name":"x","latest":"","versions":[]}`},
		{"fail/bad-name", `{"provider":"software","name":"../x","latest":"00000000000000000000000000000000","versions":[{"version":"00000000000000000000000000000000","kty":"EC","handle":"AA==","public":null,"keyOps":[],"enabled":true,"created":0,"updated":0}]}`},
		{"fail/latest-missing", `{"provider":"software","name":"x","latest":"11111111111111111111111111111111","versions":[{"version":"00000000000000000000000000000000","kty":"EC","handle":"AA==","public":null,"keyOps":[],"enabled":true,"created":0,"updated":0}]}`},
		{"fail/bad-handle", `{"provider":"software","name":"x","latest":"00000000000000000000000000000000","versions":[{"version":"00000000000000000000000000000000","kty":"EC","handle":"AA==","public":null,"keyOps":[],"enabled":true,"created":0,"updated":0}]}`},
		{"fail/other-provider", `{"provider":"pkcs11","name":"x","latest":"00000000000000000000000000000000","versions":[{"version":"00000000000000000000000000000000","kty":"EC","handle":"AA==","public":null,"keyOps":[],"enabled":true,"created":0,"updated":0}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Restore(f.ctx, f.v, f.base, seal(tt.body))
			wantErr(t, "Restore", err, ErrBadParameter)
		})
	}
}

func deleteAndPurge(f *fixture, name string) error {
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, name); err != nil {
		return err
	}
	return f.svc.Purge(f.ctx, f.v, f.base, name)
}
