package cli

import (
	"bytes"
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

// TestBYOKCommand runs `coffer byok` on a PEM target and on a raw AES key with the KEK as
// the vault returns it (JSON with kid) and as PEM, and opens the blobs with the KEK.
func TestBYOKCommand(t *testing.T) {
	dir := t.TempDir()
	kek, _ := rsa.GenerateKey(rand.Reader, 2048)
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kid := testKID
	kekJSON := kekBundle(kek)
	spki, _ := x509.MarshalPKIXPublicKey(&kek.PublicKey)
	kekFile := write("kek.json", kekJSON)
	kekPEM := write("kek.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	keyFile := write("target.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(target)}))
	aesFile := write("aes.bin", bytes.Repeat([]byte{7}, 32))

	open := func(blobJSON []byte) []byte {
		t.Helper()
		var blob byok.Blob
		if err := json.Unmarshal(blobJSON, &blob); err != nil {
			t.Fatalf("blob %q: %v", blobJSON, err)
		}
		if blob.Header.KID != kid || blob.Header.Enc != "CKM_RSA_AES_KEY_WRAP" || !strings.HasPrefix(blob.Generator, "coffer byok") {
			t.Errorf("blob header = %+v, generator %q", blob.Header, blob.Generator)
		}
		ct, _ := base64.RawURLEncoding.DecodeString(blob.Ciphertext)
		eph, err := rsa.DecryptOAEP(sha1.New(), nil, kek, ct[:256], nil)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := keywrap.UnwrapPad(eph, ct[256:])
		if err != nil {
			t.Fatal(err)
		}
		return pt
	}

	out := filepath.Join(dir, "target.byok")
	code, stdout, stderr := run(t, "", "byok", "--key", keyFile, "--kek", kekFile, "--out", out)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "kty RSA-HSM") {
		t.Fatalf("coffer byok = %d, %q, %q", code, stdout, stderr)
	}
	blob, _ := os.ReadFile(out)
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("blob file mode = %v; want 0600", fi.Mode().Perm())
	}
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	if got := open(blob); !bytes.Equal(got, pk8) {
		t.Errorf("the blob does not hold the target's PKCS #8")
	}
	code, stdout, stderr = run(t, "", "byok", "--key", aesFile, "--aes", "--kek", kekPEM, "--kek-kid", kid)
	if code != 0 || !strings.Contains(stderr, "kty oct-HSM") {
		t.Fatalf("coffer byok --aes = %d, %q", code, stderr)
	}
	if got := open([]byte(stdout)); !bytes.Equal(got, bytes.Repeat([]byte{7}, 32)) {
		t.Errorf("the AES blob holds %x", got)
	}
	for name, args := range map[string][]string{
		"no-kid-with-pem": {"--key", keyFile, "--kek", kekPEM},
		"aes-size":        {"--key", keyFile, "--aes", "--kek", kekFile},
		"not-a-key":       {"--key", kekPEM, "--kek", kekFile},
		"enc":             {"--key", keyFile, "--kek", kekFile, "--enc", "RSA-OAEP"},
		"missing":         {"--kek", kekFile},
	} {
		if code, stdout, _ := run(t, "", append([]string{"byok"}, args...)...); code == 0 || stdout != "" {
			t.Errorf("coffer byok %s = %d, %q; want a failure and no output", name, code, stdout)
		}
	}
}
