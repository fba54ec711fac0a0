package soft

import (
	"crypto/rand"
	"errors"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// secp256k1 (P-256K, ES256K) comes from github.com/decred/dcrd/dcrec/secp256k1/v4: the
// standard library has no such curve (SECURITY-NOTES F5). Its field and scalar arithmetic
// is constant time, but its point multiplications (ScalarBaseMultNonConst: a table indexed
// by the scalar's bytes, skipped zero bytes) and its scalar inversion are not, and its
// ecdsa.Sign feeds the nonce straight into both. A KMS signs for remote callers who can time
// it, so signing is done here with the library's primitives and three changes:
//
//   - the nonce is RFC 6979 (HMAC-SHA256) hedged with 32 fresh random bytes as the RFC's
//     "additional data" (§3.6): never repeated, and still safe if the random source fails;
//   - k·G is computed as (k−b)·G + b·G for a fresh random b (additive scalar blinding), so
//     the variable-time multiplications see only values independent of k;
//   - k⁻¹ is computed as u·(k·u)⁻¹ for a fresh random u (multiplicative blinding).
//
// s is normalized to the lower half of the order as decred's signer does (BIP 62), so
// with no hedging the output is byte-identical to decred's ecdsa.Sign (a test checks it).
// Deriving the public key from d at import and load uses the same blinded multiplication.

// randomScalar returns a uniformly random scalar in [1, n−1].
func randomScalar() (*secp256k1.ModNScalar, error) {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	return &k.Key, nil
}

// blindedBaseMult returns k·G in affine coordinates, computed as (k−b)·G + b·G.
func blindedBaseMult(k *secp256k1.ModNScalar) (secp256k1.JacobianPoint, error) {
	var result secp256k1.JacobianPoint
	b, err := randomScalar()
	if err != nil {
		return result, err
	}
	var kb secp256k1.ModNScalar
	kb.NegateVal(b).Add(k)
	var p1, p2 secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&kb, &p1)
	secp256k1.ScalarBaseMultNonConst(b, &p2)
	secp256k1.AddNonConst(&p1, &p2, &result)
	result.ToAffine()
	kb.Zero()
	b.Zero()
	return result, nil
}

// k1KeyFromScalar builds a key from a 32-byte scalar, which must be in [1, n−1].
func k1KeyFromScalar(d []byte) (*Key, error) {
	if len(d) != 32 {
		return nil, errors.New("secp256k1 scalar is not 32 bytes")
	}
	var b [32]byte
	copy(b[:], d)
	priv := new(secp256k1.PrivateKey)
	overflow := priv.Key.SetBytes(&b)
	clear(b[:])
	if overflow != 0 || priv.Key.IsZero() {
		return nil, errors.New("secp256k1 scalar out of range")
	}
	return newK1Key(priv)
}

// k1PublicKey derives d·G without exposing d to variable-time code.
func k1PublicKey(priv *secp256k1.PrivateKey) (*secp256k1.PublicKey, error) {
	p, err := blindedBaseMult(&priv.Key)
	if err != nil {
		return nil, err
	}
	return secp256k1.NewPublicKey(&p.X, &p.Y), nil
}

// signK1 signs a 32-byte digest and returns r ‖ s (32 bytes each). extra is RFC 6979's
// additional data: 32 random bytes for hedged signing, nil only in tests (deterministic).
func signK1(priv *secp256k1.PrivateKey, digest, extra []byte) ([]byte, error) {
	var d [32]byte
	priv.Key.PutBytes(&d)
	defer clear(d[:])
	var e secp256k1.ModNScalar
	e.SetByteSlice(digest) // digest is exactly 32 bytes (checked by the caller)
	for iter := uint32(0); ; iter++ {
		k := secp256k1.NonceRFC6979(d[:], digest, extra, nil, iter)
		sig, ok, err := signK1WithNonce(&priv.Key, k, &e)
		k.Zero()
		if err != nil {
			return nil, err
		}
		if ok {
			return sig, nil
		}
	}
}

// signK1WithNonce computes r = (k·G).x mod n and s = k⁻¹(e + d·r) mod n, reporting false
// when r or s is zero (the caller moves to the next nonce).
func signK1WithNonce(d, k, e *secp256k1.ModNScalar) ([]byte, bool, error) {
	kG, err := blindedBaseMult(k)
	if err != nil {
		return nil, false, err
	}
	var r secp256k1.ModNScalar
	r.SetBytes(kG.X.Bytes()) // reduces x mod n
	if r.IsZero() {
		return nil, false, nil
	}
	u, err := randomScalar()
	if err != nil {
		return nil, false, err
	}
	var kinv secp256k1.ModNScalar
	kinv.Mul2(k, u).InverseNonConst().Mul(u) // (k·u)⁻¹·u = k⁻¹
	u.Zero()
	var s secp256k1.ModNScalar
	s.Mul2(d, &r).Add(e).Mul(&kinv)
	kinv.Zero()
	if s.IsZero() {
		return nil, false, nil
	}
	if s.IsOverHalfOrder() {
		s.Negate()
	}
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out, true, nil
}

// randomExtra returns 32 random bytes for hedged RFC 6979 nonces.
func randomExtra() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it aborts the program instead)
	return b
}
