package soft

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Import rules (Key Vault's, SECURITY-NOTES I7/I8). Errors wrap provider.ErrInvalidKey (or
// ErrUnsupported for a key type this provider does not hold) and never carry key bytes.
//
// Timing: the RSA consistency checks below use math/big, which is not constant time. They
// run once, at import, on material the caller supplied; the operations afterwards use the
// constant-time code of crypto/rsa and crypto/ecdsa.

// checkKty accepts the key types the software provider imports and refuses members that
// belong to another key type.
func checkKty(j *provider.JWK) error {
	switch j.Kty {
	case provider.RSA:
		if j.Crv != "" || len(j.X) > 0 || len(j.Y) > 0 || len(j.K) > 0 {
			return fmt.Errorf("%w: an RSA JWK has no crv, x, y or k", provider.ErrInvalidKey)
		}
	case provider.EC:
		if len(j.N) > 0 || len(j.E) > 0 || len(j.P) > 0 || len(j.Q) > 0 || len(j.DP) > 0 ||
			len(j.DQ) > 0 || len(j.QI) > 0 || len(j.K) > 0 {
			return fmt.Errorf("%w: an EC JWK has no n, e, p, q, dp, dq, qi or k", provider.ErrInvalidKey)
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

// rsaPublicFromJWK validates n and e: n of exactly 2048, 3072 or 4096 bits without a
// leading zero byte and odd; e = 65537, minimally encoded.
func rsaPublicFromJWK(j *provider.JWK) (*PublicKey, error) {
	if len(j.N) == 0 || len(j.E) == 0 {
		return nil, fmt.Errorf("%w: an RSA JWK needs n and e", provider.ErrInvalidKey)
	}
	if j.N[0] == 0 {
		return nil, fmt.Errorf("%w: n has a leading zero byte", provider.ErrInvalidKey)
	}
	n := new(big.Int).SetBytes(j.N)
	if !rsaSizes[n.BitLen()] {
		return nil, fmt.Errorf("%w: RSA modulus of %d bits: Key Vault takes 2048, 3072 or 4096 bits", provider.ErrInvalidKey, n.BitLen())
	}
	if n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: RSA modulus is even", provider.ErrInvalidKey)
	}
	if len(j.E) > 4 || j.E[0] == 0 || new(big.Int).SetBytes(j.E).Int64() != rsaExponent {
		return nil, fmt.Errorf("%w: RSA public exponent must be 65537 (AQAB)", provider.ErrInvalidKey)
	}
	pub := &rsa.PublicKey{N: n, E: rsaExponent}
	return &PublicKey{kty: provider.RSA, bits: n.BitLen(), rsa: pub}, nil
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
	if len(j.X) != c.size || len(j.Y) != c.size {
		return nil, fmt.Errorf("%w: %s coordinates are %d bytes each, got %d and %d", provider.ErrInvalidKey, c.crv, c.size, len(j.X), len(j.Y))
	}
	pt := make([]byte, 0, 1+2*c.size)
	pt = append(append(append(pt, 4), j.X...), j.Y...)
	k := &PublicKey{kty: provider.EC, bits: c.bits, curve: c}
	var err error
	if c.nist == nil {
		k.k1, err = secp256k1.ParsePubKey(pt)
	} else {
		k.ec, err = ecdsa.ParseUncompressedPublicKey(c.nist, pt)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: (x, y) is not a point on %s", provider.ErrInvalidKey, c.crv)
	}
	return k, nil
}

// importRSA builds a private RSA key from a JWK: the public checks, then d, p, q, dp, dq
// and qi all present and consistent (recomputed here and compared, then checked again by
// crypto/rsa). Multi-prime keys never get here (ParseJWK refuses "oth"; p·q = n fails).
func importRSA(j *provider.JWK) (*Key, error) {
	pub, err := rsaPublicFromJWK(j)
	if err != nil {
		return nil, err
	}
	if len(j.D) == 0 || len(j.P) == 0 || len(j.Q) == 0 || len(j.DP) == 0 || len(j.DQ) == 0 || len(j.QI) == 0 {
		return nil, fmt.Errorf("%w: an RSA private JWK needs d, p, q, dp, dq and qi", provider.ErrInvalidKey)
	}
	n := pub.rsa.N
	d, p, q := new(big.Int).SetBytes(j.D), new(big.Int).SetBytes(j.P), new(big.Int).SetBytes(j.Q)
	dp, dq, qi := new(big.Int).SetBytes(j.DP), new(big.Int).SetBytes(j.DQ), new(big.Int).SetBytes(j.QI)
	one := big.NewInt(1)
	if p.Cmp(one) <= 0 || q.Cmp(one) <= 0 || p.Cmp(q) == 0 || new(big.Int).Mul(p, q).Cmp(n) != 0 {
		return nil, fmt.Errorf("%w: p·q is not n", provider.ErrInvalidKey)
	}
	if d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, fmt.Errorf("%w: d is not in [1, n−1]", provider.ErrInvalidKey)
	}
	pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	e := big.NewInt(rsaExponent)
	// e·d ≡ 1 (mod p−1) and (mod q−1) is e·d ≡ 1 (mod λ(n)).
	if new(big.Int).Mod(new(big.Int).Mul(e, d), pm1).Cmp(one) != 0 || new(big.Int).Mod(new(big.Int).Mul(e, d), qm1).Cmp(one) != 0 {
		return nil, fmt.Errorf("%w: d is not the inverse of e", provider.ErrInvalidKey)
	}
	wantQi := new(big.Int).ModInverse(q, p)
	if !equalInt(dp, new(big.Int).Mod(d, pm1)) || !equalInt(dq, new(big.Int).Mod(d, qm1)) || wantQi == nil || !equalInt(qi, wantQi) {
		return nil, fmt.Errorf("%w: dp, dq or qi does not match d, p and q", provider.ErrInvalidKey)
	}
	priv := &rsa.PrivateKey{
		PublicKey:   *pub.rsa,
		D:           d,
		Primes:      []*big.Int{p, q},
		Precomputed: rsa.PrecomputedValues{Dp: dp, Dq: dq, Qinv: qi},
	}
	priv.Precompute()
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("%w: RSA key is inconsistent", provider.ErrInvalidKey)
	}
	return newRSAKey(priv)
}

// importEC builds a private EC key from a JWK: the public checks, then d in [1, n−1] (at most
// the scalar size, left-padded if shorter) with d·G = (x, y).
func importEC(j *provider.JWK) (*Key, error) {
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
	var key *Key
	if c.nist == nil {
		key, err = k1KeyFromScalar(d)
	} else {
		var priv *ecdsa.PrivateKey
		if priv, err = ecdsa.ParseRawPrivateKey(c.nist, d); err == nil {
			key, err = newECKey(priv, c)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s d is not in [1, n−1]", provider.ErrInvalidKey, c.crv)
	}
	if subtle.ConstantTimeCompare(key.uncompressed(), pub.uncompressed()) != 1 {
		return nil, fmt.Errorf("%w: d does not match (x, y)", provider.ErrInvalidKey)
	}
	return key, nil
}

// equalInt compares two non-negative integers through fixed-length encodings.
func equalInt(a, b *big.Int) bool {
	n := max(len(a.Bytes()), len(b.Bytes()))
	return subtle.ConstantTimeCompare(a.FillBytes(make([]byte, n)), b.FillBytes(make([]byte, n))) == 1
}
