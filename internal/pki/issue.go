package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// Template returns the certificate template for a profile: a random 128-bit positive serial
// (crypto/rand), NotBefore = now truncated to seconds, NotAfter = NotBefore plus
// ValidityMonths calendar months, the subject, the SAN extension (in ExtraExtensions, with
// UPNs; DNSNames, EmailAddresses, URIs and IPAddresses are also set for callers to read),
// KeyUsage bits, EKUs (OIDs crypto/x509 does not name go to UnknownExtKeyUsage), basic
// constraints (IsCA only if keyCertSign is among the key usages) and SubjectKeyId from pub
// (RFC 5280 method 1: SHA-1 of the subjectPublicKey bits). pub is the certificate's public
// key. The profile is checked first.
func Template(p Profile, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	subject, _ := ParseSubject(p.Subject) // checked above
	ku, _ := KeyUsageBits(p.KeyUsage)
	known, unknown, _ := parseEKUs(p.EKUs)
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notBefore := now.UTC().Truncate(time.Second)
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(0, p.ValidityMonths, 0),
		KeyUsage:              ku,
		ExtKeyUsage:           known,
		UnknownExtKeyUsage:    unknown,
		BasicConstraintsValid: true,
		IsCA:                  ku&x509.KeyUsageCertSign != 0,
		SubjectKeyId:          skid,
	}
	if !p.sans().empty() {
		ext, err := sanExtension(p.sans(), len(subject.ExtraNames) == 0)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = []pkix.Extension{ext}
		setTemplateSANs(t, p)
	}
	return t, nil
}

// setTemplateSANs mirrors the SANs into the template's typed fields for readers; the
// extension in ExtraExtensions is what crypto/x509 encodes.
func setTemplateSANs(t *x509.Certificate, p Profile) {
	t.DNSNames = p.DNSNames
	t.EmailAddresses = p.Emails
	for _, u := range p.URIs {
		if parsed, err := url.Parse(u); err == nil {
			t.URIs = append(t.URIs, parsed)
		}
	}
	for _, ip := range p.IPAddresses {
		t.IPAddresses = append(t.IPAddresses, net.ParseIP(ip))
	}
}

func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("certificate serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID returns the SHA-1 of the subjectPublicKey BIT STRING of pub.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("certificate public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("certificate public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// Issue signs tmpl with signer. parent nil means self-signed (parent = tmpl). Returns DER.
// It verifies the result parses and that its signature checks against the issuer's public
// key (for self-signed, the certificate's own).
func Issue(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	if tmpl == nil || signer == nil {
		return nil, errors.New("issue certificate: a template and a signer are required")
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: the signed certificate does not parse: %w", err)
	}
	issuerKey := signer.Public()
	if parent != tmpl && parent.PublicKey != nil {
		issuerKey = parent.PublicKey
	}
	issuer := &x509.Certificate{PublicKey: issuerKey}
	if err := issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return nil, fmt.Errorf("issue certificate: the signature does not verify (does the signer hold the issuer's key?): %w", err)
	}
	return der, nil
}

// CSR returns a DER PKCS#10 request for the profile's subject and SANs (UPNs too), signed
// by signer. Only the subject and SANs of p are checked and used.
func CSR(p Profile, signer crypto.Signer) ([]byte, error) {
	if err := p.checkNames(); err != nil {
		return nil, err
	}
	subject, _ := ParseSubject(p.Subject)
	req := &x509.CertificateRequest{Subject: subject}
	if !p.sans().empty() {
		ext, err := sanExtension(p.sans(), len(subject.ExtraNames) == 0)
		if err != nil {
			return nil, err
		}
		req.ExtraExtensions = []pkix.Extension{ext}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, req, signer)
	if err != nil {
		return nil, fmt.Errorf("certificate signing request: %w", err)
	}
	return der, nil
}

// Thumbprint is the SHA-1 of the DER certificate (Key Vault's x5t).
func Thumbprint(der []byte) []byte {
	sum := sha1.Sum(der)
	return sum[:]
}
