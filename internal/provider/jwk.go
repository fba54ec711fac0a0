package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"math/big"
)

// JWK is a JSON Web Key as Key Vault uses it (RFC 7517 plus Key Vault's key_ops and key_hsm).
// Byte fields are base64url without padding on the wire ([]byte with custom JSON handling in
// jwkjson.go). Private members (D, P, Q, DP, DQ, QI, K) are only ever set on input (import);
// Public never sets them, except K stays empty for oct keys too.
type JWK struct {
	KID    string   `json:"kid,omitempty"`
	Kty    KeyType  `json:"kty"`
	KeyOps []string `json:"key_ops,omitempty"`
	// RSA
	N  B64 `json:"n,omitempty"`
	E  B64 `json:"e,omitempty"`
	D  B64 `json:"d,omitempty"`
	DP B64 `json:"dp,omitempty"`
	DQ B64 `json:"dq,omitempty"`
	QI B64 `json:"qi,omitempty"`
	P  B64 `json:"p,omitempty"`
	Q  B64 `json:"q,omitempty"`
	// oct
	K B64 `json:"k,omitempty"`
	// BYOK transfer blob (HSM issue)
	T B64 `json:"key_hsm,omitempty"`
	// EC
	Crv Curve `json:"crv,omitempty"`
	X   B64   `json:"x,omitempty"`
	Y   B64   `json:"y,omitempty"`
	// Exportable (never on the wire) asks Import for a key that secure key release may
	// export (provider.Exporter); the keys domain sets it from the exportable attribute.
	Exportable bool `json:"-"`
	// SecurityDomain (never on the wire) marks, as KeySpec.SecurityDomain does, an imported
	// key that a DomainWrapper provider makes wrappable by trusted wrapping keys only (a
	// vault's certificate key; set by the keys domain).
	SecurityDomain bool `json:"-"`
	// Store (never on the wire) names the vault or managed HSM pool the key is imported
	// into, as KeySpec.Store does, so that a pool with a token of its own gets the key there.
	Store string `json:"-"`
}

// B64 is bytes that travel as strict unpadded base64url (SECURITY-NOTES I6).
type B64 []byte

// PrivateJWK returns the private JWK (kty RSA or EC) of an RSA or NIST-curve ECDSA key, CRT
// members included, EC coordinates and d at the field size. Its result carries key material:
// hand it to a provider's Import and nowhere else.
func PrivateJWK(key crypto.PrivateKey) (*JWK, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return nil, fmt.Errorf("%w: an RSA key with %d primes cannot be a JWK", ErrInvalidKey, len(k.Primes))
		}
		k.Precompute()
		return &JWK{
			Kty: RSA,
			N:   k.N.Bytes(), E: big.NewInt(int64(k.E)).Bytes(), D: k.D.Bytes(),
			P: k.Primes[0].Bytes(), Q: k.Primes[1].Bytes(),
			DP: k.Precomputed.Dp.Bytes(), DQ: k.Precomputed.Dq.Bytes(), QI: k.Precomputed.Qinv.Bytes(),
		}, nil
	case *ecdsa.PrivateKey:
		var crv Curve
		switch k.Curve {
		case elliptic.P256():
			crv = P256
		case elliptic.P384():
			crv = P384
		case elliptic.P521():
			crv = P521
		default:
			return nil, fmt.Errorf("%w: the EC key's curve is not P-256, P-384 or P-521", ErrUnsupported)
		}
		pt, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: the EC public key cannot be encoded", ErrInvalidKey)
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: the EC private key cannot be encoded", ErrInvalidKey)
		}
		n := (len(pt) - 1) / 2
		return &JWK{Kty: EC, Crv: crv, X: pt[1 : 1+n], Y: pt[1+n:], D: d}, nil
	}
	return nil, fmt.Errorf("%w: only RSA and ECDSA private keys become JWKs", ErrUnsupported)
}
