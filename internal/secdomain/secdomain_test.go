package secdomain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

var (
	custodianOnce sync.Once
	custodians    []*rsa.PrivateKey
)

// testCustodians are four RSA-2048 custodian keys, made once per test binary.
func testCustodians(t *testing.T) []*rsa.PrivateKey {
	t.Helper()
	custodianOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			custodians = append(custodians, k)
		}
	})
	return custodians
}

func jwks(keys ...*rsa.PrivateKey) []sdblob.JWK {
	var out []sdblob.JWK
	for _, k := range keys {
		j := sdblob.PublicJWK(&k.PublicKey)
		j.Kid = ""
		out = append(out, j)
	}
	return out
}

func pool(name string) tenancy.Vault {
	return tenancy.Vault{Kind: tenancy.KindManagedHSM, TenantID: "00000000-0000-4000-8000-000000000001", Name: name}
}

func newService() *Service {
	s := New(mem.New(), nil)
	s.TransferKeyBits = 2048
	return s
}

// restore runs the custodians' side of an upload into p with the shares of holders.
func restore(t *testing.T, s *Service, p tenancy.Vault, blob string, holders ...*rsa.PrivateKey) error {
	t.Helper()
	tk, err := s.TransferKey(context.Background(), p)
	if err != nil {
		t.Fatalf("TransferKey = %v", err)
	}
	pub, err := tk.PublicKey()
	if err != nil {
		t.Fatalf("transfer key: %v", err)
	}
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
	return s.Upload(context.Background(), p, up)
}

func TestDownloadThenRestoreWithQuorum(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	a, b := pool("a"), pool("b")
	if ok, err := s.Active(ctx, a); ok || err != nil {
		t.Fatalf("Active(new pool) = %v, %v; want false", ok, err)
	}
	if _, err := s.BackupKey(ctx, a); !errors.Is(err, ErrNotActivated) {
		t.Fatalf("BackupKey(inactive) = %v; want ErrNotActivated", err)
	}
	blob, err := s.Download(ctx, a, jwks(c[0], c[1], c[2]), 2)
	if err != nil {
		t.Fatalf("Download = %v", err)
	}
	if ok, _ := s.Active(ctx, a); !ok {
		t.Fatal("pool not active after download")
	}
	if st, _ := s.DownloadStatus(ctx, a); st.Status != StatusSuccess {
		t.Errorf("DownloadStatus = %+v", st)
	}
	keyA, err := s.BackupKey(ctx, a)
	if err != nil {
		t.Fatal(err)
	}

	// One share is not a quorum: refused, the pool stays inactive.
	if err := restore(t, s, b, blob, c[1]); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("Upload(1 share) = %v; want ErrBadParameter", err)
	}
	// Two copies of the same share are not a quorum either.
	if err := restore(t, s, b, blob, c[1], c[1]); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("Upload(same share twice) = %v; want ErrBadParameter", err)
	}
	if ok, _ := s.Active(ctx, b); ok {
		t.Fatal("pool b active after failed uploads")
	}
	// Two distinct shares restore the same domain.
	if err := restore(t, s, b, blob, c[2], c[0]); err != nil {
		t.Fatalf("Upload(2 shares) = %v", err)
	}
	if ok, _ := s.Active(ctx, b); !ok {
		t.Fatal("pool b not active after upload")
	}
	keyB, err := s.BackupKey(ctx, b)
	if err != nil || !bytes.Equal(keyA, keyB) {
		t.Fatalf("BackupKey(b) = %x, %v; want pool a's", keyB, err)
	}
	// An active pool takes no upload and publishes no transfer key.
	if _, err := s.TransferKey(ctx, b); !errors.Is(err, ErrActivated) {
		t.Errorf("TransferKey(active) = %v; want ErrActivated", err)
	}
	// A re-download of an active pool keeps the domain.
	if _, err := s.Download(ctx, a, jwks(c[1], c[2], c[3]), 3); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.BackupKey(ctx, a); !bytes.Equal(k, keyA) {
		t.Error("a re-download changed the domain key")
	}
	// Another pool's own domain is another key.
	other := pool("c")
	if _, err := s.Download(ctx, other, jwks(c[0], c[1], c[2]), 2); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.BackupKey(ctx, other); bytes.Equal(k, keyA) {
		t.Error("two downloads made the same domain key")
	}
}

func TestDownloadRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	noKty := jwks(c[0], c[1], c[2])
	noKty[1].Kty = "EC"
	badN := jwks(c[0], c[1], c[2])
	badN[2].N = "+/+/"
	padded := jwks(c[0], c[1], c[2])
	padded[0].E = "AQAB=="
	noKey := jwks(c[0], c[1], c[2])
	noKey[0].N, noKey[0].E = "", ""
	badX5c := jwks(c[0], c[1], c[2])
	badX5c[0].X5c = []string{"bm90IGEgY2VydA=="}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	longKid := jwks(c[0], c[1], c[2])
	longKid[0].Kid = strings.Repeat("k", sdblob.MaxKidLen+1)
	for _, tc := range []struct {
		name     string
		certs    []sdblob.JWK
		required int
	}{
		{"fail/two-keys", jwks(c[0], c[1]), 2},
		{"fail/eleven-keys", jwks(c[0], c[1], c[2], c[3], c[0], c[1], c[2], c[3], c[0], c[1], c[2]), 2},
		{"fail/quorum-above-keys", jwks(c[0], c[1], c[2]), 4},
		{"fail/quorum-one", jwks(c[0], c[1], c[2]), 1},
		{"fail/repeated-key", jwks(c[0], c[1], c[1]), 2},
		{"fail/not-rsa", noKty, 2},
		{"fail/bad-base64", badN, 2},
		{"fail/padded-base64", padded, 2},
		{"fail/no-key", noKey, 2},
		{"fail/bad-x5c", badX5c, 2},
		{"fail/rsa-1024", jwks(c[0], c[1], small), 2},
		{"fail/long-kid", longKid, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Download(ctx, pool("p"), tc.certs, tc.required); !errors.Is(err, ErrBadParameter) {
				t.Errorf("Download = %v; want ErrBadParameter", err)
			}
			if ok, _ := s.Active(ctx, pool("p")); ok {
				t.Error("a refused download activated the pool")
			}
		})
	}
}

func TestUploadRefusesTamperedBlob(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	blob, err := s.Download(ctx, pool("a"), jwks(c[0], c[1], c[2]), 2)
	if err != nil {
		t.Fatal(err)
	}
	var b sdblob.Blob
	json.Unmarshal([]byte(blob), &b)
	// A changed quorum: the shares are right, but the MAC covers the quorum.
	b.Required = 3
	raised, _ := json.Marshal(b)
	if err := restore(t, s, pool("b"), string(raised), c[0], c[1], c[2]); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Upload(quorum changed) = %v; want ErrBadParameter", err)
	}
	// A flipped bit in the check value.
	json.Unmarshal([]byte(blob), &b)
	mac, _ := base64.RawURLEncoding.DecodeString(b.Check)
	mac[0] ^= 1
	b.Check = base64.RawURLEncoding.EncodeToString(mac)
	flipped, _ := json.Marshal(b)
	if err := restore(t, s, pool("b"), string(flipped), c[0], c[1]); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Upload(check flipped) = %v; want ErrBadParameter", err)
	}
	if ok, _ := s.Active(ctx, pool("b")); ok {
		t.Fatal("pool b active after tampered uploads")
	}
	// Garbage and oversized uploads.
	for _, text := range []string{"", "{}", `{"format":"coffer-sd-upload/1"}`, strings.Repeat("a", sdblob.MaxLen+1)} {
		if err := s.Upload(ctx, pool("b"), text); !errors.Is(err, ErrBadParameter) {
			t.Errorf("Upload(%.20q) = %v; want ErrBadParameter", text, err)
		}
	}
	// Shares wrapped to another key than the pool's transfer key.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	bb, _ := sdblob.ParseBlob(blob)
	s0, _ := sdblob.DecryptShare(bb, c[0])
	s1, _ := sdblob.DecryptShare(bb, c[1])
	up, _ := sdblob.BuildUpload(blob, &other.PublicKey, [][]byte{s0, s1})
	if _, err := s.TransferKey(ctx, pool("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, pool("b"), up); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Upload(wrong transfer key) = %v; want ErrBadParameter", err)
	}
}
