package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/coffer-kms/coffer/internal/provider"
)

// PublicKey is the public half of a software key: it verifies and encrypts. Every Key
// embeds one, so a Key's Verify, Encrypt and WrapKey are these methods (one code path for
// keys with and without their private half). A PublicKey is immutable and safe for
// concurrent use.
type PublicKey struct {
	kty   provider.KeyType
	bits  int
	curve *curveInfo // EC only
	rsa   *rsa.PublicKey
	ec    *ecdsa.PublicKey
	k1    *secp256k1.PublicKey
}

// ImportPublic validates a public JWK with the same rules Import applies to the public part
// of a private JWK (RSA 2048/3072/4096 bits with e = 65537; EC points on their curve with
// coordinates of the field size) and returns a key that can verify and encrypt. A JWK with
// private members is refused: private keys go through Provider.Import.
func ImportPublic(jwk *provider.JWK) (*PublicKey, error) {
	if jwk == nil {
		return nil, fmt.Errorf("%w: no JWK given", provider.ErrInvalidKey)
	}
	if jwk.Private() {
		return nil, fmt.Errorf("%w: ImportPublic takes a public JWK; this one has private members", provider.ErrInvalidKey)
	}
	if err := checkKty(jwk); err != nil {
		return nil, err
	}
	if jwk.Kty == provider.RSA {
		return rsaPublicFromJWK(jwk)
	}
	return ecPublicFromJWK(jwk)
}

// Type returns RSA or EC.
func (k *PublicKey) Type() provider.KeyType { return k.kty }

// Size returns the modulus size of an RSA key or the curve size of an EC key, in bits.
func (k *PublicKey) Size() int { return k.bits }

// Curve returns the curve of an EC key, "" for RSA.
func (k *PublicKey) Curve() provider.Curve {
	if k.curve == nil {
		return ""
	}
	return k.curve.crv
}

// Public returns the public JWK: n and e for RSA (n without leading zeros, e minimal), crv,
// x and y for EC (x and y of the field size). It has no private members.
func (k *PublicKey) Public() *provider.JWK {
	j := &provider.JWK{Kty: k.kty}
	switch {
	case k.rsa != nil:
		j.N = k.rsa.N.Bytes()
		j.E = big.NewInt(int64(k.rsa.E)).Bytes()
	default:
		pt := k.uncompressed()
		j.Crv = k.curve.crv
		j.X = pt[1 : 1+k.curve.size]
		j.Y = pt[1+k.curve.size:]
	}
	return j
}

// uncompressed returns 04 ‖ x ‖ y of an EC key.
func (k *PublicKey) uncompressed() []byte {
	if k.k1 != nil {
		return k.k1.SerializeUncompressed()
	}
	b, err := k.ec.Bytes()
	if err != nil {
		// Unreachable: every ec key was built from a validated point.
		panic("soft: invalid EC public key")
	}
	return b
}

// modulusLen is k, the byte length of an RSA modulus.
func (k *PublicKey) modulusLen() int { return (k.rsa.N.BitLen() + 7) / 8 }

// sigLen is the length of a signature by this key: k for RSA, 2·size for EC (raw r ‖ s).
func (k *PublicKey) sigLen() int {
	if k.rsa != nil {
		return k.modulusLen()
	}
	return 2 * k.curve.size
}

// Verify checks signature over digest. A signature of the right length that does not verify
// gives (false, nil); a signature of another length (for EC: DER instead of raw r ‖ s) gives
// ErrInvalidParameter, as do a wrong digest length; an algorithm that does not fit the key
// gives ErrWrongKeyType.
func (k *PublicKey) Verify(_ context.Context, alg string, digest, signature []byte) (bool, error) {
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
	case k.k1 != nil:
		return verifyK1(k.k1, digest, signature), nil
	default:
		n := k.curve.size
		r := new(big.Int).SetBytes(signature[:n])
		s := new(big.Int).SetBytes(signature[n:])
		return ecdsa.Verify(k.ec, digest, r, s), nil
	}
}

// verifyK1 verifies a raw r ‖ s secp256k1 signature; r or s outside [1, n−1] is a bad
// signature.
func verifyK1(pub *secp256k1.PublicKey, digest, signature []byte) bool {
	var rb, sb [32]byte
	copy(rb[:], signature[:32])
	copy(sb[:], signature[32:])
	var r, s secp256k1.ModNScalar
	if r.SetBytes(&rb) != 0 || s.SetBytes(&sb) != 0 || r.IsZero() || s.IsZero() {
		return false
	}
	return k1ecdsa.NewSignature(&r, &s).Verify(digest, pub)
}

// Encrypt encrypts p.Value with RSA1_5, RSA-OAEP or RSA-OAEP-256. The plaintext may be at
// most k−11 bytes (RSA1_5) or k−2·hLen−2 bytes (OAEP); EC keys and AES algorithms give
// ErrWrongKeyType.
func (k *PublicKey) Encrypt(_ context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	return k.encrypt(p, "encrypt")
}

// WrapKey is Encrypt for key material: the same algorithms and limits, and the value must
// not be empty.
func (k *PublicKey) WrapKey(_ context.Context, p provider.EncryptParams) (provider.EncryptResult, error) {
	return k.encrypt(p, "wrapKey")
}

func (k *PublicKey) encrypt(p provider.EncryptParams, op string) (provider.EncryptResult, error) {
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
		// PKCS #1 v1.5 encryption is deprecated in Go for the decryption oracle it invites;
		// Key Vault offers RSA1_5, so Coffer does too (see Key.Decrypt for the oracle).
		//lint:ignore SA1019 Key Vault's RSA1_5
		out, err = rsa.EncryptPKCS1v15(rand.Reader, k.rsa, p.Value)
	}
	if err != nil {
		return provider.EncryptResult{}, errors.New("soft: RSA encryption failed")
	}
	return provider.EncryptResult{Value: out}, nil
}
