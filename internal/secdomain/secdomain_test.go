package secdomain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/azsd"
	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

var (
	custodianOnce sync.Once
	custodians    []*rsa.PrivateKey
	custodianCert = map[*rsa.PrivateKey][]byte{}
)

// testCustodians are four RSA-2048 custodian keys with self-signed certificates, made once
// per test binary.
func testCustodians(t testing.TB) []*rsa.PrivateKey {
	t.Helper()
	custodianOnce.Do(func() {
		for i := range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			custodians = append(custodians, k)
			custodianCert[k] = selfSigned(k, i)
		}
	})
	return custodians
}

func selfSigned(k *rsa.PrivateKey, i int) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "custodian"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	return der
}

// jwks are the custodian keys as a download names them: n/e and the certificate.
func jwks(keys ...*rsa.PrivateKey) []sdblob.JWK {
	var out []sdblob.JWK
	for _, k := range keys {
		j := sdblob.PublicJWK(&k.PublicKey)
		j.Kid = ""
		if der := custodianCert[k]; der != nil {
			j.X5c = []string{base64.StdEncoding.EncodeToString(der)}
		}
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

// exchangeCert is p's transfer key certificate, as a custodian reads it from TransferKey.
func exchangeCert(t testing.TB, s *Service, p tenancy.Vault) *x509.Certificate {
	t.Helper()
	tk, err := s.TransferKey(context.Background(), p)
	if err != nil {
		t.Fatalf("TransferKey = %v", err)
	}
	cert, err := tk.Certificate()
	if err != nil {
		t.Fatalf("transfer key certificate: %v", err)
	}
	return cert
}

// restoreBlob is what `az keyvault security-domain restore-blob` makes of file for p with
// the keys of holders (azsd.Restore); err is the tool's refusal.
func restoreBlob(t testing.TB, s *Service, p tenancy.Vault, file string, holders ...*rsa.PrivateKey) (string, error) {
	t.Helper()
	f, err := azsd.ParseFile([]byte(file))
	if err != nil {
		t.Fatalf("ParseFile = %v", err)
	}
	var hs []azsd.Holder
	for _, h := range holders {
		hs = append(hs, azsd.Holder{Key: h})
	}
	return azsd.Restore(f, hs, exchangeCert(t, s, p))
}

// restore runs the custodians' side of an upload into p with the keys of holders and
// uploads the result: the error is the tool's or the pool's.
func restore(t *testing.T, s *Service, p tenancy.Vault, file string, holders ...*rsa.PrivateKey) error {
	t.Helper()
	rb, err := restoreBlob(t, s, p, file, holders...)
	if err != nil {
		return err
	}
	return s.Upload(context.Background(), p, rb)
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

	// One share is not a quorum: the restore refuses, the pool stays inactive.
	if err := restore(t, s, b, blob, c[1]); !errors.Is(err, azsd.ErrInvalid) {
		t.Fatalf("restore(1 share) = %v; want azsd.ErrInvalid", err)
	}
	// Two copies of the same share are not a quorum either; nor is a key of no share.
	if err := restore(t, s, b, blob, c[1], c[1]); !errors.Is(err, azsd.ErrInvalid) {
		t.Fatalf("restore(same share twice) = %v; want azsd.ErrInvalid", err)
	}
	if err := restore(t, s, b, blob, c[1], c[3]); !errors.Is(err, azsd.ErrInvalid) {
		t.Fatalf("restore(a share and a stranger) = %v; want azsd.ErrInvalid", err)
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
	noKey[0].N, noKey[0].E, noKey[0].X5c = "", "", nil
	noCert := jwks(c[0], c[1], c[2])
	noCert[1].X5c = nil
	badX5t := jwks(c[0], c[1], c[2])
	badX5t[2].X5tS256 = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
	otherCert := jwks(c[0], c[1], c[2])
	otherCert[0].X5c = jwks(c[3])[0].X5c
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
		{"fail/no-certificate", noCert, 2},
		{"fail/x5t-not-the-certificate", badX5t, 2},
		{"fail/certificate-of-another-key", otherCert, 2},
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

// TestUploadRefusesBadRestoreBlob: a restore blob that was changed, is wrapped to another
// exchange key, or holds no Coffer domain is refused, and the pool stays inactive.
func TestUploadRefusesBadRestoreBlob(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	b := pool("b")
	file, err := s.Download(ctx, pool("a"), jwks(c[0], c[1], c[2]), 2)
	if err != nil {
		t.Fatal(err)
	}
	good, err := restoreBlob(t, s, b, file, c[0], c[1])
	if err != nil {
		t.Fatal(err)
	}
	edit := func(mod func(rb map[string]map[string]any)) string {
		var rb map[string]map[string]any
		json.Unmarshal([]byte(good), &rb)
		mod(rb)
		out, _ := json.Marshal(rb)
		return string(out)
	}
	flip := func(s string) string {
		b := []byte(s)
		i := strings.LastIndexByte(s, '.') - 5
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// Data that are not a Coffer domain, under a valid wrapping: made as a custodian could.
	custodiansOf := func(keys ...*rsa.PrivateKey) []azsd.Custodian {
		var out []azsd.Custodian
		for _, k := range keys {
			out = append(out, azsd.Custodian{Key: &k.PublicKey, X5tS256: azsd.CertThumbprint(custodianCert[k])})
		}
		return out
	}
	foreign := func(secrets ...azsd.Secret) string {
		f, err := azsd.Make(secrets, custodiansOf(c[0], c[1], c[2]), 2)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := restoreBlob(t, s, b, f, c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		return rb
	}
	otherPool := pool("other")
	wrongExchange, err := restoreBlob(t, s, otherPool, file, c[0], c[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, text string }{
		{"fail/empty", ""},
		{"fail/empty-object", "{}"},
		{"fail/garbage", "garbage"},
		{"fail/oversized", strings.Repeat("a", 64<<10+1)},
		{"fail/v1-empty", `{"format":"coffer-sd-upload/1"}`},
		{"fail/the-security-domain-itself", file},
		{"fail/wrapped-key-changed", edit(func(rb map[string]map[string]any) {
			rb["WrappedKey"]["enc_key"] = flip(rb["WrappedKey"]["enc_key"].(string))
		})},
		{"fail/datum-changed", edit(func(rb map[string]map[string]any) {
			d := rb["EncData"]["data"].([]any)[0].(map[string]any)
			d["compact_jwe"] = flip(d["compact_jwe"].(string))
		})},
		{"fail/tag-changed", edit(func(rb map[string]map[string]any) {
			rb["EncData"]["data"].([]any)[0].(map[string]any)["tag"] = "coffer-sd/3"
		})},
		{"fail/kdf-changed", edit(func(rb map[string]map[string]any) { rb["EncData"]["kdf"] = "hkdf" })},
		{"fail/unknown-member", edit(func(rb map[string]map[string]any) { rb["WrappedKey"]["extra"] = "x" })},
		{"fail/another-exchange-key", wrongExchange},
		{"fail/exchange-thumbprint-swapped", edit(func(rb map[string]map[string]any) {
			var o map[string]map[string]any
			json.Unmarshal([]byte(wrongExchange), &o)
			rb["WrappedKey"]["x5t_256"] = o["WrappedKey"]["x5t_256"]
		})},
		{"fail/not-a-domain", foreign(azsd.Secret{Tag: sdblob.DomainTag, Plaintext: []byte("garbage")})},
		{"fail/domain-key-short", foreign(azsd.Secret{Tag: sdblob.DomainTag, Plaintext: []byte(`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"AAAA","required":2}`)})},
		{"fail/other-tag", foreign(azsd.Secret{Tag: "mhsm-domain", Plaintext: []byte("x")})},
		{"fail/extra-datum", foreign(azsd.Secret{Tag: "mhsm-domain", Plaintext: []byte("x")}, azsd.Secret{Tag: sdblob.DomainTag, Plaintext: []byte("x")})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Upload(ctx, b, tc.text)
			if !errors.Is(err, ErrBadParameter) {
				t.Errorf("Upload = %v; want ErrBadParameter", err)
			}
			if err != nil && strings.Contains(err.Error(), "{") {
				t.Errorf("Upload error %q quotes input", err)
			}
		})
	}
	if ok, _ := s.Active(ctx, b); ok {
		t.Fatal("pool b active after refused uploads")
	}
	// The good one still works: nothing above consumed the transfer key.
	if err := s.Upload(ctx, b, good); err != nil {
		t.Fatalf("Upload(good) = %v", err)
	}
	ka, _ := s.BackupKey(ctx, pool("a"))
	kb, _ := s.BackupKey(ctx, b)
	if !bytes.Equal(ka, kb) {
		t.Error("pool b's domain is not pool a's")
	}
	// Uploading again into the now active pool: ErrActivated.
	if err := s.Upload(ctx, b, good); !errors.Is(err, ErrActivated) {
		t.Errorf("Upload(active pool) = %v; want ErrActivated", err)
	}
}

// TestUploadBeforeTransferKey: a pool that never published a transfer key takes no upload.
func TestUploadBeforeTransferKey(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	file, _ := s.Download(ctx, pool("a"), jwks(c[0], c[1], c[2]), 2)
	other := newService() // the same custodians restore for another installation's pool
	rb, err := restoreBlob(t, other, pool("b"), file, c[0], c[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, pool("b"), rb); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Upload(no transfer key) = %v; want ErrBadParameter", err)
	}
}

// TestTransferKeyWithoutCertificate: a transfer key made before certificates (state without
// transferCert) gets one on the next GET, the same key, and then takes a restore blob.
func TestTransferKeyWithoutCertificate(t *testing.T) {
	ctx := context.Background()
	s := newService()
	c := testCustodians(t)
	b := pool("b")
	file, _ := s.Download(ctx, pool("a"), jwks(c[0], c[1], c[2]), 2)
	tk, err := s.TransferKey(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	p, st, _ := s.read(ctx, b)
	st.TransferCert = nil
	if err := s.write(ctx, p, &st); err != nil {
		t.Fatal(err)
	}
	// A restore blob for the key's new certificate, before the pool stored it: refused.
	f, _ := azsd.ParseFile([]byte(file))
	priv, _ := s.transferKeyForTest(ctx, b)
	der, _ := s.transferCert(b, priv)
	cert, _ := x509.ParseCertificate(der)
	early, err := azsd.Restore(f, []azsd.Holder{{Key: c[0]}, {Key: c[1]}}, cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Upload(ctx, b, early); !errors.Is(err, ErrBadParameter) {
		t.Errorf("Upload(before the certificate exists) = %v; want ErrBadParameter", err)
	}
	tk2, err := s.TransferKey(ctx, b)
	if err != nil || tk2.N != tk.N || len(tk2.X5c) != 1 {
		t.Fatalf("TransferKey after the upgrade = %+v, %v; want the same key with a certificate", tk2, err)
	}
	if err := restore(t, s, b, file, c[2], c[0]); err != nil {
		t.Fatalf("restore = %v", err)
	}
}

func (s *Service) transferKeyForTest(ctx context.Context, v tenancy.Vault) (*rsa.PrivateKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, err := s.transferKey(ctx, v, false)
	return k, err
}
