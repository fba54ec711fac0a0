package byok

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"testing"
)

// TestNewImportKey: an EC target's import key carries crv and its point, other targets
// none; an EC-HSM kty with a target that is not an EC key fails.
func TestNewImportKey(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		pk8, _ := x509.MarshalPKCS8PrivateKey(k)
		ik, err := NewImportKey([]byte("{}"), "EC-HSM", pk8)
		x, _ := base64.RawURLEncoding.DecodeString(ik.X)
		y, _ := base64.RawURLEncoding.DecodeString(ik.Y)
		pt, _ := k.PublicKey.Bytes()
		if err != nil || ik.Crv != c.Params().Name || string(append(append([]byte{4}, x...), y...)) != string(pt) || ik.KeyHSM != "e30" {
			t.Errorf("NewImportKey(%s) = %+v, %v", c.Params().Name, ik, err)
		}
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pk8, _ := x509.MarshalPKCS8PrivateKey(rk)
	if ik, err := NewImportKey([]byte("{}"), "RSA-HSM", pk8); err != nil || ik.Crv+ik.X+ik.Y != "" || ik.Kty != "RSA-HSM" {
		t.Errorf("NewImportKey(RSA) = %+v, %v", ik, err)
	}
	if _, err := NewImportKey([]byte("{}"), "EC-HSM", pk8); err == nil {
		t.Error("NewImportKey(EC-HSM, an RSA key) succeeded")
	}
}
