package soft

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Import rules (Key Vault's, SECURITY-NOTES I7/I8): RSA and the NIST curves follow the
// provider package's (provider.PrivateKeyOf, shared with the PKCS#11 provider); P-256K,
// which only this provider holds, is checked here the same way. Errors wrap
// provider.ErrInvalidKey (or ErrUnsupported for a key type this provider does not hold) and
// never carry key bytes.

// checkKty accepts the key types the software provider imports and refuses members that
// belong to another key type.
func checkKty(j *provider.JWK) error {
	switch j.Kty {
	case provider.RSA, provider.EC:
		if err := provider.CheckMembers(j); err != nil {
			return err
		}
	case provider.Oct, provider.RSAHSM, provider.ECHSM, provider.OctHSM:
		return fmt.Errorf("%w: the software provider does not hold %s keys", provider.ErrUnsupported, j.Kty)
	default:
		return fmt.Errorf("%w: unknown kty", provider.ErrInvalidKey)
	}
	if len(j.T) > 0 {
		return fmt.Errorf("%w: key_hsm (BYOK) needs an HSM-backed provider", provider.ErrUnsupported)
	}
	return nil
}

// rsaPublicFromJWK validates n and e (provider.RSAPublicKey).
func rsaPublicFromJWK(j *provider.JWK) (*PublicKey, error) {
	pub, err := provider.RSAPublicKey(j)
	if err != nil {
		return nil, err
	}
	return &PublicKey{kty: provider.RSA, bits: pub.N.BitLen(), rsa: pub}, nil
}

// ecPublicFromJWK validates crv, x and y: a supported curve, coordinates of exactly the
// field size, each below p, forming a point on the curve other than the identity.
func ecPublicFromJWK(j *provider.JWK) (*PublicKey, error) {
	c, ok := curves[j.Crv]
	if !ok {
		if j.Crv == "" {
			return nil, fmt.Errorf("%w: an EC JWK needs crv", provider.ErrInvalidKey)
		}
		return nil, fmt.Errorf("%w: curve %.16q is not offered: use P-256, P-384, P-521 or P-256K", provider.ErrUnsupported, string(j.Crv))
	}
	k := &PublicKey{kty: provider.EC, bits: c.bits, curve: c}
	if c.nist != nil {
		var err error
		k.ec, err = provider.ECPublicKey(j)
		return k, err
	}
	if len(j.X) != c.size || len(j.Y) != c.size {
		return nil, fmt.Errorf("%w: %s coordinates are %d bytes each, got %d and %d", provider.ErrInvalidKey, c.crv, c.size, len(j.X), len(j.Y))
	}
	pt := make([]byte, 0, 1+2*c.size)
	pt = append(append(append(pt, 4), j.X...), j.Y...)
	var err error
	if k.k1, err = secp256k1.ParsePubKey(pt); err != nil {
		return nil, fmt.Errorf("%w: (x, y) is not a point on %s", provider.ErrInvalidKey, c.crv)
	}
	return k, nil
}

// importRSA builds a private RSA key from a JWK (provider.PrivateKeyOf).
func importRSA(j *provider.JWK) (*Key, error) {
	priv, err := provider.PrivateKeyOf(j)
	if err != nil {
		return nil, err
	}
	return newRSAKey(priv.(*rsa.PrivateKey))
}

// importEC builds a private EC key from a JWK: on a NIST curve provider.PrivateKeyOf's
// rules, on P-256K the same here: the public checks, then d in [1, n−1] (at most the scalar
// size, left-padded if shorter) with d·G = (x, y).
func importEC(j *provider.JWK) (*Key, error) {
	if c, ok := curves[j.Crv]; ok && c.nist != nil {
		priv, err := provider.PrivateKeyOf(j)
		if err != nil {
			return nil, err
		}
		return newECKey(priv.(*ecdsa.PrivateKey), c)
	}
	pub, err := ecPublicFromJWK(j)
	if err != nil {
		return nil, err
	}
	c := pub.curve
	if len(j.D) == 0 {
		return nil, fmt.Errorf("%w: an EC private JWK needs d", provider.ErrInvalidKey)
	}
	if len(j.D) > c.size {
		return nil, fmt.Errorf("%w: %s d is at most %d bytes, got %d", provider.ErrInvalidKey, c.crv, c.size, len(j.D))
	}
	d := make([]byte, c.size)
	copy(d[c.size-len(j.D):], j.D)
	key, err := k1KeyFromScalar(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %s d is not in [1, n−1]", provider.ErrInvalidKey, c.crv)
	}
	if subtle.ConstantTimeCompare(key.uncompressed(), pub.uncompressed()) != 1 {
		return nil, fmt.Errorf("%w: d does not match (x, y)", provider.ErrInvalidKey)
	}
	return key, nil
}
