package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// TestOctHSMGCMLimit drives the AES-GCM invocation limit (SECURITY-NOTES C4) through azkeys
// with a SoftHSM2 token, the limit lowered to 5 in blocks of 2: in a vault and in the
// managed HSM pool, an oct-HSM version encrypts 5 times, the 6th is 403 in Key Vault's
// error shape telling the caller to rotate, decrypt still works, and a new version
// encrypts again.
func TestOctHSMGCMLimit(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	id, err := ts.ident()
	if err != nil {
		t.Fatal(err)
	}
	id.keys.LowerGCMLimitForTest(5, 2)
	ctx := context.Background()
	gcm := azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("plaintext")}
	for store, c := range map[string]*azkeys.Client{"vault": keysClient(t, ts), "pool": poolClient(t, ts)} {
		t.Run(store, func(t *testing.T) {
			create := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOctHSM), KeySize: to.Ptr(int32(256))}
			if _, err := c.CreateKey(ctx, "aes", create, nil); err != nil {
				t.Fatal(err)
			}
			var first azkeys.EncryptResponse
			for i := range 5 {
				r, err := c.Encrypt(ctx, "aes", "", gcm, nil)
				if err != nil {
					t.Fatalf("Encrypt #%d = %v; want success below the limit", i+1, err)
				}
				if i == 0 {
					first = r
				}
			}
			_, err := c.Encrypt(ctx, "aes", "", gcm, nil)
			wantCode(t, err, 403, "Forbidden")
			var body struct {
				Error struct {
					Code       string
					Message    string
					InnerError struct{ Code string }
				}
			}
			if err := json.Unmarshal(errorBody(t, err), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error.InnerError.Code != "AESGCMLimitReached" || !strings.Contains(body.Error.Message, "has reached the AES-GCM limit of 5 encryptions with random IVs") || !strings.Contains(body.Error.Message, "Rotate the key (create a new version)") {
				t.Errorf("Encrypt past the limit answered %+v; want innererror AESGCMLimitReached and a message telling to rotate", body.Error)
			}
			pt, err := c.Decrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: gcm.Algorithm, Value: first.Result, IV: first.IV, AuthenticationTag: first.AuthenticationTag}, nil)
			if err != nil || !bytes.Equal(pt.Result, gcm.Value) {
				t.Errorf("Decrypt with the exhausted version = %q, %v; want the plaintext", pt.Result, err)
			}
			if _, err := c.CreateKey(ctx, "aes", create, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Encrypt(ctx, "aes", "", gcm, nil); err != nil {
				t.Errorf("Encrypt with a new version = %v; want success", err)
			}
		})
	}
}
