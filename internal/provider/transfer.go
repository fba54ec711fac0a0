package provider

import (
	"context"
	"crypto"
	"fmt"
)

// Transfer is a BYOK key transfer (Key Vault's key_hsm, KEYVAULT-NOTES §1.7.6) as the keys
// domain hands it to a provider: the ciphertext of the transfer blob is
// RSA-OAEP(KEK, ephemeral AES key) ‖ AES-KWP(ephemeral key, target key), CKM_RSA_AES_KEY_WRAP
// in PKCS#11 terms, with the target key as PKCS #8 (RSA, EC) or raw bytes (AES).
type Transfer struct {
	// KEK is the handle of the key-exchange key, an RSA key of the same provider.
	KEK []byte
	// Hash is the OAEP hash, used for MGF1 as well: SHA-1 for CKM_RSA_AES_KEY_WRAP,
	// SHA-256 for RSA_AES_KEY_WRAP_256, SHA-384 for RSA_AES_KEY_WRAP_384.
	Hash crypto.Hash
	// Ciphertext is the blob's ciphertext.
	Ciphertext []byte
	// Type is the kty the target key must have (RSA-HSM, EC-HSM or oct-HSM), and Curve
	// its curve for EC-HSM.
	Type  KeyType
	Curve Curve
	// X and Y are the public point of an EC-HSM target (the request's JWK x and y), or
	// both empty: the provider then works the point out from the unwrapped key. Either way
	// it checks that the key signs for the point and keeps it as the key's public part.
	X, Y []byte
	// SecurityDomain marks a target key of a managed HSM pool (see KeySpec.SecurityDomain).
	SecurityDomain bool
}

// transferEncs maps a transfer blob's header.enc to the OAEP hash of its RSA half.
var transferEncs = map[string]crypto.Hash{
	"CKM_RSA_AES_KEY_WRAP": crypto.SHA1,
	"RSA_AES_KEY_WRAP_256": crypto.SHA256,
	"RSA_AES_KEY_WRAP_384": crypto.SHA384,
}

// TransferHash returns the OAEP hash (and MGF1 hash) of a transfer blob's enc:
// CKM_RSA_AES_KEY_WRAP (SHA-1), RSA_AES_KEY_WRAP_256 or RSA_AES_KEY_WRAP_384.
func TransferHash(enc string) (crypto.Hash, bool) {
	h, ok := transferEncs[enc]
	return h, ok
}

// TransferImporter is a Provider that unwraps BYOK transfers inside its key store: the
// target key is never in clear outside it and lands non-extractable.
type TransferImporter interface {
	// ImportTransfer unwraps t with the KEK and returns the imported key. Every failure of
	// the ciphertext (wrong KEK, wrong hash, tampering, truncation, a key that is not the
	// declared type or not acceptable) is exactly ErrTransfer; nothing is left behind.
	ImportTransfer(ctx context.Context, t Transfer) (Key, error)
}

// ErrTransfer is the one error of a BYOK transfer whose ciphertext cannot be imported with
// the KEK, whatever the cause, so the import answers no padding or format oracle. It wraps
// ErrInvalidKey.
var ErrTransfer = fmt.Errorf("%w: the key_hsm transfer blob cannot be unwrapped with its key-exchange key, or does not hold an acceptable key of the declared type", ErrInvalidKey)
