package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Key is a software key: the private half in process memory and the embedded PublicKey. Its
// methods validate the algorithm against the key type and curve, then the digest, signature
// and plaintext sizes, before the key is used. A Key is immutable and safe for concurrent
// use.
type Key struct {
	*PublicKey
	rsaPriv *rsa.PrivateKey
	ecPriv  *ecdsa.PrivateKey
	k1Priv  *secp256k1.PrivateKey
	handle  []byte
	// exportable keys implement provider.Exporter's ExportWrapped (export.go).
	exportable bool
}

var _ provider.Key = (*Key)(nil)

func newRSAKey(priv *rsa.PrivateKey) (*Key, error) {
	pub := &PublicKey{kty: provider.RSA, bits: priv.N.BitLen(), rsa: &priv.PublicKey}
	k := &Key{PublicKey: pub, rsaPriv: priv}
	return k, k.seal()
}

func newECKey(priv *ecdsa.PrivateKey, c *curveInfo) (*Key, error) {
	pub := &PublicKey{kty: provider.EC, bits: c.bits, curve: c, ec: &priv.PublicKey}
	k := &Key{PublicKey: pub, ecPriv: priv}
	return k, k.seal()
}

func newK1Key(priv *secp256k1.PrivateKey) (*Key, error) {
	pubK1, err := k1PublicKey(priv)
	if err != nil {
		return nil, err
	}
	pub := &PublicKey{kty: provider.EC, bits: 256, curve: curves[provider.P256K], k1: pubK1}
	k := &Key{PublicKey: pub, k1Priv: priv}
	return k, k.seal()
}

// seal computes the handle once; Handle hands out copies.
func (k *Key) seal() error {
	h, err := marshalHandle(k)
	if err != nil {
		return err
	}
	k.handle = h
	return nil
}

// Handle returns the versioned handle document (see handle.go). It contains the private key:
// the caller stores it only through the barrier and never shows it.
func (k *Key) Handle() []byte { return append([]byte(nil), k.handle...) }

// Sign signs digest: RS256/384/512 and PS256/384/512 (salt length = hash length) with RSA
// keys, ES256/ES384/ES512/ES256K with P-256/P-384/P-521/P-256K keys. EC signatures are raw
// r ‖ s, each of the curve's size. ECDSA nonces are hedged: crypto/ecdsa mixes fresh
// randomness with the key and digest, and secp256k1 uses RFC 6979 with random additional
// data (k1.go).
func (k *Key) Sign(_ context.Context, alg string, digest []byte) ([]byte, error) {
	a, err := k.checkSigAlg(alg, digest)
	if err != nil {
		return nil, err
	}
	var sig []byte
	switch {
	case a.PSS:
		sig, err = rsa.SignPSS(rand.Reader, k.rsaPriv, a.Hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case a.RSA:
		sig, err = rsa.SignPKCS1v15(nil, k.rsaPriv, a.Hash, digest)
	case k.k1Priv != nil:
		sig, err = signK1(k.k1Priv, digest, randomExtra())
	default:
		var der []byte
		if der, err = ecdsa.SignASN1(rand.Reader, k.ecPriv, digest); err == nil {
			sig, err = rawSignature(der, k.curve.size)
		}
	}
	if err != nil {
		// Not reachable with validated keys and inputs; the cause is not shown (it could
		// only be an internal failure, never bad input).
		return nil, errors.New("soft: signing failed")
	}
	return sig, nil
}

// Decrypt decrypts p.Value with RSA1_5, RSA-OAEP or RSA-OAEP-256. An algorithm that does not
// fit the key, or an iv/aad/tag, is refused with its own error before the key is touched;
// after that, every failure (wrong length, value ≥ n, bad padding) is exactly
// provider.ErrDecrypt, the same value whatever the cause.
//
// RSA1_5 is the Bleichenbacher/Marvin case (SECURITY-NOTES C1). crypto/rsa checks the
// padding in constant time, and this method reports every failure identically, but whether
// a decryption failed at all is the oracle itself: it is visible to the caller by design of
// Key Vault's API (Go deprecates DecryptPKCS1v15 for exactly this reason). The residual
// risks are timing differences outside crypto/rsa (allocation of the result, the HTTP
// layer) and the oracle's existence; mitigations live above the provider: the server's
// --disable-rsa1_5 refuses the algorithm (keys.Service.DisableRSA15), every call is
// audited, and the tenant's rate limit bounds the queries (there is no per-key failure
// alarm yet). tools/dudect measures the timing (docs/SECURITY.md). Implicit
// rejection (returning random bytes instead of an error) would break Key Vault clients
// that rely on the error, so it is not done here.
func (k *Key) Decrypt(_ context.Context, p provider.EncryptParams) ([]byte, error) {
	return k.decrypt(p)
}

// UnwrapKey is Decrypt for wrapped keys: the same algorithms and the same single error.
func (k *Key) UnwrapKey(_ context.Context, p provider.EncryptParams) ([]byte, error) {
	return k.decrypt(p)
}

func (k *Key) decrypt(p provider.EncryptParams) ([]byte, error) {
	a, err := k.checkEncAlg(p)
	if err != nil {
		return nil, err
	}
	if len(p.Value) != k.modulusLen() {
		return nil, provider.ErrDecrypt
	}
	var out []byte
	if a.OAEP {
		out, err = rsa.DecryptOAEP(a.Hash.New(), nil, k.rsaPriv, p.Value, nil)
	} else {
		//lint:ignore SA1019 Key Vault's RSA1_5; see the comment on Decrypt
		out, err = rsa.DecryptPKCS1v15(nil, k.rsaPriv, p.Value)
	}
	if err != nil {
		return nil, provider.ErrDecrypt
	}
	return out, nil
}

// pairwiseCheck signs a random digest and verifies it through the public path, so a key
// whose halves do not match is refused at import (SECURITY-NOTES I8).
func (k *Key) pairwiseCheck(ctx context.Context) error {
	alg := provider.AlgPS256
	if k.curve != nil {
		alg = k.curve.alg
	}
	a, _ := provider.SignatureAlg(alg)
	digest := make([]byte, a.Hash.Size())
	_, _ = rand.Read(digest)
	sig, err := k.Sign(ctx, alg, digest)
	if err != nil {
		return fmt.Errorf("%w: pairwise consistency check failed", provider.ErrInvalidKey)
	}
	if ok, err := k.Verify(ctx, alg, digest, sig); err != nil || !ok {
		return fmt.Errorf("%w: pairwise consistency check failed: the private key does not match the public key", provider.ErrInvalidKey)
	}
	return nil
}

// rawSignature turns an ASN.1 ECDSA signature into JWS's r ‖ s, each left-padded to size
// bytes. (ecdsa.Sign would parse the same DER into two big.Ints: ~3 µs more per signature.)
func rawSignature(der []byte, size int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() {
		return nil, errors.New("soft: malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	for i, v := range [][]byte{r, s} {
		for len(v) > 0 && v[0] == 0 { // the sign byte, and any padding
			v = v[1:]
		}
		if len(v) == 0 || len(v) > size {
			return nil, errors.New("soft: malformed ECDSA signature")
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
	}
	return out, nil
}
