package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// MaxContent is the largest certificate content Decode accepts, after base64 decoding.
const MaxContent = 64 << 10

// Errors returned by Decode (wrapped with details; test with errors.Is). A PFX whose
// MAC-protected content was damaged also fails its MAC check and so reports
// ErrWrongPassword: PKCS#12 cannot tell the two apart.
var (
	ErrWrongPassword  = errors.New("the password does not open the PFX")
	ErrCorrupt        = errors.New("the certificate content is not a readable PFX or PEM file")
	ErrKeyMismatch    = errors.New("the private key does not match the certificate")
	ErrNoCertificate  = errors.New("the certificate content holds no certificate")
	ErrNoPrivateKey   = errors.New("the certificate content holds no private key: import the certificate together with its private key")
	ErrUnsupportedKey = errors.New("unsupported key: use an RSA key of 2048 to 4096 bits or an ECDSA key on P-256, P-384 or P-521")
	ErrEncryptedKey   = errors.New("the PEM private key is encrypted: import it unencrypted (openssl pkey -in key.pem) or as a password-protected PFX")
	ErrTooLarge       = fmt.Errorf("the certificate content is larger than %d KiB", MaxContent>>10)
)

// Decode parses imported certificate content: value is either base64 (standard or URL-safe,
// padded or not, whitespace ignored) of a PFX/PKCS#12 opened with password (which may be
// ""), or PEM text (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY"
// and CERTIFICATE blocks; "EC PARAMETERS" blocks are skipped, base64 of PEM text is accepted
// too). It returns the private key (*rsa.PrivateKey or *ecdsa.PrivateKey), the chain with
// the certificate matching the key first (the rest in given order), and the detected content
// type (ContentTypePKCS12 or ContentTypePEM). password is not used for PEM content.
//
// Errors wrap ErrWrongPassword, ErrCorrupt, ErrKeyMismatch, ErrNoCertificate,
// ErrNoPrivateKey, ErrUnsupportedKey, ErrEncryptedKey or ErrTooLarge; none carries key
// bytes.
func Decode(value string, password string) (key crypto.PrivateKey, chain []*x509.Certificate, contentType string, err error) {
	key, chain, _, contentType, err = DecodeAt(value, password)
	return key, chain, contentType, err
}

// DecodeAt is Decode that also reports the position leafAt the leaf had among the
// certificates as given (PEM blocks, or PFX certificate bags, in their order), so that
// EncodeAt can write them in that order again (preserveCertOrder).
func DecodeAt(value string, password string) (key crypto.PrivateKey, chain []*x509.Certificate, leafAt int, contentType string, err error) {
	// Base64 of MaxContent bytes with line breaks stays well below twice its size.
	if len(value) > 2*MaxContent {
		return nil, nil, 0, "", ErrTooLarge
	}
	text := strings.TrimSpace(value)
	contentType = ContentTypePEM
	if !strings.HasPrefix(text, "-----BEGIN") && !strings.Contains(text, "\n-----BEGIN") {
		raw, err := decodeBase64(text)
		if err != nil {
			return nil, nil, 0, "", err
		}
		if len(raw) > MaxContent {
			return nil, nil, 0, "", ErrTooLarge
		}
		if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("-----BEGIN")) {
			key, chain, leafAt, err = decodePFX(raw, password)
			if err != nil {
				return nil, nil, 0, "", err
			}
			return key, chain, leafAt, ContentTypePKCS12, nil
		}
		text = string(raw)
	}
	if len(text) > MaxContent {
		return nil, nil, 0, "", ErrTooLarge
	}
	key, chain, leafAt, err = decodePEM(text)
	if err != nil {
		return nil, nil, 0, "", err
	}
	return key, chain, leafAt, contentType, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, fmt.Errorf("%w: the value is empty", ErrCorrupt)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	return nil, fmt.Errorf("%w: the value is neither PEM text nor base64", ErrCorrupt)
}

func decodePFX(raw []byte, password string) (crypto.PrivateKey, []*x509.Certificate, int, error) {
	if err := checkIterations(raw, 0); err != nil {
		return nil, nil, 0, err
	}
	key, leaf, cas, err := pkcs12.DecodeChain(raw, password)
	if err != nil {
		// go-pkcs12 reports these two with plain errors.New values.
		switch {
		case errors.Is(err, pkcs12.ErrIncorrectPassword):
			return nil, nil, 0, ErrWrongPassword
		case err.Error() == "pkcs12: private key missing":
			return nil, nil, 0, ErrNoPrivateKey
		case err.Error() == "pkcs12: certificate missing":
			return nil, nil, 0, ErrNoCertificate
		}
		return nil, nil, 0, fmt.Errorf("%w: PFX: %v", ErrCorrupt, err)
	}
	// DecodeChain's certificate is the first certificate bag, cas the others in order.
	return orderChain(key, append([]*x509.Certificate{leaf}, cas...))
}

func decodePEM(text string) (crypto.PrivateKey, []*x509.Certificate, int, error) {
	var (
		key    crypto.PrivateKey
		certs  []*x509.Certificate
		rest   = []byte(text)
		blocks int
	)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks++
		if b.Headers["Proc-Type"] != "" || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, nil, 0, ErrEncryptedKey
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%w: PEM certificate %d: %v", ErrCorrupt, len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				return nil, nil, 0, fmt.Errorf("%w: more than one private key: import one key with its certificate chain", ErrCorrupt)
			}
			k, err := parsePEMKey(b)
			if err != nil {
				return nil, nil, 0, err
			}
			key = k
		case "EC PARAMETERS":
		default:
			return nil, nil, 0, fmt.Errorf("%w: unexpected PEM block %q: only PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY and CERTIFICATE blocks are read", ErrCorrupt, truncate(b.Type, 40))
		}
	}
	if key == nil && len(certs) == 0 {
		return nil, nil, 0, fmt.Errorf("%w: no PEM blocks found", ErrCorrupt)
	}
	// pem.Decode skips what is not a whole block: text before and between blocks (openssl's
	// "Bag Attributes", RFC 7468 explanatory text) is fine, but a block it skipped (a
	// truncated or damaged BEGIN ... END) or text after the last block would be dropped
	// silently, so that the import is not of what was sent.
	if strings.Count(text, "-----BEGIN") != blocks {
		return nil, nil, 0, fmt.Errorf("%w: a PEM block is truncated or damaged (a BEGIN line without its END line, or a bad base64 body): send every block whole", ErrCorrupt)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, 0, fmt.Errorf("%w: text after the last PEM block: send only PEM blocks (END line last)", ErrCorrupt)
	}
	if len(certs) == 0 {
		return nil, nil, 0, ErrNoCertificate
	}
	if key == nil {
		return nil, nil, 0, ErrNoPrivateKey
	}
	return orderChain(key, certs)
}

func parsePEMKey(b *pem.Block) (crypto.PrivateKey, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParseECPrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: PEM %s block: %v", ErrCorrupt, b.Type, err)
	}
	return k, nil
}

// orderChain checks the key and moves the certificate it matches to the front; leafAt is
// where that certificate was.
func orderChain(key crypto.PrivateKey, certs []*x509.Certificate) (crypto.PrivateKey, []*x509.Certificate, int, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, 0, err
	}
	for i, c := range certs {
		if checkKeyMatches(key, c) == nil {
			return key, LeafFirst(certs, i), i, nil
		}
	}
	return nil, nil, 0, ErrKeyMismatch
}

// LeafFirst returns certs with certs[leafAt] moved to the front, the others in order.
func LeafFirst(certs []*x509.Certificate, leafAt int) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(certs))
	out = append(out, certs[leafAt])
	out = append(out, certs[:leafAt]...)
	return append(out, certs[leafAt+1:]...)
}

// InOrder undoes LeafFirst: chain (leaf first) with the leaf put back at position leafAt.
// A leafAt out of range leaves the leaf first.
func InOrder(chain []*x509.Certificate, leafAt int) []*x509.Certificate {
	if leafAt <= 0 || leafAt >= len(chain) {
		return chain
	}
	out := make([]*x509.Certificate, 0, len(chain))
	out = append(out, chain[1:leafAt+1]...)
	out = append(out, chain[0])
	return append(out, chain[leafAt+1:]...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
