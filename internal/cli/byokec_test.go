package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/keywrap"
)

// TestBYOKCommandEC: for an EC key, `coffer byok` prints the public point the import needs,
// and with --jwk writes the whole import key (kty, crv, x, y, key_hsm) whose blob holds the
// key's PKCS #8.
func TestBYOKCommandEC(t *testing.T) {
	dir := t.TempDir()
	kek, _ := rsa.GenerateKey(rand.Reader, 2048)
	target, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(target)
	keyFile := filepath.Join(dir, "ec.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600)
	kekFile := filepath.Join(dir, "kek.json")
	os.WriteFile(kekFile, kekBundle(kek), 0o600)
	pt, _ := target.PublicKey.Bytes()
	x, y := base64.RawURLEncoding.EncodeToString(pt[1:49]), base64.RawURLEncoding.EncodeToString(pt[49:])

	code, stdout, stderr := run(t, "", "byok", "--key", keyFile, "--kek", kekFile)
	if code != 0 || !strings.Contains(stderr, "kty EC-HSM (crv P-384)") || !strings.Contains(stderr, `"x":"`+x+`","y":"`+y+`"`) {
		t.Fatalf("coffer byok (EC) = %d, %q", code, stderr)
	}
	code, stdout, stderr = run(t, "", "byok", "--key", keyFile, "--kek", kekFile, "--jwk")
	if code != 0 || !strings.Contains(stderr, "request's key") {
		t.Fatalf("coffer byok --jwk = %d, %q", code, stderr)
	}
	var ik byok.ImportKey
	if err := json.Unmarshal([]byte(stdout), &ik); err != nil {
		t.Fatalf("--jwk output %q: %v", stdout, err)
	}
	if ik.Kty != "EC-HSM" || ik.Crv != "P-384" || ik.X != x || ik.Y != y {
		t.Errorf("--jwk key = %+v; want EC-HSM P-384 with the key's x, y", ik)
	}
	if strings.Contains(stdout, `"d"`) {
		t.Errorf("--jwk output carries d: %s", stdout)
	}
	blobJSON, _ := base64.RawURLEncoding.DecodeString(ik.KeyHSM)
	var blob byok.Blob
	if err := json.Unmarshal(blobJSON, &blob); err != nil || blob.Header.KID != testKID {
		t.Fatalf("key_hsm = %q, %v", blobJSON, err)
	}
	ct, _ := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
	eph, err := rsa.DecryptOAEP(sha1.New(), nil, kek, ct[:256], nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keywrap.UnwrapPad(eph, ct[256:])
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	if err != nil || !bytes.Equal(got, pk8) {
		t.Errorf("key_hsm does not hold the key's PKCS #8: %v", err)
	}
}

// testKID is the kid of the KEK in kekBundle.
const testKID = "https://vault1.coffer.test/keys/kek/0123456789abcdef0123456789abcdef"

// kekBundle is the JSON of kek as GetKey returns it, with kid testKID.
func kekBundle(kek *rsa.PrivateKey) []byte {
	b, _ := json.Marshal(map[string]any{"key": map[string]string{"kid": testKID, "kty": "RSA-HSM",
		"n": base64.RawURLEncoding.EncodeToString(kek.N.Bytes()), "e": "AQAB"}})
	return b
}
