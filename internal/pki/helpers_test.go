package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 31, 12, 30, 45, 500, time.UTC)

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns one of two cached 2048-bit RSA keys (generation is slow).
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 2 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue builds and signs a certificate for p with key, signed by parent/parentKey (nil for
// self-signed).
func issue(t testing.TB, p Profile, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl, err := Template(p, key.Public(), testNow)
	if err != nil {
		t.Fatalf("Template(%+v) = %v", p, err)
	}
	signer := key
	if parent != nil {
		signer = parentKey
	}
	der, err := Issue(tmpl, key.Public(), parent, signer)
	if err != nil {
		t.Fatalf("Issue = %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func leafProfile() Profile {
	return Profile{
		Subject:        "CN=www.example.com, O=Example Org, C=US",
		DNSNames:       []string{"www.example.com", "*.example.com"},
		Emails:         []string{"ops@example.com"},
		UPNs:           []string{"svc@corp.example.com"},
		URIs:           []string{"spiffe://example.com/web"},
		IPAddresses:    []string{"192.0.2.7", "2001:db8::1"},
		KeyUsage:       []string{"digitalSignature", "keyEncipherment"},
		EKUs:           []string{"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.2.3.4.5"},
		ValidityMonths: 13,
	}
}

func caProfile() Profile {
	return Profile{
		Subject:        "CN=Coffer Test CA, O=Coffer",
		KeyUsage:       []string{"keyCertSign", "cRLSign", "digitalSignature"},
		ValidityMonths: 120,
	}
}
