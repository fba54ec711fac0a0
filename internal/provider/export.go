package provider

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
)

// Exporter is implemented by keys whose material secure key release may hand out — wrapped,
// never in clear. Only keys made with KeySpec.Exportable (or imported with JWK.Exportable)
// release anything; the keys domain checks the version's exportable attribute and release
// policy first, so this is the provider's own second lock.
type Exporter interface {
	// ExportWrapped returns the key wrapped to a TEE's RSA public key in the
	// CKM_RSA_AES_KEY_WRAP form of transfer.go: RSA-OAEP(to, h; fresh AES-256 key) ‖
	// AES-KWP(that key; the private key as PKCS #8 (RSA, EC) or raw bytes (oct)). h is the
	// OAEP and MGF1 hash (TransferHash). A key that was not made exportable fails with
	// ErrNotExportable; a key type that cannot be encoded with ErrUnsupported.
	ExportWrapped(ctx context.Context, to *rsa.PublicKey, h crypto.Hash) ([]byte, error)
}

// ErrNotExportable is returned by ExportWrapped for a key not made exportable.
var ErrNotExportable = errors.New("the key is not exportable")
