package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/storage"
)

// TestHSMKeyBytesNeverLeave (issue 6): keys brought in with BYOK are known to the test, so
// their private bytes can be searched for. After importing an RSA and an AES key into the
// token, using them and listing them, no encoding of their secret parts appears in the
// storage file, the audit log, or any response the test received.
func TestHSMKeyBytesNeverLeave(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := keysClient(t, ts)
	kek, kid := createKEK(t, c, "leak-kek")

	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "test")
	if err != nil {
		t.Fatal(err)
	}
	var answers [][]byte
	keep := keeper(t, &answers)
	r1, err := c.ImportKey(ctx, "leak-rsa", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), T: blob}}, nil)
	keep(r1, err)
	aesKey := make([]byte, 32)
	_, _ = rand.Read(aesKey)
	blob, _ = byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", aesKey, "test")
	r2, err := c.ImportKey(ctx, "leak-aes", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOctHSM), T: blob}}, nil)
	keep(r2, err)
	digest := make([]byte, 32)
	r3, err := c.Sign(ctx, "leak-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest}, nil)
	keep(r3, err)
	r4, err := c.GetKey(ctx, "leak-rsa", "", nil)
	keep(r4, err)
	r5, err := c.GetKey(ctx, "leak-aes", "", nil)
	keep(r5, err)
	r6, err := c.Encrypt(ctx, "leak-aes", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: []byte("x")}, nil)
	keep(r6, err)

	// A software key imported with known material is the control: its private exponent
	// must be found among the decrypted records, or the search proves nothing.
	soft, _ := rsa.GenerateKey(rand.Reader, 2048)
	soft.Precompute()
	jwk := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: soft.N.Bytes(), E: []byte{1, 0, 1}, D: soft.D.Bytes(),
		P: soft.Primes[0].Bytes(), Q: soft.Primes[1].Bytes(), DP: soft.Precomputed.Dp.Bytes(), DQ: soft.Precomputed.Dq.Bytes(), QI: soft.Precomputed.Qinv.Bytes()}
	if _, err := c.ImportKey(ctx, "control-soft", azkeys.ImportKeyParameters{Key: jwk}, nil); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{"RSA d": target.D.Bytes(), "RSA p": target.Primes[0].Bytes(), "RSA q": target.Primes[1].Bytes(), "AES key": aesKey, "PKCS#8": pk8[len(pk8)-64:]}
	wantNoLeak(t, ts, soft, secrets, answers)
}

// wantNoLeak checks that no encoding of secrets appears in the storage file, the audit
// log, the decrypted records, any managed HSM full backup file, or answers. control is a
// software key imported with known material: its private exponent must be found among the
// decrypted records, or the search would prove nothing.
func wantNoLeak(t *testing.T, ts *testServer, control *rsa.PrivateKey, secrets map[string][]byte, answers [][]byte) {
	t.Helper()
	ctx := context.Background()
	var records []byte
	opts := storage.ListOptions{}
	for {
		page, err := ts.barrier.List(ctx, "", opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			v, err := ts.barrier.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			records = append(append(records, expand(v, 3)...), '\n')
		}
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	if !bytes.Contains(records, control.D.Bytes()[:24]) {
		t.Fatal("control: the software key's material is not found among the decrypted records; the search below would prove nothing")
	}

	files := map[string][]byte{}
	_ = filepath.WalkDir(filepath.Join(ts.cfg.DataDir, "hsm-backups"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read %s: %v", path, err)
			}
			files[path] = b
		}
		return nil
	})
	for _, name := range []string{"coffer.db", AuditFile} {
		b, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		files[name] = b
	}
	files["decrypted records"] = records
	for i, a := range answers {
		files[fmt.Sprintf("response %d", i+1)] = a
	}
	for what, secret := range secrets {
		forms := [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret))}
		for where, content := range files {
			for _, f := range forms {
				probe := f
				if len(probe) > 24 {
					probe = probe[:24] // a prefix is enough, and survives a different padding
				}
				if bytes.Contains(content, probe) {
					t.Errorf("%s found in %s", what, where)
				}
			}
		}
	}
}

// keeper returns a function that fails the test on err and otherwise appends v, as JSON,
// to answers (the responses wantNoLeak searches).
func keeper(t *testing.T, answers *[][]byte) func(v any, err error) {
	return func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		*answers = append(*answers, b)
	}
}

var quoted = regexp.MustCompile(`"([A-Za-z0-9+/_=-]{16,})"`)

// expand appends to b the base64 decodings (standard or URL, padded or not) of every JSON
// string in it that decodes, recursively depth times: records keep key handles as base64
// of JSON that holds base64 again.
func expand(b []byte, depth int) []byte {
	out := append([]byte(nil), b...)
	if depth == 0 {
		return out
	}
	for _, m := range quoted.FindAllSubmatch(b, -1) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if d, err := enc.DecodeString(string(m[1])); err == nil {
				out = append(append(out, '\n'), expand(d, depth-1)...)
				break
			}
		}
	}
	return out
}
