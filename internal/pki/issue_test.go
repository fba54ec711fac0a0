package pki

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueSelfSigned(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  x509.SignatureAlgorithm
	}{
		{"rsa-2048", rsaKey(t, 0), x509.SHA256WithRSA},
		{"ec-p256", ecKey(t, elliptic.P256()), x509.ECDSAWithSHA256},
		{"ec-p384", ecKey(t, elliptic.P384()), x509.ECDSAWithSHA384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := leafProfile()
			c := issue(t, p, tc.key, nil, nil)

			if c.SignatureAlgorithm != tc.alg {
				t.Errorf("SignatureAlgorithm = %v; want %v", c.SignatureAlgorithm, tc.alg)
			}
			roots := x509.NewCertPool()
			roots.AddCert(c)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSName: "api.example.com"}); err != nil {
				t.Errorf("Verify(self as root) = %v", err)
			}
			if c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA, BasicConstraintsValid = %v, %v; want false, true", c.IsCA, c.BasicConstraintsValid)
			}
			if c.Subject.CommonName != "www.example.com" || FormatSubject(c.Subject) != p.Subject {
				t.Errorf("Subject = %q; want %q", FormatSubject(c.Subject), p.Subject)
			}
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; c.KeyUsage != want {
				t.Errorf("KeyUsage = %v; want %v", c.KeyUsage, want)
			}
			if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) ||
				len(c.UnknownExtKeyUsage) != 1 || !c.UnknownExtKeyUsage[0].Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 5}) {
				t.Errorf("EKUs = %v + %v; want serverAuth, clientAuth + 1.2.3.4.5", c.ExtKeyUsage, c.UnknownExtKeyUsage)
			}
			if !c.NotBefore.Equal(testNow.Truncate(time.Second)) {
				t.Errorf("NotBefore = %v; want %v", c.NotBefore, testNow.Truncate(time.Second))
			}
			// 2026-01-31 + 13 months normalizes like time.AddDate: 2027-02-31 → 2027-03-03.
			if want := time.Date(2027, 3, 3, 12, 30, 45, 0, time.UTC); !c.NotAfter.Equal(want) {
				t.Errorf("NotAfter = %v; want %v", c.NotAfter, want)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 || c.SerialNumber.BitLen() < 64 {
				t.Errorf("SerialNumber bits = %d; want a positive random 128-bit number", c.SerialNumber.BitLen())
			}
			skid, _ := subjectKeyID(tc.key.Public())
			if len(c.SubjectKeyId) != 20 || string(c.SubjectKeyId) != string(skid) {
				t.Errorf("SubjectKeyId = %x; want %x", c.SubjectKeyId, skid)
			}
			assertSANs(t, c, p)
		})
	}
}

// assertSANs compares the certificate's SAN extension, parsed by this package and by
// crypto/x509, with the profile.
func assertSANs(t *testing.T, c *x509.Certificate, p Profile) {
	t.Helper()
	var ext []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtSubjectAltName) {
			if e.Critical {
				t.Errorf("SAN extension is critical with a non-empty subject")
			}
			ext = e.Value
		}
	}
	s, err := parseSANs(ext)
	if err != nil {
		t.Fatalf("parseSANs = %v", err)
	}
	want := p.sans()
	for _, f := range []struct {
		name      string
		got, want []string
	}{
		{"DNS", s.DNSNames, want.DNSNames}, {"email", s.Emails, want.Emails}, {"UPN", s.UPNs, want.UPNs},
		{"URI", s.URIs, want.URIs}, {"IP", s.IPAddresses, want.IPAddresses},
		{"x509 DNS", c.DNSNames, want.DNSNames}, {"x509 email", c.EmailAddresses, want.Emails},
	} {
		if !slices.Equal(f.got, f.want) {
			t.Errorf("%s SANs = %q; want %q", f.name, f.got, f.want)
		}
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != want.URIs[0] {
		t.Errorf("x509 URIs = %v; want %v", c.URIs, want.URIs)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[1].Equal(net.ParseIP("2001:db8::1")) {
		t.Errorf("x509 IPAddresses = %v; want %v", c.IPAddresses, want.IPAddresses)
	}
}

func TestIssueChainsToCA(t *testing.T) {
	caKey := ecKey(t, elliptic.P384())
	ca := issue(t, caProfile(), caKey, nil, nil)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA IsCA, KeyUsage = %v, %v; want true with keyCertSign", ca.IsCA, ca.KeyUsage)
	}
	leafKey := rsaKey(t, 0)
	leaf := issue(t, leafProfile(), leafKey, ca, caKey)

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("Verify(leaf, roots = CA) = %v", err)
	}
	if len(chains) != 1 || len(chains[0]) != 2 {
		t.Errorf("chains = %d; want one leaf → CA chain", len(chains))
	}
	if string(leaf.AuthorityKeyId) != string(ca.SubjectKeyId) {
		t.Errorf("AuthorityKeyId = %x; want the CA's SubjectKeyId %x", leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	if leaf.Issuer.String() != ca.Subject.String() {
		t.Errorf("Issuer = %q; want %q", leaf.Issuer, ca.Subject)
	}
}

func TestIssueRefusesWrongSigner(t *testing.T) {
	caKey := ecKey(t, elliptic.P256())
	ca := issue(t, caProfile(), caKey, nil, nil)
	leafKey := ecKey(t, elliptic.P256())
	tmpl, err := Template(leafProfile(), leafKey.Public(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	// Signed by the leaf's own key while naming the CA as parent.
	if _, err := Issue(tmpl, leafKey.Public(), ca, leafKey); err == nil {
		t.Errorf("Issue(parent = CA, signer = other key) = nil error; want an error")
	}
}

func TestTemplateSubjectlessSANCritical(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	c := issue(t, Profile{DNSNames: []string{"only.example"}, ValidityMonths: 1}, key, nil, nil)
	if len(c.Subject.Names) != 0 {
		t.Errorf("Subject = %q; want empty", c.Subject)
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtSubjectAltName) && !e.Critical {
			t.Errorf("SAN extension not critical with an empty subject (RFC 5280 §4.2.1.6)")
		}
	}
	if !slices.Equal(c.DNSNames, []string{"only.example"}) {
		t.Errorf("DNSNames = %q", c.DNSNames)
	}
}

func TestTemplateRejectsBadProfile(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	p := leafProfile()
	p.KeyUsage = []string{"signEverything"}
	if _, err := Template(p, key.Public(), testNow); err == nil || !strings.Contains(err.Error(), "signEverything") {
		t.Errorf("Template(bad key usage) = %v; want an error naming it", err)
	}
}

func TestCSR(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa", rsaKey(t, 1)},
		{"ec", ecKey(t, elliptic.P521())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := leafProfile()
			der, err := CSR(p, tc.key)
			if err != nil {
				t.Fatalf("CSR = %v", err)
			}
			req, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatalf("ParseCertificateRequest = %v", err)
			}
			if err := req.CheckSignature(); err != nil {
				t.Errorf("CheckSignature = %v", err)
			}
			if FormatSubject(req.Subject) != p.Subject {
				t.Errorf("Subject = %q; want %q", FormatSubject(req.Subject), p.Subject)
			}
			if !slices.Equal(req.DNSNames, p.DNSNames) || !slices.Equal(req.EmailAddresses, p.Emails) || len(req.IPAddresses) != 2 || len(req.URIs) != 1 {
				t.Errorf("CSR SANs = %q %q %v %v; want the profile's", req.DNSNames, req.EmailAddresses, req.IPAddresses, req.URIs)
			}
			var upns []string
			for _, e := range req.Extensions {
				if e.Id.Equal(oidExtSubjectAltName) {
					s, err := parseSANs(e.Value)
					if err != nil {
						t.Fatal(err)
					}
					upns = s.UPNs
				}
			}
			if !slices.Equal(upns, p.UPNs) {
				t.Errorf("CSR UPNs = %q; want %q", upns, p.UPNs)
			}
		})
	}
	if _, err := CSR(Profile{}, ecKey(t, elliptic.P256())); err == nil {
		t.Errorf("CSR(empty profile) = nil error; want one asking for a subject or SANs")
	}
}

func TestThumbprint(t *testing.T) {
	// SHA-1("abc") from FIPS 180-2.
	if got := Thumbprint([]byte("abc")); len(got) != 20 || got[0] != 0xa9 || got[19] != 0x9d {
		t.Errorf("Thumbprint(abc) = %x; want a9993e36…9cd0d89d", got)
	}
}
