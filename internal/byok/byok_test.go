package byok

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"

	"github.com/coffer-kms/coffer/internal/keywrap"
)

// TestBuild: the blob is the documented JSON, and its ciphertext opens with the KEK's
// private key (OAEP of the declared hash) and RFC 5649 to exactly the target.
func TestBuild(t *testing.T) {
	kek, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	target := []byte("0123456789abcdef0123456789abcdef")
	b, err := Build(&kek.PublicKey, "https://v.example/keys/kek/1", "CKM_RSA_AES_KEY_WRAP", target, "test")
	if err != nil {
		t.Fatal(err)
	}
	var blob Blob
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&blob); err != nil {
		t.Fatal(err)
	}
	if blob.SchemaVersion != "1.0.0" || blob.Header != (Header{KID: "https://v.example/keys/kek/1", Alg: "dir", Enc: "CKM_RSA_AES_KEY_WRAP"}) || blob.Generator != "test" {
		t.Errorf("blob = %+v", blob)
	}
	ct, err := base64.RawURLEncoding.Strict().DecodeString(blob.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	eph, err := rsa.DecryptOAEP(sha1.New(), nil, kek, ct[:256], nil)
	if err != nil || len(eph) != 32 {
		t.Fatalf("OAEP(SHA-1) part: %d bytes, %v", len(eph), err)
	}
	pt, err := keywrap.UnwrapPad(eph, ct[256:])
	if err != nil || !bytes.Equal(pt, target) {
		t.Errorf("KWP part = %x, %v", pt, err)
	}
	if bytes.Contains(b, target) {
		t.Errorf("the blob contains the target in clear")
	}
	// Two blobs of one key differ (fresh ephemeral key and OAEP seed).
	b2, _ := Build(&kek.PublicKey, "k", "CKM_RSA_AES_KEY_WRAP", target, "")
	if bytes.Equal(b, b2) {
		t.Errorf("two blobs are equal")
	}
	for name, f := range map[string]func() ([]byte, error){
		"enc":     func() ([]byte, error) { return Build(&kek.PublicKey, "k", "RSA-OAEP", target, "") },
		"no-kid":  func() ([]byte, error) { return Build(&kek.PublicKey, "", "CKM_RSA_AES_KEY_WRAP", target, "") },
		"empty":   func() ([]byte, error) { return Build(&kek.PublicKey, "k", "CKM_RSA_AES_KEY_WRAP", nil, "") },
		"nil-kek": func() ([]byte, error) { return Build(nil, "k", "CKM_RSA_AES_KEY_WRAP", target, "") },
		"weak-kek": func() ([]byte, error) {
			return Ciphertext(&rsa.PublicKey{N: new(big.Int).Rsh(kek.N, 1100), E: 65537}, crypto.SHA1, target)
		},
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTargetAndKEKFiles(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(rk)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	for name, tc := range map[string]struct {
		pem      []byte
		kty, crv string
	}{
		"pkcs8": {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}), "RSA-HSM", ""},
		"pkcs1": {pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), "RSA-HSM", ""},
		"sec1":  {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "EC-HSM", "P-384"},
	} {
		der, kty, crv, err := TargetFromPEM(tc.pem)
		if err != nil || kty != tc.kty || crv != tc.crv {
			t.Errorf("TargetFromPEM(%s) = %s %s, %v", name, kty, crv, err)
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
			t.Errorf("TargetFromPEM(%s) is not PKCS #8: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"not-pem":   []byte("raw"),
		"encrypted": pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"garbage":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}),
	} {
		if _, _, _, err := TargetFromPEM(in); err == nil {
			t.Errorf("TargetFromPEM(%s) succeeded", name)
		}
	}
	spki, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	bundle, _ := json.Marshal(map[string]any{"key": map[string]string{"kid": "https://v/keys/kek/1", "kty": "RSA-HSM",
		"n": base64.RawURLEncoding.EncodeToString(rk.N.Bytes()), "e": "AQAB"}})
	for name, in := range map[string][]byte{
		"spki":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		"pkcs1":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}),
		"bundle": bundle,
	} {
		pub, kid, err := KEKFromPEMOrJWK(in)
		if err != nil || !pub.Equal(&rk.PublicKey) || (name == "bundle") != (kid == "https://v/keys/kek/1") {
			t.Errorf("KEKFromPEMOrJWK(%s) = %v, %q, %v", name, pub != nil, kid, err)
		}
	}
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	for name, in := range map[string][]byte{
		"ec":       pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecSPKI}),
		"no-n":     []byte(`{"kty":"RSA","e":"AQAB"}`),
		"bad-b64":  []byte(`{"kty":"RSA","n":"a+b/","e":"AQAB"}`),
		"not-json": []byte(`nope`),
	} {
		if _, _, err := KEKFromPEMOrJWK(in); err == nil {
			t.Errorf("KEKFromPEMOrJWK(%s) succeeded", name)
		}
	}
}
