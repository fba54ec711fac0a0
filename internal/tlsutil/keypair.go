package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// maxPEMFile bounds how much of a certificate, key or CA file is read. Real files are a few
// kilobytes; the bound keeps a misconfigured path (a log file, a device) from being slurped.
const maxPEMFile = 1 << 20

// minRSABits is the smallest RSA modulus accepted for a serving certificate (N5).
const minRSABits = 2048

// fileState identifies one version of a file for change detection: modification time, size
// and a SHA-256 of the content, all taken from the same open file. err records a failure to
// read it, so that "still missing" is not mistaken for a change.
type fileState struct {
	modTime int64
	size    int64
	sum     [sha256.Size]byte
	err     string
}

// readFile reads path (at most maxPEMFile bytes) and reports its state. Errors name the path.
func readFile(path string) ([]byte, fileState, error) {
	fail := func(err error) ([]byte, fileState, error) {
		return nil, fileState{err: err.Error()}, err
	}
	f, err := os.Open(path) // #nosec G304 -- the path is operator configuration (certificate, key or CA file)
	if err != nil {
		return fail(err) // *fs.PathError: names the path
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("%s: not a regular file", path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return fail(fmt.Errorf("read %s: %w", path, err))
	}
	if len(data) > maxPEMFile {
		return fail(fmt.Errorf("%s: larger than %d bytes; not a PEM certificate or key", path, maxPEMFile))
	}
	return data, fileState{modTime: fi.ModTime().UnixNano(), size: fi.Size(), sum: sha256.Sum256(data)}, nil
}

// parsedPair is a certificate chain and its private key, parsed and checked to belong together.
type parsedPair struct {
	chain [][]byte // DER, leaf first
	leaf  *x509.Certificate
	key   crypto.Signer
}

// tlsCertificate returns the pair in the form crypto/tls serves.
func (p *parsedPair) tlsCertificate() *tls.Certificate {
	return &tls.Certificate{Certificate: p.chain, PrivateKey: p.key, Leaf: p.leaf}
}

// parsePair parses the PEM certificate chain in certPEM (read from certFile) and the PEM
// private key in keyPEM (read from keyFile) and checks that the key belongs to the first
// certificate. Errors name the file at fault; they never contain key bytes.
func parsePair(certFile string, certPEM []byte, keyFile string, keyPEM []byte) (*parsedPair, error) {
	var chain [][]byte
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("certificate file %s: no CERTIFICATE PEM block found", certFile)
	}
	var leaf *x509.Certificate
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate file %s: certificate %d: %w", certFile, i+1, err)
		}
		if i == 0 {
			leaf = c
		}
	}

	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("key file %s does not match the certificate in %s", keyFile, certFile)
	}
	return &parsedPair{chain: chain, leaf: leaf, key: key}, nil
}

// parsePrivateKey returns the first private key in keyPEM (PKCS#8, PKCS#1 or SEC 1).
func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	rest := keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PRIVATE KEY PEM block found")
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		if _, encrypted := b.Headers["Proc-Type"]; encrypted {
			return nil, errors.New("encrypted PEM private keys are not supported")
		}
		var key any
		var err error
		switch b.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
	}
}

// checkServing checks that a parsed pair may serve TLS at now: currently valid, strong
// enough (RSA ≥ 2048 bits, ECDSA on P-256/384/521, or Ed25519) and not restricted to
// purposes other than server authentication.
func checkServing(certFile string, p *parsedPair, now time.Time) error {
	leaf := p.leaf
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("certificate file %s is not yet valid (notBefore %s, now %s)",
			certFile, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("certificate file %s has expired (notAfter %s, now %s)",
			certFile, leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	switch k := p.key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("certificate file %s: RSA key of %d bits; at least %d required", certFile, bits, minRSABits)
		}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("certificate file %s: ECDSA curve %s not supported; use P-256, P-384 or P-521",
				certFile, k.Curve.Params().Name)
		}
	}
	if len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0 {
		ok := false
		for _, u := range leaf.ExtKeyUsage {
			if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("certificate file %s is not for TLS servers: its extended key usage lacks serverAuth", certFile)
		}
	}
	return nil
}

// fingerprint returns the hex SHA-256 of a certificate's DER, as shown by most tools.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
