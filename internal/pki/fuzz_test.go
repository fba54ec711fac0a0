package pki

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// FuzzDecode feeds import content to Decode: it must never panic, and whatever it accepts
// must be a supported key with the certificate it matches first.
func FuzzDecode(f *testing.F) {
	key := ecKey(f, elliptic.P256())
	leaf, ca, _ := testChain(f, key)
	for _, ct := range []string{ContentTypePKCS12, ContentTypePEM} {
		v, err := Encode(ct, key, []*x509.Certificate{leaf, ca})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v, "")
	}
	rk := rsaKey(f, 0)
	rleaf := issue(f, leafProfile(), rk, nil, nil)
	pfx, err := pkcs12.LegacyRC2.Encode(rk, rleaf, nil, "secret")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base64.StdEncoding.EncodeToString(pfx), "secret")
	v, _ := Encode(ContentTypePEM, rk, []*x509.Certificate{rleaf})
	f.Add(v, "")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(v)), "")
	f.Add("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", "")

	f.Fuzz(func(t *testing.T, value, password string) {
		key, chain, ct, err := Decode(value, password)
		if err != nil {
			if key != nil || chain != nil || ct != "" {
				t.Fatalf("Decode returned values with error %v", err)
			}
			return
		}
		if ct != ContentTypePKCS12 && ct != ContentTypePEM {
			t.Fatalf("content type %q", ct)
		}
		if len(chain) == 0 {
			t.Fatalf("Decode accepted content without a certificate")
		}
		if err := checkKeyMatches(key, chain[0]); err != nil {
			t.Fatalf("Decode accepted a key that does not match chain[0]: %v", err)
		}
		// What Decode accepts, Encode writes and Decode reads back.
		for _, ct := range []string{ContentTypePKCS12, ContentTypePEM} {
			out, err := Encode(ct, key, chain)
			if err != nil {
				t.Fatalf("Encode(%s) of decoded content = %v", ct, err)
			}
			k2, c2, _, err := Decode(out, "")
			if err != nil || !k2.(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) || len(c2) != len(chain) {
				t.Fatalf("re-Decode(%s) = %v", ct, err)
			}
		}
	})
}

// FuzzParseSubject checks that whatever ParseSubject accepts, FormatSubject writes in a form
// ParseSubject reads back to the same attributes.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{
		"CN=a.example, O=Org, OU=Unit, C=US, L=Seattle, ST=WA, E=ops@a.example",
		`CN="a, b"; O=x\\y; 1.2.3.4=z`, `OU="say ""hi"""`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSubject(s)
		if err != nil {
			return
		}
		out := FormatSubject(n)
		n2, err := ParseSubject(out)
		if err != nil {
			t.Fatalf("ParseSubject(FormatSubject(ParseSubject(%q))) = %v (formatted %q)", s, err, out)
		}
		if again := FormatSubject(n2); again != out {
			t.Fatalf("round trip of %q: %q then %q", s, out, again)
		}
	})
}
