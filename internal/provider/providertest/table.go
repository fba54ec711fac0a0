package providertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Key Vault's algorithm table (KEYVAULT-NOTES §1.7.2), kept here independently of any
// provider.

// sigHash is the hash whose digest a signature algorithm signs (0 for HS*/RSNULL, which
// take no fixed digest here).
var sigHash = map[string]crypto.Hash{
	provider.AlgRS256: crypto.SHA256, provider.AlgRS384: crypto.SHA384, provider.AlgRS512: crypto.SHA512,
	provider.AlgPS256: crypto.SHA256, provider.AlgPS384: crypto.SHA384, provider.AlgPS512: crypto.SHA512,
	provider.AlgES256: crypto.SHA256, provider.AlgES384: crypto.SHA384, provider.AlgES512: crypto.SHA512,
	provider.AlgES256K: crypto.SHA256,
}

// curveAlg is the one ECDSA algorithm Key Vault pairs with each curve.
var curveAlg = map[provider.Curve]string{
	provider.P256: provider.AlgES256, provider.P384: provider.AlgES384,
	provider.P521: provider.AlgES512, provider.P256K: provider.AlgES256K,
}

// curveBits and curveSize are each curve's key size in bits and coordinate size in bytes.
var (
	curveBits = map[provider.Curve]int{provider.P256: 256, provider.P384: 384, provider.P521: 521, provider.P256K: 256}
	curveSize = map[provider.Curve]int{provider.P256: 32, provider.P384: 48, provider.P521: 66, provider.P256K: 32}
)

// nistCurve is the crypto/elliptic curve of a NIST curve name, nil for P-256K.
func nistCurve(c provider.Curve) elliptic.Curve {
	switch c {
	case provider.P256:
		return elliptic.P256()
	case provider.P384:
		return elliptic.P384()
	case provider.P521:
		return elliptic.P521()
	}
	return nil
}

// baseType strips -HSM from a key type.
func baseType(kty provider.KeyType) provider.KeyType {
	return provider.KeyType(strings.TrimSuffix(string(kty), "-HSM"))
}

// sigFits reports whether Key Vault pairs signature algorithm alg with this key.
func sigFits(alg string, kty provider.KeyType, crv provider.Curve) bool {
	switch alg {
	case provider.AlgRS256, provider.AlgRS384, provider.AlgRS512,
		provider.AlgPS256, provider.AlgPS384, provider.AlgPS512, provider.AlgRSNULL:
		return baseType(kty) == provider.RSA
	case provider.AlgES256, provider.AlgES384, provider.AlgES512, provider.AlgES256K:
		return baseType(kty) == provider.EC && curveAlg[crv] == alg
	case provider.AlgHS256, provider.AlgHS384, provider.AlgHS512:
		return baseType(kty) == provider.Oct
	}
	return false
}

// encFits reports whether Key Vault pairs encryption algorithm alg with this key type.
func encFits(alg string, kty provider.KeyType) bool {
	switch alg {
	case provider.AlgRSA15, provider.AlgRSAOAEP, provider.AlgRSAOAEP256:
		return baseType(kty) == provider.RSA
	}
	return baseType(kty) == provider.Oct
}

// oaepHash is the OAEP hash (label hash and MGF1) of an RSA encryption algorithm; 0 means
// PKCS #1 v1.5.
func oaepHash(alg string) crypto.Hash {
	switch alg {
	case provider.AlgRSAOAEP:
		return crypto.SHA1
	case provider.AlgRSAOAEP256:
		return crypto.SHA256
	}
	return 0
}

// maxPlaintext is the longest message alg encrypts under a k-byte modulus.
func maxPlaintext(alg string, k int) int {
	if h := oaepHash(alg); h != 0 {
		return k - 2*h.Size() - 2
	}
	return k - 11
}

// publicKeyOf parses a public JWK with the standard library (decred for P-256K), as an
// independent check of what a provider returns.
func publicKeyOf(j *provider.JWK) (crypto.PublicKey, error) {
	switch baseType(j.Kty) {
	case provider.RSA:
		e := new(big.Int).SetBytes(j.E)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("e out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(e.Int64())}, nil
	case provider.EC:
		pt := append(append([]byte{4}, j.X...), j.Y...)
		if j.Crv == provider.P256K {
			return secp256k1.ParsePubKey(pt)
		}
		c := nistCurve(j.Crv)
		if c == nil {
			return nil, errors.New("unknown curve")
		}
		return ecdsa.ParseUncompressedPublicKey(c, pt)
	}
	return nil, errors.New("unknown kty")
}

// jwkEqual compares the public members of two JWKs.
func jwkEqual(a, b *provider.JWK) bool {
	return a.Kty == b.Kty && a.Crv == b.Crv && string(a.N) == string(b.N) && string(a.E) == string(b.E) &&
		string(a.X) == string(b.X) && string(a.Y) == string(b.Y)
}
