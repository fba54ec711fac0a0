package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// attrType is one X.500 attribute type ParseSubject knows by name.
type attrType struct {
	names []string // the first is used by FormatSubject
	oid   asn1.ObjectIdentifier
	ia5   bool // encoded as IA5String (email, domain component)
}

var attrTypes = []attrType{
	{[]string{"CN"}, asn1.ObjectIdentifier{2, 5, 4, 3}, false},
	{[]string{"SN", "SURNAME"}, asn1.ObjectIdentifier{2, 5, 4, 4}, false},
	{[]string{"SERIALNUMBER"}, asn1.ObjectIdentifier{2, 5, 4, 5}, false},
	{[]string{"C"}, asn1.ObjectIdentifier{2, 5, 4, 6}, false},
	{[]string{"L"}, asn1.ObjectIdentifier{2, 5, 4, 7}, false},
	{[]string{"ST", "S"}, asn1.ObjectIdentifier{2, 5, 4, 8}, false},
	{[]string{"STREET"}, asn1.ObjectIdentifier{2, 5, 4, 9}, false},
	{[]string{"O"}, asn1.ObjectIdentifier{2, 5, 4, 10}, false},
	{[]string{"OU"}, asn1.ObjectIdentifier{2, 5, 4, 11}, false},
	{[]string{"T", "TITLE"}, asn1.ObjectIdentifier{2, 5, 4, 12}, false},
	{[]string{"POSTALCODE"}, asn1.ObjectIdentifier{2, 5, 4, 17}, false},
	{[]string{"G", "GIVENNAME"}, asn1.ObjectIdentifier{2, 5, 4, 42}, false},
	{[]string{"I", "INITIALS"}, asn1.ObjectIdentifier{2, 5, 4, 43}, false},
	{[]string{"E", "EMAIL", "EMAILADDRESS"}, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, true},
	{[]string{"DC"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, true},
	{[]string{"UID"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, false},
}

func attrByName(name string) (attrType, bool) {
	up := strings.ToUpper(name)
	for _, a := range attrTypes {
		if slices.Contains(a.names, up) {
			return a, true
		}
	}
	return attrType{}, false
}

func attrByOID(oid asn1.ObjectIdentifier) (attrType, bool) {
	for _, a := range attrTypes {
		if a.oid.Equal(oid) {
			return a, true
		}
	}
	return attrType{}, false
}

// ParseSubject parses a Key Vault subject string into a pkix.Name.
//
// The string is a distinguished name written most specific first, as Key Vault (and RFC 4514)
// writes it: "CN=a.example, O=Org, C=US". Attributes are separated by ',' or ';'; a value
// may be double-quoted (inside quotes "" and \" stand for a quote) and a backslash escapes
// the next character. Attribute types are matched case-insensitively: CN, O, OU, C, L, ST
// (or S), STREET, POSTALCODE, SERIALNUMBER, E (EMAIL), DC, UID, T, G, I, SN, or a dotted OID
// (optionally prefixed "OID."). The empty string gives an empty name.
//
// The returned name has its usual fields set (CommonName, Organization, …) and ExtraNames
// holding every attribute in encoding order (the reverse of the string), so a certificate
// built from it keeps the order the caller wrote.
func ParseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	parts, err := splitSubject(s)
	if err != nil {
		return n, err
	}
	atvs := make([]pkix.AttributeTypeAndValue, 0, len(parts))
	for _, p := range parts {
		atv, err := parseAttr(p[0], p[1])
		if err != nil {
			return pkix.Name{}, fmt.Errorf("subject %q: %w", s, err)
		}
		setNameField(&n, atv.Type, p[1])
		atvs = append(atvs, atv)
	}
	slices.Reverse(atvs)
	n.ExtraNames = atvs
	return n, nil
}

// splitSubject splits s into [type, value] pairs with quotes and escapes resolved.
func splitSubject(s string) ([][2]string, error) {
	var (
		out                     [][2]string
		typ, val                strings.Builder
		inValue, quoted, closed bool
	)
	flush := func() error {
		t, v := strings.TrimSpace(typ.String()), val.String()
		if !quoted {
			v = strings.TrimSpace(v)
		}
		switch {
		case !inValue && t == "":
			return fmt.Errorf("subject %q: empty attribute (two separators in a row, or a trailing separator)", s)
		case !inValue:
			return fmt.Errorf("subject %q: attribute %q has no '=': write TYPE=value, e.g. CN=www.example.com", s, t)
		case t == "":
			return fmt.Errorf("subject %q: attribute without a type before '='", s)
		case v == "":
			return fmt.Errorf("subject %q: attribute %s has an empty value", s, t)
		}
		out = append(out, [2]string{t, v})
		typ.Reset()
		val.Reset()
		inValue, quoted, closed = false, false, false
		return nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quoted && !closed && c == '"' && i+1 < len(rs) && rs[i+1] == '"':
			val.WriteRune('"')
			i++
		case quoted && !closed && c == '"':
			closed = true
		case c == '\\' && (inValue && !closed):
			if i+1 == len(rs) {
				return nil, fmt.Errorf("subject %q: a trailing backslash escapes nothing", s)
			}
			i++
			val.WriteRune(rs[i])
		case quoted && !closed:
			val.WriteRune(c)
		case c == ',' || c == ';':
			if err := flush(); err != nil {
				return nil, err
			}
		case !inValue && c == '=':
			inValue = true
		case !inValue:
			typ.WriteRune(c)
		case closed:
			if c != ' ' && c != '\t' {
				return nil, fmt.Errorf("subject %q: unexpected %q after a quoted value of %s", s, c, strings.TrimSpace(typ.String()))
			}
		case c == '"' && strings.TrimSpace(val.String()) == "":
			val.Reset()
			quoted = true
		default:
			val.WriteRune(c)
		}
	}
	if quoted && !closed {
		return nil, fmt.Errorf("subject %q: unterminated quoted value", s)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseAttr(typ, val string) (pkix.AttributeTypeAndValue, error) {
	var a attrType
	if oid, err := parseOID(strings.TrimPrefix(strings.TrimPrefix(typ, "OID."), "oid.")); err == nil {
		a, _ = attrByOID(oid)
		a.oid = oid
	} else if a, _ = attrByName(typ); a.oid == nil {
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("unknown attribute type %q: use CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER, E, DC, UID, T, G, I, SN or a dotted OID", typ)
	}
	switch {
	case strings.ContainsFunc(val, unicode.IsControl):
		// A NUL in a CN is the null-prefix attack ("www.bank.example\x00.evil.example");
		// no control character belongs in a name.
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s=%q: the value must not contain control characters", typ, val)
	case a.oid.Equal(oidCountry) && !isCountry(val):
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("C=%q: the country must be a two-letter code such as US", val)
	case a.ia5 && !isASCII(val):
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s=%q: the value must be ASCII", typ, val)
	case a.ia5:
		return pkix.AttributeTypeAndValue{Type: a.oid, Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(val)}}, nil
	}
	return pkix.AttributeTypeAndValue{Type: a.oid, Value: val}, nil
}

var oidCountry = asn1.ObjectIdentifier{2, 5, 4, 6}

func isCountry(v string) bool {
	return len(v) == 2 && isLetter(v[0]) && isLetter(v[1])
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// setNameField fills the pkix.Name convenience field for oid, if it has one.
func setNameField(n *pkix.Name, oid asn1.ObjectIdentifier, v string) {
	if len(oid) != 4 || oid[0] != 2 || oid[1] != 5 || oid[2] != 4 {
		return
	}
	switch oid[3] {
	case 3:
		n.CommonName = v
		return
	case 5:
		n.SerialNumber = v
		return
	}
	lists := map[int]*[]string{
		6: &n.Country, 7: &n.Locality, 8: &n.Province, 9: &n.StreetAddress,
		10: &n.Organization, 11: &n.OrganizationalUnit, 17: &n.PostalCode,
	}
	if l := lists[oid[3]]; l != nil {
		*l = append(*l, v)
	}
}

// FormatSubject renders a pkix.Name the way Key Vault shows subjects ("CN=..., O=...") — used
// when a policy is derived from an imported certificate.
//
// Attributes are written most specific first (the reverse of their encoding order), joined
// by ", ". A name parsed from a certificate is rendered from its Names (all attributes, in
// the certificate's order); any other name from ToRDNSequence. Values with special
// characters are double-quoted with \" and \\ escapes; unknown attribute types are written
// as dotted OIDs. ParseSubject reads the result back to the same attributes, except that a
// multi-valued RDN ("CN=a+OU=b" in other notations) comes back as separate RDNs.
func FormatSubject(n pkix.Name) string {
	var atvs []pkix.AttributeTypeAndValue
	if len(n.Names) > 0 {
		atvs = slices.Clone(n.Names)
	} else {
		for _, rdn := range n.ToRDNSequence() {
			atvs = append(atvs, rdn...)
		}
	}
	slices.Reverse(atvs)
	parts := make([]string, 0, len(atvs))
	for _, atv := range atvs {
		name := atv.Type.String()
		if a, ok := attrByOID(atv.Type); ok {
			name = a.names[0]
		}
		parts = append(parts, name+"="+quoteValue(attrString(atv.Value)))
	}
	return strings.Join(parts, ", ")
}

func attrString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case asn1.RawValue:
		return string(v.Bytes)
	default:
		return fmt.Sprint(v)
	}
}

func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, `,;+"\<>=#`) && strings.TrimSpace(v) == v {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// parseOID parses a dotted object identifier such as "1.3.6.1.5.5.7.3.1".
func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return nil, fmt.Errorf("%q is not a dotted OID", s)
			}
			oid[i] = oid[i]*10 + int(p[j]-'0')
		}
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, fmt.Errorf("%q is not a valid OID: the first arc is 0, 1 or 2 and the second at most 39 below 2", s)
	}
	return oid, nil
}
