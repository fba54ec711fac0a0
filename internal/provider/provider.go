// Package provider owns the crypto-provider boundary: every key operation of Coffer goes
// through a Provider, so key material stays behind it. The software provider (soft) keeps
// keys in process memory and hands the domain an opaque handle to store (sealed by the
// barrier); the PKCS#11 provider (pkcs11) keeps them in an HSM token and hands out
// only object references. Callers never see private key material.
//
// Threat model: callers are trusted Coffer code, inputs are attacker-controlled request
// fields. A provider validates every parameter (algorithm for the key type, digest length,
// IV and tag sizes, plaintext bounds) before touching key material, and reports every
// decryption or unwrap failure as the single ErrDecrypt so no padding oracle is exposed.
//
// This package must not import net/http or a storage backend.
package provider

import (
	"context"
	"errors"
)

// KeyType is a Key Vault key type (kty).
type KeyType string

// Key types. The -HSM types are served only by an HSM-backed provider.
const (
	RSA    KeyType = "RSA"
	EC     KeyType = "EC"
	Oct    KeyType = "oct"
	RSAHSM KeyType = "RSA-HSM"
	ECHSM  KeyType = "EC-HSM"
	OctHSM KeyType = "oct-HSM"
)

// Curve is a Key Vault elliptic curve name (crv).
type Curve string

// Curves.
const (
	P256  Curve = "P-256"
	P384  Curve = "P-384"
	P521  Curve = "P-521"
	P256K Curve = "P-256K"
)

// Errors. Every error a provider returns wraps one of these, so the api layer maps them to
// Key Vault's codes with one table.
var (
	// ErrUnsupported: the key type, size, curve or algorithm is not offered (400 BadParameter).
	ErrUnsupported = errors.New("not supported")
	// ErrInvalidParameter: a malformed or out-of-range input (400 BadParameter).
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrWrongKeyType: the algorithm does not fit this key (400 BadParameter, Key Vault's
	// "Key and algorithm are not compatible").
	ErrWrongKeyType = errors.New("the algorithm is not valid for this key type")
	// ErrDecrypt is the one error of every failed decrypt or unwrap, whatever the cause.
	ErrDecrypt = errors.New("decryption failed")
	// ErrInvalidKey: imported key material is malformed, weak or inconsistent (400).
	ErrInvalidKey = errors.New("invalid key material")
	// ErrUnavailable: the key store behind the provider (an HSM token) failed or is gone
	// (503); a provider never falls back to another key store.
	ErrUnavailable = errors.New("the key store is unavailable")
	// ErrKeyGone: the key store answers but no longer holds the key a handle refers to (its
	// token object was destroyed outside the key's own purge). Retrying cannot help, so it
	// is not ErrUnavailable; the keys domain reports it as a 404 naming the key version.
	ErrKeyGone = errors.New("the key material is no longer in its key store")
)

// KeySpec describes a key to generate.
type KeySpec struct {
	Type           KeyType
	Size           int   // RSA modulus bits (2048, 3072, 4096) or oct bits (128, 192, 256)
	Curve          Curve // EC only
	PublicExponent int   // RSA only; 0 means 65537
	Exportable     bool  // a key that secure key release may export (provider.Exporter)
	// Store names where the key will live: "vaults/<vault>" or "managedhsms/<pool>"
	// (lower case), filled by the keys domain. Providers ignore it; the server's routing
	// provider sends a pool's HSM keys to the pool's own PKCS#11 token by it.
	Store string
	// SecurityDomain marks a key of a managed HSM pool, or of a vault's certificate (set by
	// the keys domain). A provider that is a DomainWrapper makes such a key wrappable only
	// by a trusted wrapping key (a pool's security-domain key, a tenant's certificate
	// wrapping key); others ignore it.
	SecurityDomain bool
}

// EncryptParams are the inputs of encrypt/decrypt and wrap/unwrap.
type EncryptParams struct {
	Algorithm string // e.g. RSA-OAEP-256, A256GCM
	Value     []byte // plaintext (encrypt, wrap) or ciphertext (decrypt, unwrap)
	IV        []byte
	AAD       []byte
	Tag       []byte
	// BeforeRandomIV, if set, is called by Encrypt once the parameters are checked and
	// just before an encryption under an IV the provider draws at random (AES-GCM); an
	// error refuses the encryption and is returned as it is. The keys service counts
	// invocations with it (SECURITY-NOTES C4), so a request refused for its parameters
	// counts nothing and writes nothing.
	BeforeRandomIV func() error
}

// EncryptResult is the output of encrypt/wrap (ciphertext with IV and tag for AES modes).
type EncryptResult struct {
	Value []byte
	IV    []byte
	Tag   []byte
	AAD   []byte
}

// Provider creates and loads keys.
type Provider interface {
	// Name is "software" or "pkcs11".
	Name() string
	// Generate creates a key.
	Generate(ctx context.Context, spec KeySpec) (Key, error)
	// Import takes a private JWK (validated, Key Vault's import rules) and returns the key.
	Import(ctx context.Context, jwk *JWK) (Key, error)
	// Load rebuilds a key from the handle an earlier Generate or Import returned.
	Load(ctx context.Context, handle []byte) (Key, error)
	// Destroy removes the key material a handle refers to (purge). The software provider has
	// nothing to destroy beyond the stored handle itself.
	Destroy(ctx context.Context, handle []byte) error
}

// Key is a key held by a provider. Its methods validate the algorithm against the key type and
// every parameter before using the key.
type Key interface {
	// Handle is what the caller stores to Load the key again. For the software provider it
	// contains the private key and must only be stored through the barrier; it never appears
	// in a response, log or error.
	Handle() []byte
	// Public returns the public JWK (no private members; none at all for oct keys, whose
	// JWK carries only kty and key_ops).
	Public() *JWK
	// Type, Size and Curve describe the key.
	Type() KeyType
	Size() int
	Curve() Curve
	// Sign signs a digest (RS*/PS*/ES* algorithms; digest length must match the hash).
	Sign(ctx context.Context, alg string, digest []byte) ([]byte, error)
	// Verify checks a signature over a digest.
	Verify(ctx context.Context, alg string, digest, signature []byte) (bool, error)
	// Encrypt, Decrypt, WrapKey and UnwrapKey implement Key Vault's operations of those
	// names. Decrypt and UnwrapKey fail only with ErrDecrypt for bad ciphertext.
	Encrypt(ctx context.Context, p EncryptParams) (EncryptResult, error)
	Decrypt(ctx context.Context, p EncryptParams) ([]byte, error)
	WrapKey(ctx context.Context, p EncryptParams) (EncryptResult, error)
	UnwrapKey(ctx context.Context, p EncryptParams) ([]byte, error)
}
