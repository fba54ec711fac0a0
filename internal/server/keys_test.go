package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// keysClient is an azkeys client for the dev vault, authenticated through the challenge.
func keysClient(t *testing.T, ts *testServer) *azkeys.Client {
	t.Helper()
	return azkeysClient(t, ts, ts.Dev.Credentials.VaultURL)
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("error = %v; want %d %s", err, status, code)
	}
}

func TestKeysThroughAzureSDK(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := keysClient(t, ts)
	digest := sha256.Sum256([]byte("coffer"))

	// Create RSA and EC keys; get returns only public material.
	rk, err := c.CreateKey(ctx, "rsa1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatalf("CreateKey(RSA) = %v", err)
	}
	if rk.Key.D != nil || rk.Key.P != nil || len(rk.Key.N) != 256 || !strings.HasPrefix(string(*rk.Key.KID), ts.Dev.Credentials.VaultURL+"keys/rsa1/") {
		t.Fatalf("RSA key bundle = %+v", rk.Key)
	}
	ek, err := c.CreateKey(ctx, "ec1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
	if err != nil {
		t.Fatalf("CreateKey(EC) = %v", err)
	}
	got, err := c.GetKey(ctx, "rsa1", "", nil)
	if err != nil || *got.Key.KID != *rk.Key.KID {
		t.Fatalf("GetKey(latest) = %v, %v", got.Key, err)
	}

	// Sign with the service, verify locally with the public key.
	sig, err := c.Sign(ctx, "rsa1", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatalf("Sign(PS256) = %v", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(rk.Key.N), E: int(new(big.Int).SetBytes(rk.Key.E).Int64())}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig.Result, nil); err != nil {
		t.Errorf("PS256 signature does not verify locally: %v", err)
	}
	esig, err := c.Sign(ctx, "ec1", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	if err != nil || len(esig.Result) != 64 {
		t.Fatalf("Sign(ES256) = %d bytes, %v", len(esig.Result), err)
	}
	ecPub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(ek.Key.X), Y: new(big.Int).SetBytes(ek.Key.Y)}
	if !ecdsa.Verify(ecPub, digest[:], new(big.Int).SetBytes(esig.Result[:32]), new(big.Int).SetBytes(esig.Result[32:])) {
		t.Error("ES256 signature does not verify locally")
	}
	v, err := c.Verify(ctx, "ec1", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: digest[:], Signature: esig.Result}, nil)
	if err != nil || v.Value == nil || !*v.Value {
		t.Errorf("Verify = %v, %v", v.Value, err)
	}

	// Encrypt / decrypt and wrap / unwrap round trips.
	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSA15} {
		enc, err := c.Encrypt(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: []byte("secret data")}, nil)
		if err != nil {
			t.Fatalf("Encrypt(%s) = %v", alg, err)
		}
		dec, err := c.Decrypt(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: enc.Result}, nil)
		if err != nil || string(dec.Result) != "secret data" {
			t.Fatalf("Decrypt(%s) = %q, %v", alg, dec.Result, err)
		}
		wr, err := c.WrapKey(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: make([]byte, 32)}, nil)
		if err != nil {
			t.Fatalf("WrapKey(%s) = %v", alg, err)
		}
		if uw, err := c.UnwrapKey(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: wr.Result}, nil); err != nil || len(uw.Result) != 32 {
			t.Fatalf("UnwrapKey(%s) = %v", alg, err)
		}
	}
	// Decrypt failures are uniform.
	_, err1 := c.Decrypt(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSA15), Value: make([]byte, 256)}, nil)
	_, err2 := c.Decrypt(ctx, "rsa1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte{1, 2, 3}}, nil)
	var re1, re2 *azcore.ResponseError
	if !errors.As(err1, &re1) || !errors.As(err2, &re2) || re1.StatusCode != 400 || re2.StatusCode != 400 {
		t.Errorf("bad ciphertexts = %v / %v; want 400s", err1, err2)
	}

	// Paging across several pages.
	for i := 0; i < 55; i++ {
		if _, err := c.CreateKey(ctx, fmt.Sprintf("page-%02d", i), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	pager := c.NewListKeyPropertiesPager(nil) // the service's page size is 25
	names, pages := map[string]bool{}, 0
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		pages++
		for _, k := range p.Value {
			names[k.KID.Name()] = true
		}
	}
	if len(names) != 57 || pages < 3 {
		t.Errorf("listed %d keys in %d pages; want 57 keys in ≥ 3 pages", len(names), pages)
	}

	// Rotate: a new version, the old one still usable.
	rot, err := c.RotateKey(ctx, "ec1", nil)
	if err != nil || rot.Key.KID.Version() == ek.Key.KID.Version() {
		t.Fatalf("RotateKey = %v, %v", rot.Key, err)
	}
	if _, err := c.Sign(ctx, "ec1", ek.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
		t.Errorf("Sign with the old version = %v", err)
	}
	versions := 0
	vp := c.NewListKeyPropertiesVersionsPager("ec1", nil)
	for vp.More() {
		p, err := vp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(p.Value)
	}
	if versions != 2 {
		t.Errorf("ec1 has %d versions; want 2", versions)
	}

	// Backup, delete, purge, restore: the same key comes back.
	bk, err := c.BackupKey(ctx, "rsa1", nil)
	if err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteKey(ctx, "rsa1", nil)
	if err != nil || del.RecoveryID == nil || del.ScheduledPurgeDate == nil {
		t.Fatalf("DeleteKey = %+v, %v", del, err)
	}
	_, err = c.GetKey(ctx, "rsa1", "", nil)
	wantCode(t, err, 404, "KeyNotFound")
	_, err = c.CreateKey(ctx, "rsa1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	wantCode(t, err, 409, "Conflict")
	if _, err := c.GetDeletedKey(ctx, "rsa1", nil); err != nil {
		t.Errorf("GetDeletedKey = %v", err)
	}
	if _, err := c.PurgeDeletedKey(ctx, "rsa1", nil); err != nil {
		t.Fatalf("PurgeDeletedKey = %v", err)
	}
	res, err := c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	if err != nil || string(res.Key.N) != string(rk.Key.N) {
		t.Fatalf("RestoreKey = %v", err)
	}
	_, err = c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bk.Value}, nil)
	wantCode(t, err, 409, "Conflict")
	bad := append([]byte(nil), bk.Value...)
	bad[len(bad)/2] ^= 1
	c.DeleteKey(ctx, "ec1", nil)
	_, err = c.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bad}, nil)
	wantCode(t, err, 400, "BadParameter")

	// Soft delete → recover.
	if _, err := c.RecoverDeletedKey(ctx, "ec1", nil); err != nil {
		t.Fatalf("RecoverDeletedKey = %v", err)
	}
	if _, err := c.GetKey(ctx, "ec1", "", nil); err != nil {
		t.Errorf("GetKey after recover = %v", err)
	}

	// Rotation policy round trip.
	pol, err := c.UpdateKeyRotationPolicy(ctx, "ec1", azkeys.KeyRotationPolicy{
		Attributes:      &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
		LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}, Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P30D")}}},
	}, nil)
	if err != nil || len(pol.LifetimeActions) == 0 {
		t.Fatalf("UpdateKeyRotationPolicy = %v", err)
	}
	gp, err := c.GetKeyRotationPolicy(ctx, "ec1", nil)
	if err != nil || *gp.Attributes.ExpiryTime != "P90D" {
		t.Errorf("GetKeyRotationPolicy = %v, %v", gp, err)
	}

	// Update: disable, then sign is refused before any crypto.
	if _, err := c.UpdateKey(ctx, "ec1", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Sign(ctx, "ec1", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	wantCode(t, err, 403, "Forbidden")

	// Bad input: wrong algorithm, wrong digest length, unknown api-version.
	_, err = c.Sign(ctx, "page-00", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest[:]}, nil)
	wantCode(t, err, 400, "BadParameter")
	_, err = c.Sign(ctx, "page-00", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:20]}, nil)
	wantCode(t, err, 400, "BadParameter")
	_, err = c.CreateKey(ctx, "bad_name", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil)
	wantCode(t, err, 400, "BadParameter")
	hc := loopbackClient(t, ts.caFile)
	resp, err := hc.Get(ts.Dev.Credentials.VaultURL + "keys?api-version=1999-01-01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown api-version = %d; want 400", resp.StatusCode)
	}
}

// TestDisableRSA15Setting: with --disable-rsa1_5 the official client's RSA1_5 decrypt and
// encrypt get 400 BadParameter naming the setting's reason, and RSA-OAEP-256 still works.
func TestDisableRSA15Setting(t *testing.T) {
	ts := startDev(t, "--disable-rsa1_5")
	ctx := context.Background()
	c := keysClient(t, ts)
	if _, err := c.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
		t.Fatal(err)
	}
	rsa15 := to.Ptr(azkeys.EncryptionAlgorithmRSA15)
	_, err := c.Encrypt(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: []byte("x")}, nil)
	wantCode(t, err, 400, "BadParameter")
	_, err = c.Decrypt(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: make([]byte, 256)}, nil)
	wantCode(t, err, 400, "BadParameter")
	if !strings.Contains(err.Error(), "RSA1_5 is disabled") {
		t.Errorf("Decrypt(RSA1_5) = %v; want the disabled-algorithm message", err)
	}
	ct, err := c.Encrypt(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c.Decrypt(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: ct.Result}, nil); err != nil || string(pt.Result) != "x" {
		t.Errorf("RSA-OAEP-256 with RSA1_5 disabled = %v", err)
	}
}
