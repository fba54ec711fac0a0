package pki

import (
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // FormatSubject of the result
		cn       string
		org      []string
	}{
		{"ok/key-vault", "CN=a.example, O=Org, OU=Unit, C=US, L=Seattle, ST=WA, E=ops@a.example", "CN=a.example, O=Org, OU=Unit, C=US, L=Seattle, ST=WA, E=ops@a.example", "a.example", []string{"Org"}},
		{"ok/semicolons-and-spaces", "  cn = a.example ;o=Org  ", "", "a.example", []string{"Org"}},
		{"ok/quoted", `CN=a, O="Contoso, Ltd.", OU="say ""hi"""`, `CN=a, O="Contoso, Ltd.", OU="say \"hi\""`, "a", []string{"Contoso, Ltd."}},
		{"ok/escaped", `CN=a\, b, O=x\\y`, `CN="a, b", O="x\\y"`, "a, b", []string{`x\y`}},
		{"ok/aliases", "S=WA, EMAIL=a@b.c, SERIALNUMBER=42, STREET=1 Main St, POSTALCODE=98052, DC=example, DC=com, UID=u1", "ST=WA, E=a@b.c, SERIALNUMBER=42, STREET=1 Main St, POSTALCODE=98052, DC=example, DC=com, UID=u1", "", nil},
		{"ok/oid", "OID.2.5.4.3=by-oid, 1.2.3.4=custom", "CN=by-oid, 1.2.3.4=custom", "by-oid", nil},
		{"ok/equals-in-value", "CN=a=b", `CN="a=b"`, "a=b", nil},
		{"ok/empty", "", "", "", nil},
		{"ok/unicode", "CN=Zürich Ümlaut", "CN=Zürich Ümlaut", "Zürich Ümlaut", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseSubject(tc.in)
			if err != nil {
				t.Fatalf("ParseSubject(%q) = %v", tc.in, err)
			}
			if n.CommonName != tc.cn || strings.Join(n.Organization, "|") != strings.Join(tc.org, "|") {
				t.Errorf("ParseSubject(%q): CN, O = %q, %q; want %q, %q", tc.in, n.CommonName, n.Organization, tc.cn, tc.org)
			}
			want := tc.want
			if want == "" && tc.in != "" {
				want = "CN=a.example, O=Org"
			}
			got := FormatSubject(n)
			if got != want {
				t.Errorf("FormatSubject(ParseSubject(%q)) = %q; want %q", tc.in, got, want)
			}
			again, err := ParseSubject(got)
			if err != nil || FormatSubject(again) != got {
				t.Errorf("ParseSubject(%q) did not round-trip: %q, %v", got, FormatSubject(again), err)
			}
		})
	}
}

func TestParseSubjectErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, mention string }{
		{"fail/unknown-type", "CN=a, FOO=b", `"FOO"`},
		{"fail/no-equals", "CN=a, Org", `"Org"`},
		{"fail/empty-value", "CN=", "empty value"},
		{"fail/no-type", "=a", "without a type"},
		{"fail/double-separator", "CN=a,,O=b", "empty attribute"},
		{"fail/trailing-separator", "CN=a,", "empty attribute"},
		{"fail/unterminated-quote", `CN="a`, "unterminated"},
		{"fail/text-after-quote", `CN="a"b`, "after a quoted value"},
		{"fail/trailing-backslash", `CN=a\`, "backslash"},
		{"fail/country-length", "C=USA", "two-letter"},
		{"fail/email-non-ascii", "E=ü@example.com", "ASCII"},
		{"fail/bad-oid", "1.x.3=a", `"1.x.3"`},
		{"fail/nul", "CN=www.bank.example\x00.evil.example", "control characters"},
		{"fail/newline", "CN=a, O=b\nc", "control characters"},
		{"fail/quoted-del", "CN=\"a\x7fb\"", "control characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSubject(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("ParseSubject(%q) = %v; want an error mentioning %s", tc.in, err, tc.mention)
			}
		})
	}
}

// TestSubjectEncodingOrder checks that a certificate's subject is encoded in the reverse of
// the string's order (RFC 4514, .NET's default) and reads back the same.
func TestSubjectEncodingOrder(t *testing.T) {
	p := Profile{Subject: "CN=x, OU=Unit, DC=example, DC=com, E=a@b.example", ValidityMonths: 1}
	c := issue(t, p, ecKey(t, elliptic.P256()), nil, nil)
	var rdns pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
		t.Fatal(err)
	}
	if len(rdns) != 5 || !rdns[0][0].Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}) || !rdns[4][0].Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 3}) {
		t.Errorf("encoded subject = %v; want E first, CN last", rdns)
	}
	if got := FormatSubject(c.Subject); got != p.Subject {
		t.Errorf("FormatSubject(cert) = %q; want %q", got, p.Subject)
	}
}

func TestProfileCheck(t *testing.T) {
	good := leafProfile()
	if err := good.Check(); err != nil {
		t.Fatalf("Check(good) = %v", err)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*Profile)
		mention string
	}{
		{"fail/subject", func(p *Profile) { p.Subject = "CN=a, X=1" }, `"X"`},
		{"fail/too-many-sans", func(p *Profile) {
			for i := 0; i <= MaxSANs; i++ {
				p.DNSNames = append(p.DNSNames, fmt.Sprintf("h%d.example", i))
			}
		}, "at most 100"},
		{"fail/too-many-ekus", func(p *Profile) { p.EKUs = make([]string, MaxEKUs+1) }, "at most 20"},
		{"fail/long-subject", func(p *Profile) { p.Subject = "CN=" + strings.Repeat("a", MaxSubjectLen) }, "at most 1024"},
		{"fail/no-names", func(p *Profile) { *p = Profile{ValidityMonths: 12} }, "neither a subject nor"},
		{"fail/dns-underscore", func(p *Profile) { p.DNSNames = []string{"a_b.example"} }, "a_b.example"},
		{"fail/dns-hyphen-start", func(p *Profile) { p.DNSNames = []string{"-a.example"} }, "-a.example"},
		{"fail/dns-hyphen-end", func(p *Profile) { p.DNSNames = []string{"a-.example"} }, "a-.example"},
		{"fail/dns-empty-label", func(p *Profile) { p.DNSNames = []string{"a..example"} }, "a..example"},
		{"fail/dns-trailing-dot", func(p *Profile) { p.DNSNames = []string{"a.example."} }, "a.example."},
		{"fail/dns-inner-wildcard", func(p *Profile) { p.DNSNames = []string{"a.*.example"} }, "a.*.example"},
		{"fail/dns-bare-wildcard", func(p *Profile) { p.DNSNames = []string{"*."} }, `"*."`},
		{"fail/dns-long-label", func(p *Profile) { p.DNSNames = []string{strings.Repeat("a", 64) + ".example"} }, "63"},
		{"fail/dns-empty", func(p *Profile) { p.DNSNames = []string{""} }, "dns_names"},
		{"fail/email-no-at", func(p *Profile) { p.Emails = []string{"ops.example.com"} }, "ops.example.com"},
		{"fail/email-display-name", func(p *Profile) { p.Emails = []string{"Ops <ops@example.com>"} }, "emails"},
		{"fail/email-bad-domain", func(p *Profile) { p.Emails = []string{"ops@exa mple"} }, "emails"},
		{"fail/upn-no-domain", func(p *Profile) { p.UPNs = []string{"user@"} }, "user@"},
		{"fail/uri-relative", func(p *Profile) { p.URIs = []string{"/relative/path"} }, "/relative/path"},
		{"fail/uri-space", func(p *Profile) { p.URIs = []string{"https://a.example/x y"} }, "uris"},
		{"fail/ip", func(p *Profile) { p.IPAddresses = []string{"300.1.1.1"} }, "300.1.1.1"},
		{"fail/ip-zone", func(p *Profile) { p.IPAddresses = []string{"fe80::1%eth0"} }, "fe80::1%eth0"},
		{"fail/key-usage", func(p *Profile) { p.KeyUsage = []string{"DigitalSignature"} }, "DigitalSignature"},
		{"fail/eku", func(p *Profile) { p.EKUs = []string{"serverAuth"} }, "serverAuth"},
		{"fail/eku-first-arc", func(p *Profile) { p.EKUs = []string{"3.1"} }, `"3.1"`},
		{"fail/validity-zero", func(p *Profile) { p.ValidityMonths = 0 }, "validity_months"},
		{"fail/validity-too-long", func(p *Profile) { p.ValidityMonths = 1201 }, "1201"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := leafProfile()
			tc.edit(&p)
			err := p.Check()
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Check() = %v; want an error mentioning %s", err, tc.mention)
			}
		})
	}
	sanOnly := Profile{UPNs: []string{"u@corp"}, ValidityMonths: 1200}
	if err := sanOnly.Check(); err != nil {
		t.Errorf("Check(UPN only, 1200 months) = %v; want nil", err)
	}
}

func TestKeyUsage(t *testing.T) {
	all := []string{"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	bits, err := KeyUsageBits(all)
	if err != nil {
		t.Fatal(err)
	}
	if want := x509.KeyUsage(1<<9 - 1); bits != want {
		t.Errorf("KeyUsageBits(all) = %b; want %b", bits, want)
	}
	if got := KeyUsageNames(bits); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("KeyUsageNames(all) = %q; want %q", got, all)
	}
	// Order follows the enum, not the input.
	bits, _ = KeyUsageBits([]string{"cRLSign", "digitalSignature"})
	if got := KeyUsageNames(bits); strings.Join(got, ",") != "digitalSignature,cRLSign" {
		t.Errorf("KeyUsageNames = %q; want [digitalSignature cRLSign]", got)
	}
	if bits != x509.KeyUsageDigitalSignature|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsageBits = %b", bits)
	}
}

func TestProfileOfRoundTrip(t *testing.T) {
	p := leafProfile()
	c := issue(t, p, ecKey(t, elliptic.P256()), nil, nil)
	got := ProfileOf(c)
	if got.Subject != p.Subject || got.ValidityMonths != p.ValidityMonths ||
		strings.Join(got.KeyUsage, ",") != strings.Join(p.KeyUsage, ",") || strings.Join(got.EKUs, ",") != strings.Join(p.EKUs, ",") {
		t.Errorf("ProfileOf = %+v;\nwant %+v", got, p)
	}
	for _, f := range [][2][]string{{got.DNSNames, p.DNSNames}, {got.Emails, p.Emails}, {got.UPNs, p.UPNs}, {got.URIs, p.URIs}, {got.IPAddresses, p.IPAddresses}} {
		if strings.Join(f[0], ",") != strings.Join(f[1], ",") {
			t.Errorf("ProfileOf SANs = %q; want %q", f[0], f[1])
		}
	}
	if err := got.Check(); err != nil {
		t.Errorf("ProfileOf(...).Check() = %v", err)
	}
}

func TestMonthsBetween(t *testing.T) {
	start := testNow
	for _, tc := range []struct {
		end  time.Time
		want int
	}{
		{start.AddDate(0, 12, 0), 12},
		{start.AddDate(1, 0, -3), 12}, // 3 days short still rounds to a year
		{start.AddDate(0, 0, 16), 1},
		{start.AddDate(0, 0, 1), 1}, // clamped up
		{start.AddDate(200, 0, 0), MaxValidityMonths},
	} {
		if got := monthsBetween(start, tc.end); got != tc.want {
			t.Errorf("monthsBetween(%v, %v) = %d; want %d", start, tc.end, got, tc.want)
		}
	}
}
