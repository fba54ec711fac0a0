package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// poolClient is an azkeys client for the dev managed HSM pool.
func poolClient(t *testing.T, ts *testServer) *azkeys.Client {
	t.Helper()
	return azkeysClient(t, ts, ts.Dev.Credentials.ManagedHSMURL)
}

// azkeysClient is an azkeys client for a store URL of the dev server, authenticated
// through the challenge.
func azkeysClient(t *testing.T, ts *testServer, url string) *azkeys.Client {
	t.Helper()
	cred, hc := devCredential(t, ts, ts.Dev.Credentials.ClientSecret)
	c, err := azkeys.NewClient(url, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errorBody returns the raw error body of an azkeys failure.
func errorBody(t *testing.T, err error) []byte {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v; want a response error", err)
	}
	b, perr := runtime.Payload(re.RawResponse)
	if perr != nil {
		t.Fatal(perr)
	}
	return b
}

// TestOctHSMKeys drives oct-HSM keys through azkeys, in a vault and in the managed HSM
// pool: create (all three sizes), get (no key material), every AES algorithm, and the one
// uniform error for every failed decrypt or unwrap.
func TestOctHSMKeys(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	for store, c := range map[string]*azkeys.Client{"vault": keysClient(t, ts), "pool": poolClient(t, ts)} {
		t.Run(store, func(t *testing.T) {
			kty := azkeys.KeyTypeOctHSM
			if store == "pool" {
				kty = azkeys.KeyTypeOct // a pool makes oct-HSM of it, as Managed HSM does
			}
			for _, size := range []int32{128, 192, 256} {
				name := "aes" + string(rune('0'+size/64))
				k, err := c.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(kty), KeySize: to.Ptr(size)}, nil)
				if err != nil {
					t.Fatalf("CreateKey(%s %d) = %v", kty, size, err)
				}
				if *k.Key.Kty != azkeys.KeyTypeOctHSM || k.Key.K != nil || k.Key.N != nil || k.Key.X != nil || k.Key.KID == nil || len(k.Key.KeyOps) != 4 {
					t.Errorf("CreateKey(%d).Key = %+v; want oct-HSM with kid and key_ops only", size, k.Key)
				}
			}
			got, err := c.GetKey(ctx, "aes4", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if raw, _ := json.Marshal(got.Key); bytes.Contains(raw, []byte(`"k"`)) || *got.Key.Kty != azkeys.KeyTypeOctHSM {
				t.Errorf("GetKey = %s; want no key material", raw)
			}
			msg, aad := []byte("thirty-two bytes of plaintext!!!"), []byte("context")
			gcm, err := c.Encrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: msg, AdditionalAuthenticatedData: aad}, nil)
			if err != nil {
				t.Fatalf("Encrypt(A256GCM) = %v", err)
			}
			if len(gcm.IV) != 12 || len(gcm.AuthenticationTag) != 16 || !bytes.Equal(gcm.AdditionalAuthenticatedData, aad) || gcm.KID == nil {
				t.Fatalf("Encrypt(A256GCM) = iv %x tag %x aad %q kid %v", gcm.IV, gcm.AuthenticationTag, gcm.AdditionalAuthenticatedData, gcm.KID)
			}
			dec, err := c.Decrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: gcm.Result, IV: gcm.IV, AuthenticationTag: gcm.AuthenticationTag, AdditionalAuthenticatedData: aad}, nil)
			if err != nil || !bytes.Equal(dec.Result, msg) {
				t.Errorf("Decrypt(A256GCM) = %v, %v", dec.Result, err)
			}
			iv := bytes.Repeat([]byte{7}, 16)
			for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmA256CBC, azkeys.EncryptionAlgorithmA256CBCPAD} {
				ct, err := c.Encrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: msg, IV: iv}, nil)
				if err != nil {
					t.Fatalf("Encrypt(%s) = %v", alg, err)
				}
				pt, err := c.Decrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: ct.Result, IV: ct.IV}, nil)
				if err != nil || !bytes.Equal(pt.Result, msg) {
					t.Errorf("Decrypt(%s) = %x, %v", alg, pt.Result, err)
				}
			}
			for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmA256KW, azkeys.EncryptionAlgorithmCKMAESKEYWRAP, azkeys.EncryptionAlgorithmCKMAESKEYWRAPPAD} {
				w, err := c.WrapKey(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: msg}, nil)
				if err != nil || len(w.Result) != 40 {
					t.Fatalf("WrapKey(%s) = %x, %v", alg, w.Result, err)
				}
				u, err := c.UnwrapKey(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: w.Result}, nil)
				if err != nil || !bytes.Equal(u.Result, msg) {
					t.Errorf("UnwrapKey(%s) = %x, %v", alg, u.Result, err)
				}
			}
			// A 128-bit key: A128GCM works, A256GCM does not fit it.
			if _, err := c.Encrypt(ctx, "aes2", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA128GCM), Value: msg}, nil); err != nil {
				t.Errorf("Encrypt(aes128, A128GCM) = %v", err)
			}
			_, err = c.Encrypt(ctx, "aes2", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: msg}, nil)
			wantCode(t, err, 400, "BadParameter")

			// Every failed decryption answers the same bytes: bad GCM tag, wrong aad, bad
			// CBC padding.
			bodies := map[string][]byte{}
			badTag := append([]byte(nil), gcm.AuthenticationTag...)
			badTag[0] ^= 1
			_, err = c.Decrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: gcm.Result, IV: gcm.IV, AuthenticationTag: badTag, AdditionalAuthenticatedData: aad}, nil)
			wantCode(t, err, 400, "BadParameter")
			bodies["gcm-tag"] = errorBody(t, err)
			_, err = c.Decrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: gcm.Result, IV: gcm.IV, AuthenticationTag: gcm.AuthenticationTag, AdditionalAuthenticatedData: []byte("other")}, nil)
			bodies["gcm-aad"] = errorBody(t, err)
			_, err = c.Decrypt(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256CBCPAD), Value: bytes.Repeat([]byte{1}, 32), IV: iv}, nil)
			bodies["cbc-padding"] = errorBody(t, err)
			for name, b := range bodies {
				if !bytes.Equal(b, bodies["gcm-tag"]) {
					t.Errorf("decrypt failure %s answered %s; want the same as a bad GCM tag: %s", name, b, bodies["gcm-tag"])
				}
			}
			_, err = c.UnwrapKey(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256KW), Value: make([]byte, 40)}, nil)
			wantCode(t, err, 400, "BadParameter")
			kwBody := errorBody(t, err)
			_, err = c.UnwrapKey(ctx, "aes4", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmCKMAESKEYWRAPPAD), Value: make([]byte, 40)}, nil)
			if b := errorBody(t, err); !bytes.Equal(b, kwBody) {
				t.Errorf("unwrap failures differ: %s vs %s", b, kwBody)
			}
			// Rotation makes a new token key of the same size; old ciphertext stays readable
			// through its version.
			r, err := c.RotateKey(ctx, "aes4", nil)
			if err != nil || *r.Key.Kty != azkeys.KeyTypeOctHSM || r.Key.KID.Version() == gcm.KID.Version() {
				t.Fatalf("RotateKey = %v, %v", r.Key, err)
			}
			old, err := c.Decrypt(ctx, "aes4", gcm.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: gcm.Result, IV: gcm.IV, AuthenticationTag: gcm.AuthenticationTag, AdditionalAuthenticatedData: aad}, nil)
			if err != nil || !bytes.Equal(old.Result, msg) {
				t.Errorf("Decrypt with the old version after rotation = %v", err)
			}
			// An AES key has no sign in its key_ops.
			_, err = c.Sign(ctx, "aes4", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: make([]byte, 32)}, nil)
			wantCode(t, err, 403, "Forbidden")
		})
	}
	// In a vault, plain oct is refused as Key Vault refuses it.
	_, err := keysClient(t, ts).CreateKey(ctx, "soft-oct", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeOct)}, nil)
	wantCode(t, err, 400, "BadParameter")
	if b := errorBody(t, err); !strings.Contains(string(b), `"innererror":{"code":"KeyTypeNotSupported"}`) {
		t.Errorf("oct in a vault = %s; want innererror KeyTypeNotSupported", b)
	}
}

// TestOctKeysNeedAToken: without a token no oct key is made anywhere, never in software.
func TestOctKeysNeedAToken(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	for store, c := range map[string]*azkeys.Client{"vault": keysClient(t, ts), "pool": poolClient(t, ts)} {
		for _, kty := range []azkeys.KeyType{azkeys.KeyTypeOct, azkeys.KeyTypeOctHSM} {
			_, err := c.CreateKey(ctx, "aes", azkeys.CreateKeyParameters{Kty: to.Ptr(kty), KeySize: to.Ptr(int32(256))}, nil)
			wantCode(t, err, 400, "BadParameter")
			if b := errorBody(t, err); !strings.Contains(string(b), "KeyTypeNotSupported") || !strings.Contains(string(b), "Invalid kty value: "+string(kty)) {
				t.Errorf("%s: CreateKey(%s) = %s; want Invalid kty value with KeyTypeNotSupported", store, kty, b)
			}
		}
	}
}
