package secdomain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/sdblob"
)

// v1Fixture is a security domain of format coffer-sd/1 made before the Azure format
// (testdata/v1/README.md): the blob, its custodians' keys and its domain key.
func v1Fixture(t testing.TB) (blob string, keys []*rsa.PrivateKey, domainKey []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/v1/security-domain.json")
	if err != nil {
		t.Fatal(err)
	}
	var ans struct{ Value string }
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0", "1", "2"} {
		p, _ := os.ReadFile("testdata/v1/custodian" + n + ".key")
		blk, _ := pem.Decode(p)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(*rsa.PrivateKey))
	}
	h, _ := os.ReadFile("testdata/v1/domain-key.hex")
	if domainKey, err = hex.DecodeString(strings.TrimSpace(string(h))); err != nil {
		t.Fatal(err)
	}
	return ans.Value, keys, domainKey
}

// uploadV1 makes the coffer-sd-upload/1 body of blob with the shares of holders, as
// `coffer hsm sd upload` does for such a blob, wrapped to the transfer key pub.
func uploadV1(t testing.TB, blob string, pub *rsa.PublicKey, holders ...*rsa.PrivateKey) string {
	t.Helper()
	b, err := sdblob.ParseBlob(blob)
	if err != nil {
		t.Fatalf("ParseBlob = %v", err)
	}
	var shares [][]byte
	for _, h := range holders {
		sh, err := sdblob.DecryptShare(b, h)
		if err != nil {
			t.Fatalf("DecryptShare = %v", err)
		}
		shares = append(shares, sh)
	}
	up, err := sdblob.BuildUpload(blob, pub, shares)
	if err != nil {
		t.Fatalf("BuildUpload = %v", err)
	}
	return up
}

// TestV1SecurityDomainStillRestores: a security domain downloaded in Coffer's first format
// restores into a new pool (upload of format coffer-sd-upload/1) with exactly its domain
// key; one share, a changed quorum or check, and shares wrapped to another key are refused.
func TestV1SecurityDomainStillRestores(t *testing.T) {
	ctx := context.Background()
	s := newService()
	blob, keys, dk := v1Fixture(t)
	b := pool("b")
	tk, err := s.TransferKey(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tk.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	var tampered sdblob.Blob
	json.Unmarshal([]byte(blob), &tampered)
	tampered.Required = 3
	raised, _ := json.Marshal(tampered)
	json.Unmarshal([]byte(blob), &tampered)
	mac, _ := base64.RawURLEncoding.DecodeString(tampered.Check)
	mac[0] ^= 1
	tampered.Check = base64.RawURLEncoding.EncodeToString(mac)
	flipped, _ := json.Marshal(tampered)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)

	for _, tc := range []struct{ name, text string }{
		{"fail/one-share", uploadV1(t, blob, pub, keys[1])},
		{"fail/quorum-changed", uploadV1(t, string(raised), pub, keys[0], keys[1], keys[2])},
		{"fail/check-flipped", uploadV1(t, string(flipped), pub, keys[0], keys[1])},
		{"fail/other-transfer-key", uploadV1(t, blob, &other.PublicKey, keys[0], keys[1])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Upload(ctx, b, tc.text); !errors.Is(err, ErrBadParameter) {
				t.Errorf("Upload = %v; want ErrBadParameter", err)
			}
		})
	}
	if ok, _ := s.Active(ctx, b); ok {
		t.Fatal("pool active after refused uploads")
	}
	if err := s.Upload(ctx, b, uploadV1(t, blob, pub, keys[2], keys[0])); err != nil {
		t.Fatalf("Upload(v1, 2 shares) = %v", err)
	}
	want, _ := sdblob.DeriveKey(dk, "key-backup")
	if got, err := s.BackupKey(ctx, b); err != nil || !bytes.Equal(got, want) {
		t.Errorf("BackupKey after the v1 upload = %x, %v; want the fixture's domain's", got, err)
	}
}
