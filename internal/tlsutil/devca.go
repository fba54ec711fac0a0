package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the files EnsureDevCA keeps in its directory.
const (
	devCACertName = "ca.pem"
	devCAKeyName  = "ca-key.pem"
	devCertName   = "server.pem"
	devKeyName    = "server-key.pem"
)

// Lifetimes and renewal thresholds of the development CA and leaf.
const (
	devCAYears      = 10
	devLeafYears    = 1
	devBackdate     = 5 * time.Minute     // tolerate small clock differences between peers
	devLeafMinLeft  = 30 * 24 * time.Hour // re-issue a leaf with this little time left (F4: ≥ 30-day leafs)
	devSerialBits   = 128                 // random serial size (F4: ≥ 64 bits)
	devCACommonName = "Coffer development CA (NOT FOR PRODUCTION)"
)

// DevFiles holds the paths of the files EnsureDevCA manages.
type DevFiles struct {
	CACert string // ca.pem: the development CA certificate; give it to clients as their trust root
	CAKey  string // ca-key.pem: the CA private key, mode 0600
	Cert   string // server.pem: the server certificate, issued by the CA
	Key    string // server-key.pem: the server private key, mode 0600
}

// DefaultDevHosts returns the names the development certificate covers by default:
// localhost, every vault host under *.localhost, and the IPv4 and IPv6 loopback addresses.
func DefaultDevHosts() []string {
	return []string{"localhost", "*.localhost", "127.0.0.1", "::1"}
}

// EnsureDevCA makes dir hold a development CA and a server certificate it issued for hosts
// (DNS names, wildcards like *.localhost, or IP addresses; empty means DefaultDevHosts), as
// of now. Keys are ECDSA P-256; serials are 128-bit random; the CA lives 10 years (path
// length 0), the leaf 1 year with serverAuth only, both backdated 5 minutes.
//
// Existing files are reused when the leaf still has more than 30 days to live, chains to
// the CA and covers every host. Otherwise the leaf is re-issued, and the CA too if it is
// missing, broken, or would expire within a fresh leaf's lifetime (re-issuing the CA means
// clients must trust the new ca.pem). A reused key file readable by others is chmod-ed to
// 0600. Files are replaced atomically (temporary file, fsync, rename, directory fsync), so a
// crash leaves either the old file or the new one, never a torn one; a crash between a key
// and its certificate leaves a mismatched pair, which the next call repairs.
//
// An existing file that cannot be read (other than not existing) is an error rather than
// something to overwrite.
func EnsureDevCA(dir string, hosts []string, now time.Time) (DevFiles, error) {
	if len(hosts) == 0 {
		hosts = DefaultDevHosts()
	}
	dnsNames, ips, err := splitHosts(hosts)
	if err != nil {
		return DevFiles{}, err
	}
	files := DevFiles{
		CACert: filepath.Join(dir, devCACertName),
		CAKey:  filepath.Join(dir, devCAKeyName),
		Cert:   filepath.Join(dir, devCertName),
		Key:    filepath.Join(dir, devKeyName),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevFiles{}, fmt.Errorf("tlsutil: dev CA directory: %w", err)
	}

	ca, err := loadDevPair(files.CACert, files.CAKey)
	if err != nil {
		return DevFiles{}, err
	}
	if ca != nil && !devCAUsable(ca, now) {
		ca = nil
	}
	if ca == nil {
		if ca, err = issueDevCA(files, now); err != nil {
			return DevFiles{}, err
		}
	} else {
		if err := tightenKeyMode(files.CAKey); err != nil {
			return DevFiles{}, err
		}
		leaf, err := loadDevPair(files.Cert, files.Key)
		if err != nil {
			return DevFiles{}, err
		}
		if leaf != nil && devLeafUsable(leaf, ca, dnsNames, ips, now) {
			return files, tightenKeyMode(files.Key)
		}
	}
	if err := issueDevLeaf(files, ca, dnsNames, ips, now); err != nil {
		return DevFiles{}, err
	}
	return files, nil
}

// splitHosts sorts hosts into DNS names and IP addresses.
func splitHosts(hosts []string) ([]string, []net.IP, error) {
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h == "" || strings.ContainsAny(h, " \t\r\n/:@%") || strings.Contains(h, "..") {
			return nil, nil, fmt.Errorf("tlsutil: dev CA: %q is neither a DNS name nor an IP address", h)
		}
		dnsNames = append(dnsNames, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	return dnsNames, ips, nil
}

// loadDevPair reads a certificate and key. It returns (nil, nil) when either file is missing
// or the pair is unusable, and an error only when a file exists but cannot be read.
func loadDevPair(certFile, keyFile string) (*parsedPair, error) {
	certPEM, _, err := readFile(certFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("tlsutil: dev CA: %w", err)
	}
	keyPEM, _, err := readFile(keyFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("tlsutil: dev CA: %w", err)
	}
	p, err := parsePair(certFile, certPEM, keyFile, keyPEM)
	if err != nil {
		return nil, nil // broken: re-issue
	}
	return p, nil
}

// devCAUsable reports whether the CA can sign a fresh leaf at now that expires before it does.
func devCAUsable(ca *parsedPair, now time.Time) bool {
	c := ca.leaf
	return c.IsCA && c.BasicConstraintsValid &&
		c.KeyUsage&x509.KeyUsageCertSign != 0 &&
		c.CheckSignatureFrom(c) == nil &&
		!now.Before(c.NotBefore) &&
		c.NotAfter.After(now.AddDate(devLeafYears, 0, 0))
}

// devLeafUsable reports whether the leaf chains to the CA for serverAuth at now, lives more
// than devLeafMinLeft longer (and not beyond the CA) and covers every name and address.
func devLeafUsable(leaf, ca *parsedPair, dnsNames []string, ips []net.IP, now time.Time) bool {
	c := leaf.leaf
	if c.NotAfter.Sub(now) <= devLeafMinLeft || c.NotAfter.After(ca.leaf.NotAfter) {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.leaf)
	if _, err := c.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return false
	}
	for _, n := range dnsNames {
		if !slices.ContainsFunc(c.DNSNames, func(s string) bool { return strings.EqualFold(s, n) }) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// issueDevCA creates a new CA key and self-signed certificate and writes them (key first).
func issueDevCA(files DevFiles, now time.Time) (*parsedPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Coffer development"},
			CommonName:   devCACommonName,
		},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.AddDate(devCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev CA certificate: %w", err)
	}
	if err := writePair(files.CACert, der, files.CAKey, key); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: dev CA certificate: %w", err)
	}
	return &parsedPair{chain: [][]byte{der}, leaf: cert, key: key}, nil
}

// issueDevLeaf creates a new server key and certificate signed by ca and writes them.
func issueDevLeaf(files DevFiles, ca *parsedPair, dnsNames []string, ips []net.IP, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlsutil: dev server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	notAfter := now.AddDate(devLeafYears, 0, 0)
	if notAfter.After(ca.leaf.NotAfter) {
		notAfter = ca.leaf.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Coffer development"},
			CommonName:   "Coffer development server",
		},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.leaf, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("tlsutil: dev server certificate: %w", err)
	}
	return writePair(files.Cert, der, files.Key, key)
}

// writePair writes a PKCS#8 key (mode 0600) and then its certificate (mode 0644).
func writePair(certFile string, der []byte, keyFile string, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlsutil: marshal key for %s: %w", keyFile, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return writeFileAtomic(certFile, certPEM, 0o644)
}

// randomSerial returns a random serial of exactly devSerialBits bits (top bit set, so it is
// never short and never zero).
func randomSerial() (*big.Int, error) {
	b := make([]byte, devSerialBits/8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("tlsutil: serial: %w", err)
	}
	b[0] |= 0x80
	return new(big.Int).SetBytes(b), nil
}

// tightenKeyMode makes a reused private key file readable by its owner only.
func tightenKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("tlsutil: dev CA: %w", err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("tlsutil: dev CA: %w", err)
	}
	return nil
}
