package soft

import (
	"crypto"
	"crypto/elliptic"

	"github.com/coffer-kms/coffer/internal/provider"
)

// curveInfo describes one supported curve and the one signature algorithm Key Vault pairs
// with it.
type curveInfo struct {
	crv  provider.Curve
	bits int            // Size() of the key
	size int            // bytes of a coordinate, of the scalar d, and of r and s
	alg  string         // ES256, ES384, ES512, ES256K
	hash crypto.Hash    // the digest the algorithm takes
	nist elliptic.Curve // nil for P-256K (secp256k1, served by decred)
}

var curves = map[provider.Curve]*curveInfo{
	provider.P256:  {crv: provider.P256, bits: 256, size: 32, alg: provider.AlgES256, hash: crypto.SHA256, nist: elliptic.P256()},
	provider.P384:  {crv: provider.P384, bits: 384, size: 48, alg: provider.AlgES384, hash: crypto.SHA384, nist: elliptic.P384()},
	provider.P521:  {crv: provider.P521, bits: 521, size: 66, alg: provider.AlgES512, hash: crypto.SHA512, nist: elliptic.P521()},
	provider.P256K: {crv: provider.P256K, bits: 256, size: 32, alg: provider.AlgES256K, hash: crypto.SHA256},
}

// rsaSizes are the RSA modulus sizes Key Vault offers, for generation and import alike.
var rsaSizes = map[int]bool{2048: true, 3072: true, 4096: true}

// rsaExponent is the only public exponent Coffer accepts (SECURITY-NOTES I8).
const rsaExponent = 65537
