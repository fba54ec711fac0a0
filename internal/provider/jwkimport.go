package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"fmt"
	"math/big"
	"strings"
)

// Key Vault's import rules for private RSA and EC JWKs (SECURITY-NOTES I7/I8), shared by
// the providers that import them: the software provider (which adds P-256K) and the PKCS#11
// provider (which puts the key into its token). Errors wrap ErrInvalidKey (ErrUnsupported
// for a curve other than P-256, P-384 and P-521) and never carry key bytes.
//
// Timing: the RSA consistency checks below use math/big, which is not constant time. They
// run once, at import, on material the caller supplied; the operations afterwards use the
// constant-time code of crypto/rsa and crypto/ecdsa, or the token.

// importRSASizes are the RSA modulus sizes Key Vault takes.
var importRSASizes = map[int]bool{2048: true, 3072: true, 4096: true}

// importRSAExponent is the only public exponent Coffer accepts.
const importRSAExponent = 65537

// nistCurves are the curves of PrivateKeyOf and ECPublicKey.
var nistCurves = map[Curve]elliptic.Curve{P256: elliptic.P256(), P384: elliptic.P384(), P521: elliptic.P521()}

// CheckMembers refuses the members of another key type than j's (kty RSA or EC, or their
// -HSM forms): an RSA JWK has no crv, x, y or k, an EC JWK no n, e, p, q, dp, dq, qi or k.
// Other key types pass: the caller decides which it takes.
func CheckMembers(j *JWK) error {
	switch KeyType(strings.TrimSuffix(string(j.Kty), "-HSM")) {
	case RSA:
		if j.Crv != "" || len(j.X) > 0 || len(j.Y) > 0 || len(j.K) > 0 {
			return fmt.Errorf("%w: an RSA JWK has no crv, x, y or k", ErrInvalidKey)
		}
	case EC:
		if len(j.N) > 0 || len(j.E) > 0 || len(j.P) > 0 || len(j.Q) > 0 || len(j.DP) > 0 ||
			len(j.DQ) > 0 || len(j.QI) > 0 || len(j.K) > 0 {
			return fmt.Errorf("%w: an EC JWK has no n, e, p, q, dp, dq, qi or k", ErrInvalidKey)
		}
	}
	return nil
}

// RSAPublicKey validates n and e of an RSA JWK: n of exactly 2048, 3072 or 4096 bits
// without a leading zero byte and odd; e = 65537, minimally encoded.
func RSAPublicKey(j *JWK) (*rsa.PublicKey, error) {
	if len(j.N) == 0 || len(j.E) == 0 {
		return nil, fmt.Errorf("%w: an RSA JWK needs n and e", ErrInvalidKey)
	}
	if j.N[0] == 0 {
		return nil, fmt.Errorf("%w: n has a leading zero byte", ErrInvalidKey)
	}
	n := new(big.Int).SetBytes(j.N)
	if !importRSASizes[n.BitLen()] {
		return nil, fmt.Errorf("%w: RSA modulus of %d bits: Key Vault takes 2048, 3072 or 4096 bits", ErrInvalidKey, n.BitLen())
	}
	if n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: RSA modulus is even", ErrInvalidKey)
	}
	if len(j.E) > 4 || j.E[0] == 0 || new(big.Int).SetBytes(j.E).Int64() != importRSAExponent {
		return nil, fmt.Errorf("%w: RSA public exponent must be 65537 (AQAB)", ErrInvalidKey)
	}
	return &rsa.PublicKey{N: n, E: importRSAExponent}, nil
}

// ECPublicKey validates crv, x and y of an EC JWK on a NIST curve: coordinates of exactly
// the field size, each below p, forming a point on the curve other than the identity. A
// missing crv is ErrInvalidKey, another curve ErrUnsupported.
func ECPublicKey(j *JWK) (*ecdsa.PublicKey, error) {
	c, ok := nistCurves[j.Crv]
	if !ok {
		if j.Crv == "" {
			return nil, fmt.Errorf("%w: an EC JWK needs crv", ErrInvalidKey)
		}
		return nil, fmt.Errorf("%w: curve %.16q is not offered: use P-256, P-384 or P-521", ErrUnsupported, string(j.Crv))
	}
	size := (c.Params().BitSize + 7) / 8
	if len(j.X) != size || len(j.Y) != size {
		return nil, fmt.Errorf("%w: %s coordinates are %d bytes each, got %d and %d", ErrInvalidKey, j.Crv, size, len(j.X), len(j.Y))
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), j.X...), j.Y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("%w: (x, y) is not a point on %s", ErrInvalidKey, j.Crv)
	}
	return pub, nil
}

// PrivateKeyOf is the inverse of PrivateJWK under Key Vault's import rules: the
// *rsa.PrivateKey or *ecdsa.PrivateKey a private JWK of kty RSA or EC (or RSA-HSM, EC-HSM)
// holds. An RSA key passes RSAPublicKey and has d, p, q, dp, dq and qi, all present and
// consistent (recomputed here and compared, then checked again by crypto/rsa); multi-prime
// keys never get here (ParseJWK refuses "oth"; p·q = n fails). An EC key passes
// ECPublicKey and has d in [1, n−1] (at most the scalar size, left-padded if shorter) with
// d·G = (x, y). The result holds the key material: the caller clears it when done.
func PrivateKeyOf(j *JWK) (crypto.Signer, error) {
	if j == nil {
		return nil, fmt.Errorf("%w: no JWK given", ErrInvalidKey)
	}
	if err := CheckMembers(j); err != nil {
		return nil, err
	}
	switch KeyType(strings.TrimSuffix(string(j.Kty), "-HSM")) {
	case RSA:
		return rsaPrivateOf(j)
	case EC:
		return ecPrivateOf(j)
	}
	return nil, fmt.Errorf("%w: only RSA and EC JWKs hold an RSA or EC private key", ErrUnsupported)
}

func rsaPrivateOf(j *JWK) (*rsa.PrivateKey, error) {
	pub, err := RSAPublicKey(j)
	if err != nil {
		return nil, err
	}
	if len(j.D) == 0 || len(j.P) == 0 || len(j.Q) == 0 || len(j.DP) == 0 || len(j.DQ) == 0 || len(j.QI) == 0 {
		return nil, fmt.Errorf("%w: an RSA private JWK needs d, p, q, dp, dq and qi", ErrInvalidKey)
	}
	n := pub.N
	d, p, q := new(big.Int).SetBytes(j.D), new(big.Int).SetBytes(j.P), new(big.Int).SetBytes(j.Q)
	dp, dq, qi := new(big.Int).SetBytes(j.DP), new(big.Int).SetBytes(j.DQ), new(big.Int).SetBytes(j.QI)
	one := big.NewInt(1)
	if p.Cmp(one) <= 0 || q.Cmp(one) <= 0 || p.Cmp(q) == 0 || new(big.Int).Mul(p, q).Cmp(n) != 0 {
		return nil, fmt.Errorf("%w: p·q is not n", ErrInvalidKey)
	}
	if d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, fmt.Errorf("%w: d is not in [1, n−1]", ErrInvalidKey)
	}
	pm1, qm1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
	e := big.NewInt(importRSAExponent)
	// e·d ≡ 1 (mod p−1) and (mod q−1) is e·d ≡ 1 (mod λ(n)).
	if new(big.Int).Mod(new(big.Int).Mul(e, d), pm1).Cmp(one) != 0 || new(big.Int).Mod(new(big.Int).Mul(e, d), qm1).Cmp(one) != 0 {
		return nil, fmt.Errorf("%w: d is not the inverse of e", ErrInvalidKey)
	}
	wantQi := new(big.Int).ModInverse(q, p)
	if !equalInt(dp, new(big.Int).Mod(d, pm1)) || !equalInt(dq, new(big.Int).Mod(d, qm1)) || wantQi == nil || !equalInt(qi, wantQi) {
		return nil, fmt.Errorf("%w: dp, dq or qi does not match d, p and q", ErrInvalidKey)
	}
	priv := &rsa.PrivateKey{
		PublicKey:   *pub,
		D:           d,
		Primes:      []*big.Int{p, q},
		Precomputed: rsa.PrecomputedValues{Dp: dp, Dq: dq, Qinv: qi},
	}
	priv.Precompute()
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("%w: RSA key is inconsistent", ErrInvalidKey)
	}
	return priv, nil
}

func ecPrivateOf(j *JWK) (*ecdsa.PrivateKey, error) {
	pub, err := ECPublicKey(j)
	if err != nil {
		return nil, err
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if len(j.D) == 0 {
		return nil, fmt.Errorf("%w: an EC private JWK needs d", ErrInvalidKey)
	}
	if len(j.D) > size {
		return nil, fmt.Errorf("%w: %s d is at most %d bytes, got %d", ErrInvalidKey, j.Crv, size, len(j.D))
	}
	d := make([]byte, size)
	defer clear(d)
	copy(d[size-len(j.D):], j.D)
	priv, err := ecdsa.ParseRawPrivateKey(pub.Curve, d)
	if err != nil {
		return nil, fmt.Errorf("%w: %s d is not in [1, n−1]", ErrInvalidKey, j.Crv)
	}
	got, err1 := priv.PublicKey.Bytes()
	want, err2 := pub.Bytes()
	if err1 != nil || err2 != nil || subtle.ConstantTimeCompare(got, want) != 1 {
		return nil, fmt.Errorf("%w: d does not match (x, y)", ErrInvalidKey)
	}
	return priv, nil
}

// equalInt compares two non-negative integers through fixed-length encodings.
func equalInt(a, b *big.Int) bool {
	n := max(len(a.Bytes()), len(b.Bytes()))
	return subtle.ConstantTimeCompare(a.FillBytes(make([]byte, n)), b.FillBytes(make([]byte, n))) == 1
}

// Wipe overwrites the private members of j (d, p, q, dp, dq, qi, k) with zeros, once the key
// they hold has been handed to a provider. Best effort: Go may have copied them elsewhere.
func (j *JWK) Wipe() {
	if j == nil {
		return
	}
	for _, b := range []B64{j.D, j.P, j.Q, j.DP, j.DQ, j.QI, j.K} {
		clear(b)
	}
}

// WipePrivate overwrites the secret integers of an *rsa.PrivateKey (d, the primes and the
// CRT values) or an *ecdsa.PrivateKey (d) in place, once the key has been handed on. Best
// effort: the standard library may keep copies of its own (crypto/rsa's precomputed key),
// which this cannot reach. Other types are left alone. The key is unusable afterwards.
func WipePrivate(key crypto.PrivateKey) {
	var ints []*big.Int
	switch k := key.(type) {
	case *rsa.PrivateKey:
		ints = append(append(ints, k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv), k.Primes...)
	case *ecdsa.PrivateKey:
		ints = append(ints, k.D)
	}
	for _, v := range ints {
		if v != nil {
			clear(v.Bits())
			v.SetInt64(0)
		}
	}
}
