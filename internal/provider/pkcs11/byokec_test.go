package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// point returns the JWK x and y of k.
func point(t *testing.T, k *ecdsa.PrivateKey) (x, y []byte) {
	t.Helper()
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	n := (len(pt) - 1) / 2
	return pt[1 : 1+n], pt[1+n:]
}

// TestImportTransferEC: EC targets with their public point, or without it (the token works
// it out), land in the token, sign as the original key, and load; a point that is not the
// key's, or half missing, or a curve that is not the key's, is refused with nothing left in
// the token.
func TestImportTransferEC(t *testing.T) {
	p := newToken(t)
	ctx := context.Background()
	kk, err := p.Generate(ctx, provider.KeySpec{Type: provider.RSAHSM, Size: 2048})
	if err != nil {
		t.Fatal(err)
	}
	kek := kk.(*Key).rsa
	for _, tc := range []struct {
		crv   provider.Curve
		curve elliptic.Curve
		alg   string
		hash  crypto.Hash
	}{
		{provider.P256, elliptic.P256(), provider.AlgES256, crypto.SHA256},
		{provider.P384, elliptic.P384(), provider.AlgES384, crypto.SHA384},
		{provider.P521, elliptic.P521(), provider.AlgES512, crypto.SHA512},
	} {
		for _, withPoint := range []bool{true, false} {
			target, _ := ecdsa.GenerateKey(tc.curve, rand.Reader)
			pk8, _ := x509.MarshalPKCS8PrivateKey(target)
			x, y := point(t, target)
			tr := provider.Transfer{KEK: kk.Handle(), Hash: crypto.SHA1, Ciphertext: transferCiphertext(t, kek, sha1.New(), pk8), Type: provider.ECHSM, Curve: tc.crv}
			if withPoint {
				tr.X, tr.Y = x, y
			}
			k, err := p.ImportTransfer(ctx, tr)
			if err != nil {
				t.Fatalf("ImportTransfer(%s, point given: %v) = %v", tc.crv, withPoint, err)
			}
			if k.Type() != provider.ECHSM || k.Curve() != tc.crv || string(k.Public().X) != string(x) || string(k.Public().Y) != string(y) {
				t.Errorf("imported %s key = %s %s; want the target's public key", tc.crv, k.Type(), k.Curve())
			}
			h := tc.hash.New()
			h.Write([]byte("byok ec"))
			digest := h.Sum(nil)
			sig, err := k.Sign(ctx, tc.alg, digest)
			n := len(sig) / 2
			if err != nil || !ecdsa.Verify(&target.PublicKey, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
				t.Errorf("imported %s key's %s signature does not verify under the target key: %v", tc.crv, tc.alg, err)
			}
			checkProtected(t, p, p11.CKO_PRIVATE_KEY, k.(*Key).id, []uint{p11.CKA_VALUE}, false)
			if l, err := p.Load(ctx, k.Handle()); err != nil || l.Curve() != tc.crv {
				t.Errorf("Load(imported %s) = %v", tc.crv, err)
			}
		}
	}

	target, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	x, y := point(t, target)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ox, oy := point(t, other)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	x384, y384 := point(t, p384)
	p384pk8, _ := x509.MarshalPKCS8PrivateKey(p384)
	flippedY := append([]byte(nil), y...)
	flippedY[5] ^= 1
	before := objectCount(t, p)
	for name, tc := range map[string]struct {
		tr   provider.Transfer
		want error
	}{
		"other-key-point":       {provider.Transfer{Curve: provider.P256, X: ox, Y: oy}, errPointMismatch},
		"negated-point":         {provider.Transfer{Curve: provider.P256, X: x, Y: negY(elliptic.P256(), y)}, errPointMismatch},
		"off-curve":             {provider.Transfer{Curve: provider.P256, X: x, Y: flippedY}, provider.ErrInvalidParameter},
		"missing-x":             {provider.Transfer{Curve: provider.P256, Y: y}, provider.ErrInvalidParameter},
		"missing-y":             {provider.Transfer{Curve: provider.P256, X: x}, provider.ErrInvalidParameter},
		"no-point-p384-as-p256": {provider.Transfer{Curve: provider.P256, Ciphertext: p384pk8}, provider.ErrTransfer},
		"no-point-p256-as-p384": {provider.Transfer{Curve: provider.P384}, provider.ErrTransfer},
		"no-point-rsa-key":      {provider.Transfer{Curve: provider.P256, Ciphertext: rsaPK8(t)}, provider.ErrTransfer},
		"no-curve":              {provider.Transfer{X: x, Y: y}, provider.ErrInvalidParameter},
		"p256k":                 {provider.Transfer{Curve: provider.P256K, X: x, Y: y}, provider.ErrInvalidParameter},
		"p384-point-and-crv":    {provider.Transfer{Curve: provider.P384, X: x384, Y: y384}, provider.ErrTransfer},
		"p256-point-as-p384":    {provider.Transfer{Curve: provider.P384, X: x, Y: y}, provider.ErrInvalidParameter},
		"rsa-key-declared-ec":   {provider.Transfer{Curve: provider.P256, X: x, Y: y, Ciphertext: rsaPK8(t)}, provider.ErrTransfer},
	} {
		tr := tc.tr
		tr.KEK, tr.Hash, tr.Type = kk.Handle(), crypto.SHA1, provider.ECHSM
		if tr.Ciphertext == nil {
			tr.Ciphertext = transferCiphertext(t, kek, sha1.New(), pk8)
		} else {
			tr.Ciphertext = transferCiphertext(t, kek, sha1.New(), tr.Ciphertext)
		}
		key, err := p.ImportTransfer(ctx, tr)
		if !errors.Is(err, tc.want) || key != nil {
			t.Errorf("ImportTransfer(%s) = %v, %v; want %v", name, key, err, tc.want)
		}
	}
	if after := objectCount(t, p); after != before {
		t.Errorf("the token holds %d objects after the refused EC imports, %d before", after, before)
	}
}

// negY returns p − y: (x, −y) is on the curve, the negation of the key's point.
func negY(c elliptic.Curve, y []byte) []byte {
	v := new(big.Int).Sub(c.Params().P, new(big.Int).SetBytes(y))
	return v.FillBytes(make([]byte, len(y)))
}

// rsaPK8 is a PKCS #8 RSA key.
func rsaPK8(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := x509.MarshalPKCS8PrivateKey(k)
	return b
}
