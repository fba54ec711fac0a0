package soft

import (
	"crypto/fips140"
	"fmt"

	"github.com/coffer-kms/coffer/internal/provider"
)

// sigAlg and encAlg are the provider package's algorithm descriptions.
type (
	sigAlg = provider.SigAlg
	encAlg = provider.EncAlg
)

// isIn reports whether s is one of list.
func isIn(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// algName quotes an algorithm name for an error message, bounded in length: it is request
// input, never key material.
func algName(alg string) string { return fmt.Sprintf("%.32q", alg) }

// checkSigAlg resolves alg for a key of this kind, in the order the provider contract asks:
// known algorithm, offered, fits the key type and curve; then the digest length.
func (k *PublicKey) checkSigAlg(alg string, digest []byte) (sigAlg, error) {
	a, ok := provider.SignatureAlg(alg)
	if !ok {
		switch {
		case alg == provider.AlgHS256 || alg == provider.AlgHS384 || alg == provider.AlgHS512:
			return a, fmt.Errorf("%w: %s needs an oct-HSM key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
		case alg == provider.AlgRSNULL:
			return a, fmt.Errorf("%w: RSNULL (raw PKCS #1 v1.5 signing) is not offered: use RS256, RS384, RS512 or PS256, PS384, PS512", provider.ErrUnsupported)
		case isIn(alg, provider.EncryptionAlgorithms()):
			return a, fmt.Errorf("%w: %s is an encryption algorithm, not a signature algorithm", provider.ErrUnsupported, alg)
		default:
			return a, fmt.Errorf("%w: signature algorithm %s is unknown", provider.ErrUnsupported, algName(alg))
		}
	}
	switch {
	case a.RSA && k.kty != provider.RSA:
		return a, fmt.Errorf("%w: %s needs an RSA key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
	case !a.RSA && k.kty != provider.EC:
		return a, fmt.Errorf("%w: %s needs an EC key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
	case !a.RSA && k.curve.alg != alg:
		return a, fmt.Errorf("%w: a %s key signs with %s, not %s", provider.ErrWrongKeyType, k.curve.crv, k.curve.alg, alg)
	}
	if len(digest) != a.Hash.Size() {
		return a, fmt.Errorf("%w: %s takes a %d-byte digest, got %d bytes", provider.ErrInvalidParameter, alg, a.Hash.Size(), len(digest))
	}
	return a, nil
}

// checkEncAlg resolves an encrypt/decrypt/wrap/unwrap algorithm for this key and checks the
// parameters RSA does not take. It never looks at the value.
func (k *PublicKey) checkEncAlg(p provider.EncryptParams) (encAlg, error) {
	a, ok := provider.EncryptionAlg(p.Algorithm)
	if !ok {
		switch {
		case isIn(p.Algorithm, provider.EncryptionAlgorithms()):
			return a, fmt.Errorf("%w: %s needs an oct-HSM key, this is an %s key", provider.ErrWrongKeyType, p.Algorithm, k.kty)
		case isIn(p.Algorithm, provider.SignatureAlgorithms()):
			return a, fmt.Errorf("%w: %s is a signature algorithm, not an encryption algorithm", provider.ErrUnsupported, p.Algorithm)
		default:
			return a, fmt.Errorf("%w: encryption algorithm %s is unknown", provider.ErrUnsupported, algName(p.Algorithm))
		}
	}
	if k.kty != provider.RSA {
		return a, fmt.Errorf("%w: %s needs an RSA key, this is an %s key", provider.ErrWrongKeyType, p.Algorithm, k.kty)
	}
	// In FIPS 140-only mode the Go module refuses PKCS #1 v1.5 encryption and OAEP with
	// SHA-1 (SECURITY-NOTES F7): say so instead of failing later with ErrDecrypt.
	if fips140.Enforced() && (p.Algorithm == provider.AlgRSA15 || p.Algorithm == provider.AlgRSAOAEP) {
		return a, fmt.Errorf("%w: %s is not available in FIPS 140-only mode: use RSA-OAEP-256", provider.ErrUnsupported, p.Algorithm)
	}
	if len(p.IV) > 0 || len(p.AAD) > 0 || len(p.Tag) > 0 {
		return a, fmt.Errorf("%w: %s takes no iv, aad or tag", provider.ErrInvalidParameter, p.Algorithm)
	}
	return a, nil
}
