package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"unicode/utf8"
)

var (
	oidExtSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// oidUPN is Microsoft's User Principal Name otherName (szOID_NT_PRINCIPAL_NAME).
	oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// GeneralName tags (RFC 5280 §4.2.1.6), context-specific.
const (
	tagOtherName = 0
	tagRFC822    = 1
	tagDNS       = 2
	tagURI       = 6
	tagIP        = 7
)

// sans is the subject alternative names of a profile or certificate.
type sans struct {
	DNSNames, Emails, UPNs, URIs, IPAddresses []string
}

func (s sans) empty() bool {
	return len(s.DNSNames)+len(s.Emails)+len(s.UPNs)+len(s.URIs)+len(s.IPAddresses) == 0
}

// sanExtension builds the subjectAltName extension for s, which must have passed checkSANs.
// Go's crypto/x509 cannot encode otherName (UPN) entries, so the whole extension is built
// here and handed to x509 through ExtraExtensions. critical is set when the subject is empty
// (RFC 5280 §4.2.1.6).
func sanExtension(s sans, critical bool) (pkix.Extension, error) {
	var names []asn1.RawValue
	for _, d := range s.DNSNames {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDNS, Bytes: []byte(d)})
	}
	for _, e := range s.Emails {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagRFC822, Bytes: []byte(e)})
	}
	for _, u := range s.UPNs {
		on, err := upnOtherName(u)
		if err != nil {
			return pkix.Extension{}, err
		}
		names = append(names, on)
	}
	for _, u := range s.URIs {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagURI, Bytes: []byte(u)})
	}
	for _, ip := range s.IPAddresses {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return pkix.Extension{}, fmt.Errorf("IP address %q: %v", ip, err)
		}
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagIP, Bytes: a.AsSlice()})
	}
	der, err := asn1.Marshal(names)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode subject alternative names: %w", err)
	}
	return pkix.Extension{Id: oidExtSubjectAltName, Critical: critical, Value: der}, nil
}

// upnOtherName encodes otherName { type-id 1.3.6.1.4.1.311.20.2.3, [0] EXPLICIT UTF8String }.
func upnOtherName(upn string) (asn1.RawValue, error) {
	oid, err := asn1.Marshal(oidUPN)
	if err != nil {
		return asn1.RawValue{}, err
	}
	str, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		return asn1.RawValue{}, fmt.Errorf("UPN %q: %w", upn, err)
	}
	val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: str})
	if err != nil {
		return asn1.RawValue{}, err
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagOtherName, IsCompound: true, Bytes: append(oid, val...)}, nil
}

// parseSANs reads a subjectAltName extension value: DNS, email, URI, IP and UPN entries.
// Other GeneralName kinds (directoryName, other otherNames, …) are skipped.
func parseSANs(der []byte) (sans, error) {
	var s sans
	var names []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &names)
	if err != nil {
		return s, fmt.Errorf("subject alternative names: %v", err)
	}
	if len(rest) > 0 {
		return s, errors.New("subject alternative names: trailing data after the extension")
	}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific {
			return s, fmt.Errorf("subject alternative names: unexpected ASN.1 class %d", n.Class)
		}
		switch n.Tag {
		case tagDNS:
			s.DNSNames = append(s.DNSNames, string(n.Bytes))
		case tagRFC822:
			s.Emails = append(s.Emails, string(n.Bytes))
		case tagURI:
			s.URIs = append(s.URIs, string(n.Bytes))
		case tagIP:
			if len(n.Bytes) != net.IPv4len && len(n.Bytes) != net.IPv6len {
				return s, fmt.Errorf("subject alternative names: IP address of %d bytes", len(n.Bytes))
			}
			a, _ := netip.AddrFromSlice(n.Bytes)
			s.IPAddresses = append(s.IPAddresses, a.Unmap().String())
		case tagOtherName:
			upn, ok, err := parseUPN(n.Bytes)
			if err != nil {
				return s, err
			}
			if ok {
				s.UPNs = append(s.UPNs, upn)
			}
		}
	}
	return s, nil
}

// parseUPN reads the body of an otherName; ok is false for otherNames that are not UPNs.
func parseUPN(body []byte) (upn string, ok bool, err error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(body, &oid)
	if err != nil {
		return "", false, fmt.Errorf("subject alternative names: otherName: %v", err)
	}
	if !oid.Equal(oidUPN) {
		return "", false, nil
	}
	var val asn1.RawValue
	if _, err := asn1.UnmarshalWithParams(rest, &val, "explicit,tag:0"); err != nil {
		return "", false, fmt.Errorf("subject alternative names: UPN: %v", err)
	}
	var str asn1.RawValue
	if _, err := asn1.Unmarshal(val.Bytes, &str); err != nil || str.Tag != asn1.TagUTF8String || !utf8.Valid(str.Bytes) {
		return "", false, errors.New("subject alternative names: UPN is not a UTF8String")
	}
	return string(str.Bytes), true, nil
}

// checkSANs validates every entry and returns an error naming the first bad one.
func checkSANs(s sans) error {
	for _, f := range []struct {
		field  string
		values []string
		check  func(string) error
	}{
		{"sans.dns_names", s.DNSNames, checkDNSName},
		{"sans.emails", s.Emails, checkEmail},
		{"sans.upns", s.UPNs, checkUPN},
		{"sans.uris", s.URIs, checkURI},
		{"sans.ipAddresses", s.IPAddresses, checkIP},
	} {
		for _, v := range f.values {
			if err := f.check(v); err != nil {
				return fmt.Errorf("%s: %q: %w", f.field, v, err)
			}
		}
	}
	return nil
}

func checkIP(ip string) error {
	if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
		return errors.New("not an IPv4 or IPv6 address")
	}
	return nil
}

// checkDNSName accepts RFC 1123 host names, optionally with a leading "*." wildcard label.
func checkDNSName(d string) error {
	host := d
	if len(host) > 2 && host[:2] == "*." {
		host = host[2:]
	}
	if host == "" || len(host) > 253 {
		return errors.New("a DNS name has 1 to 253 characters")
	}
	label := 0
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c == '.':
			if label == 0 || host[i-1] == '-' {
				return errors.New("every label has 1 to 63 letters, digits or hyphens and does not start or end with a hyphen")
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return errors.New("a label does not start with a hyphen")
			}
		case isLetter(c), c >= '0' && c <= '9':
		default:
			return fmt.Errorf("character %q is not allowed: use letters, digits, hyphens and dots (and a leading \"*.\")", c)
		}
		label++
		if label > 63 {
			return errors.New("a label has at most 63 characters")
		}
	}
	if label == 0 || host[len(host)-1] == '-' {
		return errors.New("the name does not end with a dot or a hyphen")
	}
	return nil
}

func checkEmail(e string) error {
	at := -1
	for i := 0; i < len(e); i++ {
		if e[i] == '@' {
			at = i
		}
		if e[i] <= ' ' || e[i] >= 0x7f || e[i] == '<' || e[i] == '>' || e[i] == ',' {
			return errors.New("an email address is ASCII without spaces, '<', '>' or ','")
		}
	}
	if at <= 0 {
		return errors.New("an email address is local-part@domain")
	}
	if err := checkDNSName(e[at+1:]); err != nil || e[at+1] == '*' {
		return errors.New("the domain after '@' is not a valid DNS name")
	}
	return nil
}

func checkUPN(u string) error {
	if !utf8.ValidString(u) {
		return errors.New("a UPN is valid UTF-8")
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] == 0x7f {
			return errors.New("a UPN has no spaces or control characters")
		}
	}
	at := -1
	for i := 0; i < len(u); i++ {
		if u[i] == '@' {
			at = i
		}
	}
	if at <= 0 || at == len(u)-1 {
		return errors.New("a UPN is user@domain")
	}
	return nil
}

func checkURI(u string) error {
	if !isASCII(u) {
		return errors.New("a URI is ASCII (percent-encode other characters)")
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return errors.New("not a valid URI")
	}
	if !parsed.IsAbs() {
		return errors.New("a URI must be absolute, with a scheme such as https:")
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] == 0x7f {
			return errors.New("a URI has no spaces or control characters")
		}
	}
	return nil
}
