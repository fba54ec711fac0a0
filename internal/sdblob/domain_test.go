package sdblob

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

func TestDomainRecord(t *testing.T) {
	key := bytes.Repeat([]byte{7}, DomainKeyLen)
	d := Domain{ID: "9ea0af3a-29bf-44cb-bda9-2f27c2783100", Key: key, Required: 3}
	b, err := d.Marshal()
	if err != nil || string(b) != `{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","required":3}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	got, err := ParseDomain(b)
	if err != nil || got.ID != d.ID || !bytes.Equal(got.Key, key) || got.Required != 3 {
		t.Fatalf("ParseDomain = %+v, %v", got, err)
	}
	for _, bad := range []string{
		``, `{}`, `garbage`,
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcH","required":3}`,
		`{"domain_id":"not-a-uuid","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","required":3}`,
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","required":1}`,
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","required":3}`,
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","required":3,"x":1}`,
		// encoding/base64 skips CR/LF even in Strict mode (SECURITY-NOTES I6).
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcH\r\nBwcHBwcHBwcHBwcHBwc","required":3}`,
		`{"domain_id":"9ea0af3a-29bf-44cb-bda9-2f27c2783100","domain_key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","required":3} {}`,
	} {
		if _, err := ParseDomain([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDomain(%.50q) = %v; want ErrInvalid", bad, err)
		}
	}
	if _, err := (&Domain{ID: d.ID, Key: key[:31]}).Marshal(); err == nil {
		t.Error("Marshal(31-byte key) = nil error")
	}
}

func TestCertThumbprintAndTransferJWK(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	x5c := selfSigned(t, k)
	der, _ := base64.StdEncoding.DecodeString(x5c)
	sum := sha256.Sum256(der)
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	j := PublicJWK(&k.PublicKey)
	if _, err := j.CertThumbprint(); !errors.Is(err, ErrInvalid) {
		t.Errorf("CertThumbprint(no x5c) = %v; want ErrInvalid", err)
	}
	j.X5c = []string{x5c}
	if got, err := j.CertThumbprint(); err != nil || got != want {
		t.Errorf("CertThumbprint = %s, %v; want %s", got, err, want)
	}
	other := "A" // a thumbprint one character off (want may itself end in A: 1 run in 64 failed)
	if want[len(want)-1] == 'A' {
		other = "B"
	}
	j.X5tS256 = want[:len(want)-1] + other
	if _, err := j.CertThumbprint(); !errors.Is(err, ErrInvalid) {
		t.Errorf("CertThumbprint(x5t#S256 of another certificate) = %v; want ErrInvalid", err)
	}
	tj := TransferJWK(&k.PublicKey, der)
	cert, err := tj.Certificate()
	if err != nil || !bytes.Equal(cert.Raw, der) || tj.X5tS256 != want || tj.Kid != Thumbprint(&k.PublicKey) {
		t.Errorf("TransferJWK = %+v; Certificate() = %v", tj, err)
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tj.N = PublicJWK(&otherKey.PublicKey).N
	if _, err := tj.Certificate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Certificate(n of another key) = %v; want ErrInvalid", err)
	}
}
