package soft

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/provider"
)

var _ provider.Exporter = (*Key)(nil)

// markExportable returns k made exportable when exportable is set (its handle then records
// it, so Load keeps the mark); otherwise k unchanged.
func markExportable(k *Key, exportable bool) (*Key, error) {
	if !exportable {
		return k, nil
	}
	k.exportable = true
	return k, k.seal()
}

// exportableIf adapts markExportable to a constructor's (key, error) result.
func exportableIf(exportable bool) func(*Key, error) (*Key, error) {
	return func(k *Key, err error) (*Key, error) {
		if err != nil {
			return nil, err
		}
		return markExportable(k, exportable)
	}
}

// ExportWrapped wraps the private key (PKCS #8) to the TEE's RSA key in the
// CKM_RSA_AES_KEY_WRAP form (byok.Ciphertext: RSA-OAEP with h of a fresh AES-256 key ‖
// RFC 5649 key wrap). Keys not made exportable give provider.ErrNotExportable; secp256k1
// keys, which PKCS #8 cannot name, give provider.ErrUnsupported. The clear PKCS #8 bytes are
// wiped before returning.
func (k *Key) ExportWrapped(ctx context.Context, to *rsa.PublicKey, h crypto.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !k.exportable {
		return nil, provider.ErrNotExportable
	}
	if to == nil || to.N.BitLen() < 2048 {
		return nil, fmt.Errorf("%w: the wrapping key must be RSA of at least 2048 bits", provider.ErrInvalidParameter)
	}
	var der []byte
	var err error
	switch {
	case k.rsaPriv != nil:
		der, err = x509.MarshalPKCS8PrivateKey(k.rsaPriv)
	case k.ecPriv != nil:
		der, err = x509.MarshalPKCS8PrivateKey(k.ecPriv)
	default:
		return nil, fmt.Errorf("%w: P-256K keys have no PKCS #8 form and cannot be released", provider.ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("soft: encoding the key for release failed")
	}
	defer clear(der)
	out, err := byok.Ciphertext(to, h, der)
	if err != nil {
		return nil, fmt.Errorf("%w: wrapping for release failed", provider.ErrInvalidParameter)
	}
	return out, nil
}
