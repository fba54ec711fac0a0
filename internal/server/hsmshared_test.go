package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestHandleOnlyRestoreIntoAnotherPool: without a security officer PIN a pool's HSM keys
// cannot leave their token, so their backups carry only a reference to the token object.
// Restoring such a backup into another pool of the same domain (same token) would make two
// keys share one object, and purging the original would destroy the copy's key material
// (this answered 500 InternalError on the copy's next sign). The restore is refused with
// 400 BadParameter saying why, and nothing is written; the original keeps working and its
// purge leaves no broken key behind.
func TestHandleOnlyRestoreIntoAnotherPool(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	sd := sdPools(t, ts, "ha", "hb")
	holders := custodianKeys(t, 3)
	blob := sd.download(t, "ha", 2, holders...)
	if status, out := sd.upload(t, "hb", blob, holders[0], holders[1]); status != 202 {
		t.Fatalf("upload into hb = %d %v", status, out)
	}
	port := ts.resources().port
	ha := azkeysClient(t, ts, "https://ha.managedhsm.localhost:"+port+"/")
	hb := azkeysClient(t, ts, "https://hb.managedhsm.localhost:"+port+"/")
	for _, kty := range []azkeys.KeyType{azkeys.KeyTypeECHSM, azkeys.KeyTypeRSAHSM, azkeys.KeyTypeOctHSM} {
		name := "shared-" + string(kty)
		k, err := ha.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(kty)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ha.BackupKey(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = hb.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
		wantRefused(t, "restore of "+name+" into hb", err, "still belongs to a key of this tenant")
		if _, err := hb.GetKey(ctx, name, "", nil); err == nil {
			t.Errorf("%s exists in hb after a refused restore", name)
		}
		if kty != azkeys.KeyTypeOctHSM {
			signsWith(t, ha, name, k.Key)
		}
		if _, err := ha.DeleteKey(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
		// Deleted but not purged: the object still belongs to ha's key.
		_, err = hb.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
		wantRefused(t, "restore of deleted "+name+" into hb", err, "still belongs to a key of this tenant")
		if _, err := ha.PurgeDeletedKey(ctx, name, nil); err != nil {
			t.Fatal(err)
		}
		// Purged: the object is gone, and the backup holds nothing else.
		_, err = hb.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
		wantRefused(t, "restore of purged "+name+" into hb", err, "no longer in the token")
		_, err = ha.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
		wantRefused(t, "restore of purged "+name+" into ha", err, "no longer in the token")
	}
}

// TestHandleOnlyRestoreIntoAnotherVault: a vault's HSM keys are never extractable, so the
// same holds between vaults of a tenant: the backup does not restore into another vault
// while the original names the object, and nothing is written there.
func TestHandleOnlyRestoreIntoAnotherVault(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	devVault(t, ts, "hv2")
	src := keysClient(t, ts)
	dst := azkeysClient(t, ts, "https://hv2.localhost:"+ts.resources().port+"/")
	k, err := src.CreateKey(ctx, "vk", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := src.BackupKey(ctx, "vk", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dst.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
	wantRefused(t, "restore of a vault's HSM key into another vault", err, "still belongs to a key of this tenant")
	if _, err := dst.GetKey(ctx, "vk", "", nil); err == nil {
		t.Error("vk exists in hv2 after a refused restore")
	}
	signsWith(t, src, "vk", k.Key)
}

// devVault makes another vault of the dev tenant, administered by the dev principal.
func devVault(t *testing.T, ts *testServer, name string) {
	t.Helper()
	ctx := context.Background()
	c := ts.Dev.Credentials
	if _, err := ts.tenants.CreateVault(ctx, c.TenantID, tenancy.KindVault, name, tenancy.VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	a := authz.Assignment{PrincipalID: c.ObjectID, TenantID: c.TenantID, RoleDefinitionID: mustRole("Key Vault Administrator"), Scope: "/tenants/" + c.TenantID + "/vaults/" + name}
	if _, err := ts.tenants.CreateRoleAssignment(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// TestHSMKeyObjectGone: a key whose token object was destroyed behind Coffer's back (an
// administrator with the token's PIN, or the purge of a key that shared the object before
// handle-only restores into other pools were refused) answers 404 KeyNotFound saying its
// key material is no longer in the token, never 500 and never 503 (the HSM is there;
// retrying cannot help): on first use after a restart (nothing cached) and after the
// object handle was cached by an earlier operation.
func TestHSMKeyObjectGone(t *testing.T) {
	flags := softHSMToken(t)
	dir := t.TempDir()
	args := append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}, flags...)
	ts := start(t, loadConfig(t, args...), "")
	ctx := context.Background()
	pool := azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	digest := sha256.Sum256([]byte("gone"))
	ops := map[string]func(name string) error{
		"sign": func(name string) error {
			_, err := pool.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
			return err
		},
		"decrypt": func(name string) error {
			_, err := pool.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: make([]byte, 256)}, nil)
			return err
		},
		"encrypt": func(name string) error {
			_, err := pool.Encrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("x")}, nil)
			return err
		},
	}
	kty := map[string]azkeys.KeyType{"sign": azkeys.KeyTypeECHSM, "decrypt": azkeys.KeyTypeRSAHSM, "encrypt": azkeys.KeyTypeOctHSM}
	for op := range ops {
		for _, name := range []string{"cached-" + op, "cold-" + op} {
			if _, err := pool.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(kty[op])}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if op != "decrypt" {
			if err := ops[op]("cached-" + op); err != nil {
				t.Fatalf("%s before the object went = %v", op, err)
			}
		}
	}
	destroyAllKeyObjects(t, "coffer")
	for op, f := range ops {
		err := f("cached-" + op)
		wantCodeOf(t, op+" with a cached handle", err, 404, "KeyNotFound")
		if err != nil && !strings.Contains(err.Error(), "no longer in its HSM token") {
			t.Errorf("%s: message %v does not say the key material is gone", op, err)
		}
	}
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts = start(t, loadConfig(t, args...), "")
	pool = azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
	for op, f := range ops {
		wantCodeOf(t, op+" after a restart", f("cold-"+op), 404, "KeyNotFound")
	}
}

// wantCodeOf is wantCode that goes on after a mismatch.
func wantCodeOf(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Errorf("%s: error = %v; want %d %s", what, err, status, code)
	}
}

// wantRefused checks that err is 400 BadParameter whose message contains why.
func wantRefused(t *testing.T, what string, err error, why string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || re.ErrorCode != "BadParameter" || !strings.Contains(err.Error(), why) {
		t.Errorf("%s = %v; want 400 BadParameter saying %q", what, err, why)
	}
}

// destroyAllKeyObjects destroys, behind the server's back, every key object of Coffer's
// keys in the token labelled label (CKA_LABEL coffer-<id>; not the security-domain wrapping
// keys nor an auto-unseal key).
func destroyAllKeyObjects(t *testing.T, label string) {
	t.Helper()
	inToken(t, label, func(c *p11.Ctx, s p11.SessionHandle) {
		n := 0
		for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY, p11.CKO_SECRET_KEY} {
			for _, obj := range findObjects(t, c, s, p11.NewAttribute(p11.CKA_CLASS, class)) {
				attrs, err := c.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, nil)})
				if err != nil {
					t.Fatal(err)
				}
				l := string(attrs[0].Value)
				if !strings.HasPrefix(l, "coffer-") || strings.HasPrefix(l, "coffer-sd-") {
					continue
				}
				if err := c.DestroyObject(s, obj); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatal("no key objects to destroy")
		}
	})
}
