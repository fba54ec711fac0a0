package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Content types of a certificate's secret value.
const (
	ContentTypePKCS12 = "application/x-pkcs12"
	ContentTypePEM    = "application/x-pem-file"
)

// Encode renders a certificate's secret value: for ContentTypePKCS12 the standard base64 of a
// PFX with an empty password, for ContentTypePEM a "PRIVATE KEY" PKCS#8 block (when key is
// not nil) followed by CERTIFICATE blocks. chain is leaf first; key (*rsa.PrivateKey or
// *ecdsa.PrivateKey) must match the leaf, or be nil for the certificate chain only.
//
// The PFX uses PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and an HMAC-SHA-256 MAC, which
// OpenSSL 1.1.1+, Java 12+, Windows Server 2019+ and Go read with the empty password. A PFX
// without a key is written as go-pkcs12 writes trust stores: certificate bags marked as Java
// trusted certificates, with the subject as friendly name.
func Encode(contentType string, key crypto.PrivateKey, chain []*x509.Certificate) (string, error) {
	return EncodeAt(contentType, key, chain, 0)
}

// EncodeAt is Encode writing the leaf (chain[0]) at position leafAt among the others, as
// DecodeAt found it (preserveCertOrder): in PEM content and in a PFX without a key. A PFX
// with a key always holds the key's certificate first, then the others in order (the
// layout go-pkcs12 writes, whose localKeyId pairs the key with that certificate).
func EncodeAt(contentType string, key crypto.PrivateKey, chain []*x509.Certificate, leafAt int) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("encode certificate: the chain is empty: at least the leaf certificate is required")
	}
	if key != nil {
		if err := checkKeyMatches(key, chain[0]); err != nil {
			return "", fmt.Errorf("encode certificate: %w", err)
		}
	}
	switch contentType {
	case ContentTypePKCS12:
		var pfx []byte
		var err error
		if key == nil {
			pfx, err = pkcs12.Modern.EncodeTrustStore(InOrder(chain, leafAt), "")
		} else {
			pfx, err = pkcs12.Modern.Encode(key, chain[0], chain[1:], "")
		}
		if err != nil {
			return "", fmt.Errorf("encode certificate as PKCS#12: %w", err)
		}
		return base64.StdEncoding.EncodeToString(pfx), nil
	case ContentTypePEM:
		var buf bytes.Buffer
		if key != nil {
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return "", fmt.Errorf("encode certificate as PEM: private key: %w", err)
			}
			_ = pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		}
		for _, c := range InOrder(chain, leafAt) {
			_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return buf.String(), nil
	default:
		return "", fmt.Errorf("encode certificate: unsupported content type %q: use %s or %s", contentType, ContentTypePKCS12, ContentTypePEM)
	}
}

// checkKeyMatches checks that key is a supported private key whose public half is c's.
func checkKeyMatches(key crypto.PrivateKey, c *x509.Certificate) error {
	if err := checkKey(key); err != nil {
		return err
	}
	pub := key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(c.PublicKey) {
		return ErrKeyMismatch
	}
	return nil
}

// checkKey accepts RSA 2048–4096 bit and ECDSA P-256, P-384 and P-521 private keys.
func checkKey(key crypto.PrivateKey) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < 2048 || bits > 4096 {
			return fmt.Errorf("%w (this RSA key has %d bits)", ErrUnsupportedKey, bits)
		}
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().Name {
		case "P-256", "P-384", "P-521":
		default:
			return fmt.Errorf("%w (this EC key is on curve %s)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("%w (this key is a %T)", ErrUnsupportedKey, key)
	}
	return nil
}
