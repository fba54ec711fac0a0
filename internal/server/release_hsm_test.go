package server

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/mgmt"
)

// TestSecureKeyReleaseHSM releases an exportable oct-HSM key from the SoftHSM2 token to a
// sim-attested TEE through azkeys: the token wraps it (RSA-OAEP to the TEE's key of an
// ephemeral AES key ‖ KWP of the key) and the TEE opens it with byok.Open and decrypts what
// the vault key encrypted. Non-exportable keys and (on SoftHSM2) exportable RSA-HSM keys are
// refused, and nothing is released.
func TestSecureKeyReleaseHSM(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ts.client = loopbackClient(t, ts.caFile)
	ctx := context.Background()
	tc, tok := newTenant(t, ts, "Contoso")
	var prov mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", "/v1/tenants/"+tc.Tenant.ID+"/attestationProviders/hsmtee", tok,
		map[string]any{"policy": map[string]any{"types": []string{"sim"}}}, 201, &prov)
	simKey := devSimKey(t, ts)
	tee, rt := teeRuntime(t)
	kc := keysClient(t, ts)
	policy := &azkeys.KeyReleasePolicy{EncodedPolicy: skrPolicy(prov.URI, 0x0a)}

	create := func(name string, kty azkeys.KeyType, size int32, exportable bool) {
		t.Helper()
		_, err := kc.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(kty), KeySize: to.Ptr(size),
			KeyAttributes: &azkeys.KeyAttributes{Exportable: to.Ptr(exportable)}, ReleasePolicy: policy}, nil)
		if err != nil {
			t.Fatalf("CreateKey(%s) = %v", name, err)
		}
	}
	create("aes-exp", azkeys.KeyTypeOctHSM, 256, true)
	create("aes-plain", azkeys.KeyTypeOctHSM, 256, false)
	create("rsa-exp", azkeys.KeyTypeRSAHSM, 2048, true)

	good := attestToken(t, ts, prov.URI, simKey, 0x0a, rt)
	resp, err := kc.Release(ctx, "aes-exp", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(good)}, nil)
	if err != nil {
		t.Fatalf("Release(oct-HSM) = %v", err)
	}
	jwks, err := token.ParseJWKS(ts.get(t, prov.URI+"/certs"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyClaims(*resp.Value, jwks)
	if err != nil {
		t.Fatalf("the release result does not verify: %v", err)
	}
	jwk := claims["response"].(map[string]any)["key"].(map[string]any)["key"].(map[string]any)
	if jwk["kty"] != "oct-HSM" || jwk["k"] != nil {
		t.Fatalf("released JWK = %v; want oct-HSM without k", jwk)
	}
	rawBlob, _ := base64.RawURLEncoding.DecodeString(jwk["key_hsm"].(string))
	var blob byok.Blob
	if err := json.Unmarshal(rawBlob, &blob); err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
	released, err := byok.Open(tee, crypto.SHA1, ct)
	if err != nil || len(released) != 32 {
		t.Fatalf("the TEE cannot open the released key: %d bytes, %v", len(released), err)
	}
	// The TEE decrypts what the vault key (in the token) encrypted.
	msg := []byte("encrypted by the HSM, read in the TEE")
	enc, err := kc.Encrypt(ctx, "aes-exp", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: msg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := aes.NewCipher(released)
	gcm, _ := cipher.NewGCM(blk)
	if pt, err := gcm.Open(nil, enc.IV, append(enc.Result, enc.AuthenticationTag...), nil); err != nil || string(pt) != string(msg) {
		t.Errorf("the released key does not decrypt the vault key's ciphertext: %q, %v", pt, err)
	}

	// Refusals: nothing released.
	for _, c := range []struct {
		name, key string
		status    int
		code, msg string
	}{
		{"non-exportable-hsm-key", "aes-plain", 403, "Forbidden", "not exportable"},
		{"rsa-hsm-on-softhsm-kwp", "rsa-exp", 400, "BadParameter", "RFC 5649"},
	} {
		t.Run("fail/"+c.name, func(t *testing.T) {
			resp, err := kc.Release(ctx, c.key, "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(good)}, nil)
			if resp.Value != nil {
				t.Fatal("Release released a value")
			}
			wantCode(t, err, c.status, c.code)
			if body := string(errorBody(t, err)); !strings.Contains(body, c.msg) {
				t.Errorf("error body %s; want it to say %q", body, c.msg)
			}
		})
	}
	// OAEP-256 needs a token that does it; SoftHSM2 2.6.1 does SHA-1 only.
	if !ts.hsm.OffersOAEP256() {
		_, err := kc.Release(ctx, "aes-exp", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr(good), Algorithm: to.Ptr(azkeys.KeyEncryptionAlgorithmRSAAESKEYWRAP256)}, nil)
		wantCode(t, err, 400, "BadParameter")
	}

	// In the token, the non-exportable key is still never extractable; the exportable one is
	// extractable and sensitive.
	if tool, err := exec.LookPath("pkcs11-tool"); err == nil {
		out, err := exec.Command(tool, "--module", softhsmLib, "--token-label", "coffer", "--login", "--pin", "4321", "--list-objects", "--type", "secrkey").CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs11-tool --list-objects = %v\n%s", err, out)
		}
		never, extr, sensitive := strings.Count(string(out), "never extractable"), strings.Count(string(out), "sensitive, extractable"), strings.Count(string(out), "always sensitive")
		if never != 1 || extr != 1 || sensitive != 2 {
			t.Errorf("secret key objects: %d never extractable, %d extractable, %d sensitive; want 1, 1, 2\n%s", never, extr, sensitive, out)
		}
	} else {
		t.Log("pkcs11-tool is not installed: the token attribute check is skipped")
	}
	log := readAudit(t, ts)
	if !strings.Contains(log, `"op":"KeyRelease"`) || !strings.Contains(log, "RFC 5649") && !strings.Contains(log, "error") {
		t.Errorf("the audit log lacks the HSM release records")
	}
}
