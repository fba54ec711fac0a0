package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/byok"
)

// createKEK creates an RSA-HSM key-exchange key and returns its public key and kid.
func createKEK(t *testing.T, c *azkeys.Client, name string) (*rsa.PublicKey, string) {
	t.Helper()
	k, err := c.CreateKey(context.Background(), name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(2048)),
		KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationImport)}}, nil)
	if err != nil {
		t.Fatalf("CreateKey(KEK) = %v", err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(k.Key.N), E: int(new(big.Int).SetBytes(k.Key.E).Int64())}, string(*k.Key.KID)
}

// blobJSON wraps a ciphertext in the transfer blob JSON.
func blobJSON(kid, enc string, ct []byte) []byte {
	b, _ := json.Marshal(byok.Blob{SchemaVersion: "1.0.0", Header: byok.Header{KID: kid, Alg: "dir", Enc: enc}, Ciphertext: base64.RawURLEncoding.EncodeToString(ct)})
	return b
}

// opensslCiphertext makes the transfer ciphertext with the OpenSSL commands of Azure's BYOK
// documentation: `openssl pkeyutl` (OAEP with md) wraps a random AES-256 key under the KEK,
// `openssl enc -id-aes256-wrap-pad` wraps the target (RFC 5649).
func opensslCiphertext(t *testing.T, kek *rsa.PublicKey, md string, target []byte) []byte {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: the Go-built blobs of TestBYOK still run")
	}
	dir := t.TempDir()
	spki, _ := x509.MarshalPKIXPublicKey(kek)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kekPEM := write("kek.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	targetFile := write("target.bin", target)
	run := func(args ...string) {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	aesKey := filepath.Join(dir, "aes.key")
	run("rand", "-out", aesKey, "32")
	run("pkeyutl", "-encrypt", "-in", aesKey, "-out", filepath.Join(dir, "wrapped_aes.bin"), "-pubin", "-inkey", kekPEM,
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md)
	key, err := os.ReadFile(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	run("enc", "-id-aes256-wrap-pad", "-iv", "A65959A6", "-K", hex.EncodeToString(key), "-in", targetFile, "-out", filepath.Join(dir, "wrapped_target.bin"))
	head, _ := os.ReadFile(filepath.Join(dir, "wrapped_aes.bin"))
	tail, _ := os.ReadFile(filepath.Join(dir, "wrapped_target.bin"))
	if len(head) != 256 || len(tail) == 0 {
		t.Fatalf("openssl output: %d + %d bytes", len(head), len(tail))
	}
	return append(head, tail...)
}

// TestBYOKOpenSSL: a blob made with OpenSSL as Azure's BYOK documentation does imports
// through azkeys, and the imported key signs and decrypts as the original.
func TestBYOKOpenSSL(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := keysClient(t, ts)
	kek, kid := createKEK(t, c, "kek")
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	blob := blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", opensslCiphertext(t, kek, "sha1", pk8))
	k, err := c.ImportKey(ctx, "imported", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), T: blob}}, nil)
	if err != nil {
		t.Fatalf("ImportKey(OpenSSL blob) = %v", err)
	}
	if *k.Key.Kty != azkeys.KeyTypeRSAHSM || !bytes.Equal(k.Key.N, target.N.Bytes()) || k.Key.D != nil || k.Key.T != nil {
		t.Fatalf("imported key = %+v; want RSA-HSM with the target's public key only", k.Key)
	}
	checkRSASignsAndDecrypts(t, c, "imported", target)
}

// checkRSASignsAndDecrypts checks that key name signs (PS256, RS256) and decrypts
// (RSA-OAEP) as target does.
func checkRSASignsAndDecrypts(t *testing.T, c *azkeys.Client, name string, target *rsa.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	digest := sha256.Sum256([]byte("moved into the HSM"))
	for _, alg := range []azkeys.SignatureAlgorithm{azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmRS256} {
		sig, err := c.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest[:]}, nil)
		if err != nil {
			t.Fatalf("Sign(%s) = %v", alg, err)
		}
		if alg == azkeys.SignatureAlgorithmPS256 {
			err = rsa.VerifyPSS(&target.PublicKey, crypto.SHA256, digest[:], sig.Result, nil)
		} else {
			err = rsa.VerifyPKCS1v15(&target.PublicKey, crypto.SHA256, digest[:], sig.Result)
		}
		if err != nil {
			t.Errorf("%s signature of the imported key does not verify under the original: %v", alg, err)
		}
	}
	ct, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, &target.PublicKey, []byte("for the HSM only"), nil)
	pt, err := c.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: ct}, nil)
	if err != nil || string(pt.Result) != "for the HSM only" {
		t.Errorf("Decrypt by the imported key = %q, %v", pt.Result, err)
	}
}

// TestBYOK: KEK rules, Go-built blobs (RSA and AES targets, the `coffer byok` builder), and
// every bad input of issue 6 refused with 4xx and nothing imported.
func TestBYOK(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := keysClient(t, ts)
	kek, kid := createKEK(t, c, "kek")

	// A KEK permits nothing but import, and only an RSA-HSM key can be one.
	_, err := c.Decrypt(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: make([]byte, 256)}, nil)
	wantCode(t, err, 403, "Forbidden")
	for name, p := range map[string]azkeys.CreateKeyParameters{
		"import-and-decrypt": {Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationImport), to.Ptr(azkeys.KeyOperationDecrypt)}},
		"software-rsa":       {Kty: to.Ptr(azkeys.KeyTypeRSA), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationImport)}},
		"ec-hsm":             {Kty: to.Ptr(azkeys.KeyTypeECHSM), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationImport)}},
	} {
		if _, err := c.CreateKey(ctx, "bad-kek", p, nil); err == nil {
			t.Errorf("CreateKey(%s) succeeded; want 400", name)
		} else {
			wantCode(t, err, 400, "BadParameter")
		}
	}
	_, err = c.UpdateKey(ctx, "kek", "", azkeys.UpdateKeyParameters{KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationDecrypt)}}, nil)
	wantCode(t, err, 400, "BadParameter")

	// RSA and AES targets from the builder `coffer byok` uses.
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportKey(ctx, "rsa", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), T: blob}}, nil); err != nil {
		t.Fatalf("ImportKey(Go-built RSA blob) = %v", err)
	}
	checkRSASignsAndDecrypts(t, c, "rsa", target)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	blob, _ = byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", raw, "test")
	ak, err := c.ImportKey(ctx, "aes", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOctHSM), T: blob}}, nil)
	if err != nil || *ak.Key.Kty != azkeys.KeyTypeOctHSM || ak.Key.K != nil {
		t.Fatalf("ImportKey(AES blob) = %v, %v", ak.Key, err)
	}
	iv := make([]byte, 16)
	enc, err := c.Encrypt(ctx, "aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256CBC), Value: make([]byte, 16), IV: iv}, nil)
	block, _ := aes.NewCipher(raw)
	want := make([]byte, 16)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, make([]byte, 16))
	if err != nil || !bytes.Equal(enc.Result, want) {
		t.Errorf("the imported AES key encrypts to %x, %v; want %x", enc.Result, err, want)
	}

	// Bad input: 4xx, and no key of that name afterwards.
	_, notKEKID := createKEK(t, c, "other")
	notKEK, err := c.CreateKey(ctx, "plain-hsm", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, poolKID := createKEK(t, poolClient(t, ts), "pool-kek")
	expiredPub, expiredKID := createKEK(t, c, "expired-kek")
	if _, err := c.UpdateKey(ctx, "expired-kek", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: to.Ptr(time.Now().Add(-time.Hour))}}, nil); err != nil {
		t.Fatal(err)
	}
	disabledPub, disabledKID := createKEK(t, c, "disabled-kek")
	if _, err := c.UpdateKey(ctx, "disabled-kek", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	expiredCT, _ := byok.Ciphertext(expiredPub, crypto.SHA1, pk8)
	disabledCT, _ := byok.Ciphertext(disabledPub, crypto.SHA1, pk8)
	good, _ := byok.Ciphertext(kek, crypto.SHA1, pk8)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-20] ^= 1
	sha256CT, _ := byok.Ciphertext(kek, crypto.SHA256, pk8)
	otherCT, _ := byok.Ciphertext(&target.PublicKey, crypto.SHA1, pk8)
	cases := []struct {
		name    string
		blob    []byte
		uniform bool // the one error of an unusable ciphertext
	}{
		{"kek-lacks-import", blobJSON(string(*notKEK.Key.KID), "CKM_RSA_AES_KEY_WRAP", good), false},
		{"kek-of-another-vault", blobJSON(poolKID, "CKM_RSA_AES_KEY_WRAP", good), false},
		{"kek-expired", blobJSON(expiredKID, "CKM_RSA_AES_KEY_WRAP", expiredCT), false},
		{"kek-disabled", blobJSON(disabledKID, "CKM_RSA_AES_KEY_WRAP", disabledCT), false},
		{"kek-unknown", blobJSON(strings.Replace(kid, "/kek/", "/nope/", 1), "CKM_RSA_AES_KEY_WRAP", good), false},
		{"tampered", blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", flipped), true},
		{"wrong-oaep-hash", blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", sha256CT), true},
		{"truncated", blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", good[:len(good)-8]), true},
		{"truncated-in-rsa", blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", good[:200]), true},
		{"wrong-kek", blobJSON(notKEKID, "CKM_RSA_AES_KEY_WRAP", good), true},
		{"not-for-this-kek", blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", otherCT), true},
		{"sha256-unoffered", blobJSON(kid, "RSA_AES_KEY_WRAP_256", sha256CT), false},
		{"enc-unknown", blobJSON(kid, "RSA_AES_KEY_WRAP_512", good), false},
		{"not-json", []byte("not a blob"), false},
		{"alg", bytes.Replace(blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", good), []byte(`"dir"`), []byte(`"RSA-OAEP"`), 1), false},
	}
	var uniform []byte
	for _, tc := range cases {
		_, err := c.ImportKey(ctx, "victim", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), T: tc.blob}}, nil)
		if tc.name == "sha256-unoffered" && err == nil {
			// A token that unwraps OAEP-256 takes it; SoftHSM2 2.6.1 does not.
			if _, derr := c.DeleteKey(ctx, "victim", nil); derr != nil {
				t.Fatal(derr)
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: ImportKey succeeded", tc.name)
		}
		wantCode(t, err, 400, "BadParameter")
		if tc.uniform {
			b := errorBody(t, err)
			if uniform == nil {
				uniform = b
			} else if !bytes.Equal(b, uniform) {
				t.Errorf("%s answered %s; want the same as the other ciphertext failures: %s", tc.name, b, uniform)
			}
		}
		if _, err := c.GetKey(ctx, "victim", "", nil); err == nil {
			t.Fatalf("%s: a key was imported", tc.name)
		} else {
			wantCode(t, err, 404, "KeyNotFound")
		}
	}
	if uniform == nil {
		t.Fatal("no ciphertext failure was checked")
	}
	t.Logf("ciphertext failures answer: %s", uniform)
}
