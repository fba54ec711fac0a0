package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/coffer-kms/coffer/internal/provider"
)

// curveInfo describes one supported curve: its OID (CKA_EC_PARAMS), sizes and the one
// signature algorithm Key Vault pairs with it.
type curveInfo struct {
	crv  provider.Curve
	bits int // Size() of the key
	size int // bytes of a coordinate and of r and s
	alg  string
	hash crypto.Hash
	oid  asn1.ObjectIdentifier
	nist elliptic.Curve
}

var curves = map[provider.Curve]*curveInfo{
	provider.P256: {crv: provider.P256, bits: 256, size: 32, alg: provider.AlgES256, hash: crypto.SHA256, oid: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, nist: elliptic.P256()},
	provider.P384: {crv: provider.P384, bits: 384, size: 48, alg: provider.AlgES384, hash: crypto.SHA384, oid: asn1.ObjectIdentifier{1, 3, 132, 0, 34}, nist: elliptic.P384()},
	provider.P521: {crv: provider.P521, bits: 521, size: 66, alg: provider.AlgES512, hash: crypto.SHA512, oid: asn1.ObjectIdentifier{1, 3, 132, 0, 35}, nist: elliptic.P521()},
}

// curveOf maps a crypto/elliptic curve back to its curveInfo.
func curveOf(c elliptic.Curve) *curveInfo {
	for _, ci := range curves {
		if ci.nist == c {
			return ci
		}
	}
	return nil
}

// sigAlg and encAlg are the provider package's algorithm descriptions.
type (
	sigAlg = provider.SigAlg
	encAlg = provider.EncAlg
)

func isIn(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// algName quotes request input for an error message, bounded in length.
func algName(alg string) string { return fmt.Sprintf("%.32q", alg) }

// publicKey is the public half of a token key, from the handle. It verifies and encrypts
// in software.
type publicKey struct {
	kty       provider.KeyType // RSA-HSM or EC-HSM
	noOAEP256 bool             // the token cannot decrypt RSA-OAEP-256
	bits      int
	curve     *curveInfo
	rsa       *rsa.PublicKey
	ec        *ecdsa.PublicKey
}

func newRSAPublic(k *rsa.PublicKey, kty provider.KeyType) *publicKey {
	return &publicKey{kty: kty, bits: k.N.BitLen(), rsa: k}
}

func newECPublic(k *ecdsa.PublicKey, c *curveInfo) *publicKey {
	return &publicKey{kty: provider.ECHSM, bits: c.bits, curve: c, ec: k}
}

func (k *publicKey) isRSA() bool { return k.rsa != nil }

// Type returns RSA-HSM or EC-HSM.
func (k *publicKey) Type() provider.KeyType { return k.kty }

// Size returns the modulus bits or the curve size.
func (k *publicKey) Size() int { return k.bits }

// Curve returns the curve of an EC key, "" for RSA.
func (k *publicKey) Curve() provider.Curve {
	if k.curve == nil {
		return ""
	}
	return k.curve.crv
}

// Public returns the public JWK (fresh bytes).
func (k *publicKey) Public() *provider.JWK {
	j := &provider.JWK{Kty: k.kty}
	if k.isRSA() {
		j.N = k.rsa.N.Bytes()
		j.E = big.NewInt(int64(k.rsa.E)).Bytes()
		return j
	}
	pt, err := k.ec.Bytes()
	if err != nil {
		panic("pkcs11: invalid EC public key") // unreachable: points are validated
	}
	j.Crv = k.curve.crv
	j.X = pt[1 : 1+k.curve.size]
	j.Y = pt[1+k.curve.size:]
	return j
}

func (k *publicKey) modulusLen() int { return (k.rsa.N.BitLen() + 7) / 8 }

func (k *publicKey) sigLen() int {
	if k.isRSA() {
		return k.modulusLen()
	}
	return 2 * k.curve.size
}

// checkSigAlg resolves alg for this key: known, offered, fits the key type and curve; then
// the digest length.
func (k *publicKey) checkSigAlg(alg string, digest []byte) (sigAlg, error) {
	a, ok := provider.SignatureAlg(alg)
	if alg == provider.AlgES256K {
		ok = false // P-256K is not offered by this provider
	}
	if !ok {
		switch {
		case alg == provider.AlgHS256 || alg == provider.AlgHS384 || alg == provider.AlgHS512:
			return a, fmt.Errorf("%w: %s needs an oct-HSM key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
		case alg == provider.AlgRSNULL:
			return a, fmt.Errorf("%w: RSNULL (raw PKCS #1 v1.5 signing) is not offered: use RS256, RS384, RS512 or PS256, PS384, PS512", provider.ErrUnsupported)
		case alg == provider.AlgES256K:
			return a, fmt.Errorf("%w: ES256K (P-256K) is not offered by the HSM provider", provider.ErrUnsupported)
		case isIn(alg, provider.EncryptionAlgorithms()):
			return a, fmt.Errorf("%w: %s is an encryption algorithm, not a signature algorithm", provider.ErrUnsupported, alg)
		default:
			return a, fmt.Errorf("%w: signature algorithm %s is unknown", provider.ErrUnsupported, algName(alg))
		}
	}
	switch {
	case a.RSA && !k.isRSA():
		return a, fmt.Errorf("%w: %s needs an RSA key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
	case !a.RSA && k.isRSA():
		return a, fmt.Errorf("%w: %s needs an EC key, this is an %s key", provider.ErrWrongKeyType, alg, k.kty)
	case !a.RSA && k.curve.alg != alg:
		return a, fmt.Errorf("%w: a %s key signs with %s, not %s", provider.ErrWrongKeyType, k.curve.crv, k.curve.alg, alg)
	}
	if len(digest) != a.Hash.Size() {
		return a, fmt.Errorf("%w: %s takes a %d-byte digest, got %d bytes", provider.ErrInvalidParameter, alg, a.Hash.Size(), len(digest))
	}
	return a, nil
}

// checkEncAlg resolves an encryption algorithm for this key and refuses parameters RSA does
// not take. It never looks at the value.
func (k *publicKey) checkEncAlg(p provider.EncryptParams) (encAlg, error) {
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
	if !k.isRSA() {
		return a, fmt.Errorf("%w: %s needs an RSA key, this is an %s key", provider.ErrWrongKeyType, p.Algorithm, k.kty)
	}
	if k.noOAEP256 && p.Algorithm == provider.AlgRSAOAEP256 {
		return a, fmt.Errorf("%w: this HSM does not offer RSA-OAEP-256 (OAEP with SHA-256): use RSA-OAEP", provider.ErrUnsupported)
	}
	if fips140.Enforced() && (p.Algorithm == provider.AlgRSA15 || p.Algorithm == provider.AlgRSAOAEP) {
		return a, fmt.Errorf("%w: %s is not available in FIPS 140-only mode: use RSA-OAEP-256", provider.ErrUnsupported, p.Algorithm)
	}
	if len(p.IV) > 0 || len(p.AAD) > 0 || len(p.Tag) > 0 {
		return a, fmt.Errorf("%w: %s takes no iv, aad or tag", provider.ErrInvalidParameter, p.Algorithm)
	}
	return a, nil
}

// Verify checks signature over digest in software with the public key: (false, nil) for a
// signature of the right length that does not verify; ErrInvalidParameter for a wrong
// length (EC: DER instead of raw r ‖ s) or digest length; ErrWrongKeyType for an algorithm
// that does not fit.
func (k *publicKey) Verify(_ context.Context, alg string, digest, signature []byte) (bool, error) {
	a, err := k.checkSigAlg(alg, digest)
	if err != nil {
		return false, err
	}
	if len(signature) != k.sigLen() {
		return false, fmt.Errorf("%w: a %s signature by this key is %d bytes, got %d bytes", provider.ErrInvalidParameter, alg, k.sigLen(), len(signature))
	}
	switch {
	case a.PSS:
		return rsa.VerifyPSS(k.rsa, a.Hash, digest, signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil, nil
	case a.RSA:
		return rsa.VerifyPKCS1v15(k.rsa, a.Hash, digest, signature) == nil, nil
	default:
		n := k.curve.size
		r := new(big.Int).SetBytes(signature[:n])
		s := new(big.Int).SetBytes(signature[n:])
		return ecdsa.Verify(k.ec, digest, r, s), nil
	}
}

// Encrypt encrypts in software with RSA1_5, RSA-OAEP or RSA-OAEP-256 (a public-key
// operation: the token is not needed).
func (k *publicKey) Encrypt(_ context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	return k.encrypt(p, "encrypt")
}

// WrapKey is Encrypt for key material; the value must not be empty.
func (k *publicKey) WrapKey(_ context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	return k.encrypt(p, "wrapKey")
}

func (k *publicKey) encrypt(p provider.EncryptParams, op string) (provider.EncryptResult, error) {
	a, err := k.checkEncAlg(p)
	if err != nil {
		return provider.EncryptResult{}, err
	}
	if op == "wrapKey" && len(p.Value) == 0 {
		return provider.EncryptResult{}, fmt.Errorf("%w: wrapKey needs a key to wrap", provider.ErrInvalidParameter)
	}
	if limit := a.MaxPlaintext(k.modulusLen()); len(p.Value) > limit {
		return provider.EncryptResult{}, fmt.Errorf("%w: %s with this key takes at most %d bytes, got %d bytes", provider.ErrInvalidParameter, p.Algorithm, limit, len(p.Value))
	}
	var out []byte
	if a.OAEP {
		out, err = rsa.EncryptOAEP(a.Hash.New(), rand.Reader, k.rsa, p.Value, nil)
	} else {
		//lint:ignore SA1019 Key Vault's RSA1_5
		out, err = rsa.EncryptPKCS1v15(rand.Reader, k.rsa, p.Value)
	}
	if err != nil {
		return provider.EncryptResult{}, errors.New("pkcs11: RSA encryption failed")
	}
	return provider.EncryptResult{Value: out}, nil
}

// equal reports whether two public keys are the same key.
func (k *publicKey) equal(o *publicKey) bool {
	if k.kty != o.kty {
		return false
	}
	if k.isRSA() {
		return o.isRSA() && k.rsa.Equal(o.rsa)
	}
	return !o.isRSA() && k.ec.Equal(o.ec)
}
