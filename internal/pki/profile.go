package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Profile is the X.509 part of a certificate policy.
type Profile struct {
	// Subject is an X.500 distinguished name as Key Vault writes it:
	// "CN=a.example, O=Org, OU=Unit, C=US, L=.., ST=.., E=..". See ParseSubject.
	Subject string
	// DNSNames, Emails, UPNs, URIs and IPAddresses are the subject alternative names. UPNs
	// are encoded as otherName 1.3.6.1.4.1.311.20.2.3 (UTF8String); IP addresses are IPv4 or
	// IPv6 text.
	DNSNames    []string
	Emails      []string
	UPNs        []string
	URIs        []string
	IPAddresses []string
	// KeyUsage holds Key Vault key usage names: digitalSignature, nonRepudiation,
	// keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly,
	// decipherOnly.
	KeyUsage []string
	// EKUs holds extended key usages as dotted OIDs, e.g. "1.3.6.1.5.5.7.3.1".
	EKUs []string
	// ValidityMonths is the certificate lifetime, 1..1200.
	ValidityMonths int
}

// Bounds on a profile's lists and subject, so that a policy cannot make an oversized
// certificate.
const (
	MaxSANs       = 100
	MaxEKUs       = 20
	MaxSubjectLen = 1024
)

// MaxValidityMonths is the longest validity a profile may ask for (100 years).
const MaxValidityMonths = 1200

func (p Profile) sans() sans {
	return sans{DNSNames: p.DNSNames, Emails: p.Emails, UPNs: p.UPNs, URIs: p.URIs, IPAddresses: p.IPAddresses}
}

// Check validates a profile (subject parses, SANs well-formed: DNS names per RFC 1123 with
// optional leading "*.", emails, URIs absolute, IPs parse, key usage names known, EKU OIDs
// parse, validity in range; subject or at least one SAN present) and returns an error naming
// the bad field and value.
func (p Profile) Check() error {
	if n := len(p.DNSNames) + len(p.Emails) + len(p.UPNs) + len(p.URIs) + len(p.IPAddresses); n > MaxSANs {
		return fmt.Errorf("sans: %d subject alternative names given; a certificate holds at most %d", n, MaxSANs)
	}
	if len(p.EKUs) > MaxEKUs {
		return fmt.Errorf("ekus: %d extended key usages given; at most %d are accepted", len(p.EKUs), MaxEKUs)
	}
	if len(p.Subject) > MaxSubjectLen {
		return fmt.Errorf("subject: %d characters; at most %d are accepted", len(p.Subject), MaxSubjectLen)
	}
	if err := p.checkNames(); err != nil {
		return err
	}
	if _, err := KeyUsageBits(p.KeyUsage); err != nil {
		return err
	}
	if _, _, err := parseEKUs(p.EKUs); err != nil {
		return err
	}
	if p.ValidityMonths < 1 || p.ValidityMonths > MaxValidityMonths {
		return fmt.Errorf("validity_months: %d is out of range: use 1 to %d", p.ValidityMonths, MaxValidityMonths)
	}
	return nil
}

// checkNames checks the subject and SANs, the part of a profile a CSR needs.
func (p Profile) checkNames() error {
	n, err := ParseSubject(p.Subject)
	if err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	if err := checkSANs(p.sans()); err != nil {
		return err
	}
	if len(n.ExtraNames) == 0 && p.sans().empty() {
		return errors.New("the policy has neither a subject nor subject alternative names: set subject (e.g. \"CN=www.example.com\") or sans")
	}
	return nil
}

// keyUsageNames is Key Vault's key_usage enum, in its order.
var keyUsageNames = []struct {
	name string
	bit  x509.KeyUsage
}{
	{"digitalSignature", x509.KeyUsageDigitalSignature},
	{"nonRepudiation", x509.KeyUsageContentCommitment},
	{"keyEncipherment", x509.KeyUsageKeyEncipherment},
	{"dataEncipherment", x509.KeyUsageDataEncipherment},
	{"keyAgreement", x509.KeyUsageKeyAgreement},
	{"keyCertSign", x509.KeyUsageCertSign},
	{"cRLSign", x509.KeyUsageCRLSign},
	{"encipherOnly", x509.KeyUsageEncipherOnly},
	{"decipherOnly", x509.KeyUsageDecipherOnly},
}

// KeyUsageBits converts Key Vault key usage names to x509 bits. Names are matched exactly
// (Key Vault's enum is case-sensitive); an unknown name is an error naming it.
func KeyUsageBits(names []string) (x509.KeyUsage, error) {
	var ku x509.KeyUsage
next:
	for _, n := range names {
		for _, k := range keyUsageNames {
			if k.name == n {
				ku |= k.bit
				continue next
			}
		}
		all := make([]string, len(keyUsageNames))
		for i, k := range keyUsageNames {
			all[i] = k.name
		}
		return 0, fmt.Errorf("key_usage: unknown usage %q: use one of %s", n, strings.Join(all, ", "))
	}
	return ku, nil
}

// KeyUsageNames converts x509 key usage bits to Key Vault names, in the order of Key Vault's
// enum. Bits without a name are dropped.
func KeyUsageNames(ku x509.KeyUsage) []string {
	var out []string
	for _, k := range keyUsageNames {
		if ku&k.bit != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

// extKeyUsageOIDs maps every x509.ExtKeyUsage to its OID.
var extKeyUsageOIDs = []struct {
	eku x509.ExtKeyUsage
	oid asn1.ObjectIdentifier
}{
	{x509.ExtKeyUsageAny, asn1.ObjectIdentifier{2, 5, 29, 37, 0}},
	{x509.ExtKeyUsageServerAuth, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}},
	{x509.ExtKeyUsageClientAuth, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}},
	{x509.ExtKeyUsageCodeSigning, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}},
	{x509.ExtKeyUsageEmailProtection, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}},
	{x509.ExtKeyUsageIPSECEndSystem, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 5}},
	{x509.ExtKeyUsageIPSECTunnel, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 6}},
	{x509.ExtKeyUsageIPSECUser, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 7}},
	{x509.ExtKeyUsageTimeStamping, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}},
	{x509.ExtKeyUsageOCSPSigning, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}},
	{x509.ExtKeyUsageMicrosoftServerGatedCrypto, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 10, 3, 3}},
	{x509.ExtKeyUsageNetscapeServerGatedCrypto, asn1.ObjectIdentifier{2, 16, 840, 1, 113730, 4, 1}},
	{x509.ExtKeyUsageMicrosoftCommercialCodeSigning, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 22}},
	{x509.ExtKeyUsageMicrosoftKernelCodeSigning, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 61, 1, 1}},
}

// parseEKUs parses dotted EKU OIDs into the ones crypto/x509 knows and the rest.
func parseEKUs(ekus []string) (known []x509.ExtKeyUsage, unknown []asn1.ObjectIdentifier, err error) {
next:
	for _, s := range ekus {
		oid, err := parseOID(s)
		if err != nil {
			return nil, nil, fmt.Errorf("ekus: %v", err)
		}
		for _, e := range extKeyUsageOIDs {
			if e.oid.Equal(oid) {
				known = append(known, e.eku)
				continue next
			}
		}
		unknown = append(unknown, oid)
	}
	return known, unknown, nil
}

// ProfileOf derives a Profile from an existing certificate (subject, SANs incl. UPNs, key
// usage names, EKU OIDs, validity rounded to months) — for import, where Key Vault derives
// the policy from the certificate.
//
// ValidityMonths is the whole number of months nearest to NotAfter − NotBefore, clamped to
// 1..MaxValidityMonths so the derived profile passes Check. A SAN extension this package
// cannot read falls back to the names crypto/x509 parsed (without UPNs).
func ProfileOf(c *x509.Certificate) Profile {
	p := Profile{
		Subject:  FormatSubject(c.Subject),
		KeyUsage: KeyUsageNames(c.KeyUsage),
	}
	s, ok := certSANs(c)
	if !ok {
		s = sans{DNSNames: c.DNSNames, Emails: c.EmailAddresses}
		for _, u := range c.URIs {
			s.URIs = append(s.URIs, u.String())
		}
		for _, ip := range c.IPAddresses {
			s.IPAddresses = append(s.IPAddresses, ip.String())
		}
	}
	p.DNSNames, p.Emails, p.UPNs, p.URIs, p.IPAddresses = s.DNSNames, s.Emails, s.UPNs, s.URIs, s.IPAddresses
	for _, eku := range c.ExtKeyUsage {
		for _, e := range extKeyUsageOIDs {
			if e.eku == eku {
				p.EKUs = append(p.EKUs, e.oid.String())
			}
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		p.EKUs = append(p.EKUs, oid.String())
	}
	p.ValidityMonths = monthsBetween(c.NotBefore, c.NotAfter)
	return p
}

// certSANs parses c's SAN extension; ok is false if it has none or it does not parse.
func certSANs(c *x509.Certificate) (sans, bool) {
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidExtSubjectAltName) {
			s, err := parseSANs(ext.Value)
			return s, err == nil
		}
	}
	return sans{}, false
}

// monthsBetween returns the whole number of months from a that lands nearest to b, clamped
// to 1..MaxValidityMonths.
func monthsBetween(a, b time.Time) int {
	a, b = a.UTC(), b.UTC()
	m := (b.Year()-a.Year())*12 + int(b.Month()-a.Month())
	best, bestDiff := m, time.Duration(-1)
	for _, c := range []int{m - 1, m, m + 1} {
		d := b.Sub(a.AddDate(0, c, 0)).Abs()
		if bestDiff < 0 || d < bestDiff {
			best, bestDiff = c, d
		}
	}
	return max(1, min(best, MaxValidityMonths))
}
