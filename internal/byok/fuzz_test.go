package byok

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"
)

// FuzzTargetFromPEM: whatever key file TargetFromPEM accepts, it returns as PKCS #8 DER that
// reads back (as a PEM PRIVATE KEY) to the same DER, kty and curve, and NewImportKey takes.
func FuzzTargetFromPEM(f *testing.F) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(ek)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		der, kty, crv, err := TargetFromPEM(b)
		if err != nil {
			if der != nil || kty != "" || crv != "" {
				t.Fatalf("TargetFromPEM returned values with error %v", err)
			}
			return
		}
		der2, kty2, crv2, err := TargetFromPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err != nil || !bytes.Equal(der2, der) || kty2 != kty || crv2 != crv {
			t.Fatalf("TargetFromPEM of its own output = %s %s, %v; want the same DER, %s %s", kty2, crv2, err, kty, crv)
		}
		if kty != "RSA-HSM" && kty != "EC-HSM" || (kty == "EC-HSM") != (crv != "") {
			t.Fatalf("TargetFromPEM kty %q crv %q", kty, crv)
		}
		if _, err := NewImportKey([]byte("blob"), kty, der); err != nil {
			t.Fatalf("NewImportKey of an accepted target = %v", err)
		}
	})
}

// FuzzKEKFromPEMOrJWK: a KEK file may come from anywhere (a copy of a key bundle). Whatever
// KEKFromPEMOrJWK accepts, Ciphertext wraps under only if it is an RSA key Key Vault could
// hold (at least 2048 bits, an odd public exponent of at least 3), and then the wrapped key
// opens with nothing but that key's private half (checked for a seed's key).
func FuzzKEKFromPEMOrJWK(f *testing.F) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	n := base64.RawURLEncoding.EncodeToString(rk.N.Bytes())
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)}))
	f.Add([]byte(`{"key":{"kid":"https://v/keys/kek/1","kty":"RSA-HSM","n":"` + n + `","e":"AQAB"}}`))
	f.Add([]byte(`{"kid":"https://v/keys/kek/1","kty":"RSA","n":"` + n + `","e":"AQ"}`))
	f.Add([]byte(`{"kty":"RSA","n":"` + n + `","e":"/////w"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, _, err := KEKFromPEMOrJWK(b)
		if err != nil {
			if pub != nil {
				t.Fatalf("KEKFromPEMOrJWK returned a key with error %v", err)
			}
			return
		}
		target := []byte("0123456789abcdef0123456789abcdef")
		ct, err := Ciphertext(pub, crypto.SHA256, target)
		if err != nil {
			return
		}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			t.Fatalf("Ciphertext wrapped a key under an RSA key of %d bits with e=%d", pub.N.BitLen(), pub.E)
		}
		if pub.Equal(&rk.PublicKey) {
			if got, err := Open(rk, crypto.SHA256, ct); err != nil || !bytes.Equal(got, target) {
				t.Fatalf("Open of the wrapped target = %v", err)
			}
		}
	})
}
