// Package soft is the software crypto provider: RSA (2048, 3072, 4096 bits, e = 65537) and
// EC (P-256, P-384, P-521, P-256K) keys held in process memory, with the Key Vault
// operations sign, verify, encrypt, decrypt, wrapKey and unwrapKey. oct keys and every -HSM
// type belong to an HSM-backed provider and are refused with provider.ErrUnsupported.
//
// A key's handle (handle.go) contains the private key; callers store it only through the
// barrier and never show it. Crypto comes only from the standard library, except secp256k1,
// which comes from github.com/decred/dcrd/dcrec/secp256k1/v4 with side-channel hardening of
// signing (k1.go).
//
// Threat model: the caller (the keys domain) is trusted; algorithm names, digests,
// signatures, plaintexts, ciphertexts and imported JWKs are attacker-controlled. Every input
// is validated before the key is used (algorithm for the key type and curve, then sizes);
// decrypt and unwrap report every ciphertext failure as the one provider.ErrDecrypt; errors
// never contain key bytes. Go cannot reliably erase memory, so key material lives until the
// garbage collector reuses it; the process is expected to disable core dumps (C9).
//
// This package must not import net/http, a storage backend or another Coffer package than
// provider.
package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/coffer-kms/coffer/internal/provider"
)

// Provider is the software provider. It holds no state: keys live in their handles.
type Provider struct{}

var _ provider.Provider = (*Provider)(nil)

// New returns the software provider.
func New() *Provider { return &Provider{} }

// Name returns "software".
func (*Provider) Name() string { return "software" }

// Generate creates an RSA key (Size 2048, 3072 or 4096; PublicExponent 0 or 65537) or an EC
// key (Curve P-256, P-384, P-521 or P-256K; Size 0 or the curve's size). Sizes, exponents,
// curves and key types outside these give provider.ErrUnsupported; a Curve on an RSA spec or
// a PublicExponent on an EC spec gives provider.ErrInvalidParameter. The keys domain applies
// Key Vault's defaults (2048 bits, P-256) before calling.
func (*Provider) Generate(ctx context.Context, spec provider.KeySpec) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch spec.Type {
	case provider.RSA:
		if spec.Curve != "" {
			return nil, fmt.Errorf("%w: an RSA key has no curve", provider.ErrInvalidParameter)
		}
		if !rsaSizes[spec.Size] {
			return nil, fmt.Errorf("%w: RSA key size %d: use 2048, 3072 or 4096", provider.ErrUnsupported, spec.Size)
		}
		if spec.PublicExponent != 0 && spec.PublicExponent != rsaExponent {
			return nil, fmt.Errorf("%w: RSA public exponent %d: only 65537 is offered", provider.ErrUnsupported, spec.PublicExponent)
		}
		priv, err := rsa.GenerateKey(rand.Reader, spec.Size)
		if err != nil {
			return nil, fmt.Errorf("soft: RSA key generation failed")
		}
		return asKey(exportableIf(spec.Exportable)(newRSAKey(priv)))
	case provider.EC:
		c, ok := curves[spec.Curve]
		if !ok {
			return nil, fmt.Errorf("%w: curve %.16q: use P-256, P-384, P-521 or P-256K", provider.ErrUnsupported, string(spec.Curve))
		}
		if spec.Size != 0 && spec.Size != c.bits {
			return nil, fmt.Errorf("%w: a %s key has %d bits, not %d", provider.ErrInvalidParameter, c.crv, c.bits, spec.Size)
		}
		if spec.PublicExponent != 0 {
			return nil, fmt.Errorf("%w: an EC key has no public exponent", provider.ErrInvalidParameter)
		}
		if c.nist == nil {
			priv, err := secp256k1.GeneratePrivateKey()
			if err != nil {
				return nil, fmt.Errorf("soft: EC key generation failed")
			}
			return asKey(exportableIf(spec.Exportable)(newK1Key(priv)))
		}
		priv, err := ecdsa.GenerateKey(c.nist, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("soft: EC key generation failed")
		}
		return asKey(exportableIf(spec.Exportable)(newECKey(priv, c)))
	case provider.Oct, provider.RSAHSM, provider.ECHSM, provider.OctHSM:
		return nil, fmt.Errorf("%w: the software provider does not create %s keys", provider.ErrUnsupported, spec.Type)
	default:
		return nil, fmt.Errorf("%w: key type %.16q is unknown", provider.ErrUnsupported, string(spec.Type))
	}
}

// Import validates a private RSA or EC JWK with Key Vault's import rules (importjwk.go:
// RSA 2048/3072/4096 bits, e = 65537, every CRT member present and consistent, no
// multi-prime; EC on a supported curve, coordinates of the field size, the point on the
// curve, d in [1, n−1] with d·G = (x, y)), then runs a pairwise sign/verify check before
// returning the key. Errors wrap provider.ErrInvalidKey (ErrUnsupported for oct, -HSM types,
// key_hsm and unknown curves) and never contain key bytes.
func (*Provider) Import(ctx context.Context, jwk *provider.JWK) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if jwk == nil {
		return nil, fmt.Errorf("%w: no JWK given", provider.ErrInvalidKey)
	}
	if err := checkKty(jwk); err != nil {
		return nil, err
	}
	var k *Key
	var err error
	if jwk.Kty == provider.RSA {
		k, err = importRSA(jwk)
	} else {
		k, err = importEC(jwk)
	}
	if err != nil {
		return nil, err
	}
	if err := k.pairwiseCheck(ctx); err != nil {
		return nil, err
	}
	return asKey(markExportable(k, jwk.Exportable))
}

// Load rebuilds a key from its handle. A handle that does not parse, has an unknown version
// or holds a key outside the policy gives provider.ErrInvalidKey, with no handle bytes in
// the error.
func (*Provider) Load(ctx context.Context, handle []byte) (provider.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return asKey(parseHandle(handle))
}

// Destroy has nothing to destroy: a software key is its handle, which the caller deletes.
func (*Provider) Destroy(context.Context, []byte) error { return nil }

// asKey converts without turning a nil *Key into a non-nil interface.
func asKey(k *Key, err error) (provider.Key, error) {
	if err != nil {
		return nil, err
	}
	return k, nil
}
