package sdblob

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t testing.TB, k *rsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custodian"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestJWKPublicKey(t *testing.T) {
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	ne := PublicJWK(&k1.PublicKey)
	for _, tc := range []struct {
		name string
		jwk  JWK
		want *rsa.PublicKey
	}{
		{"ok/n-e", ne, &k1.PublicKey},
		{"ok/x5c", JWK{Kty: "RSA", X5c: []string{selfSigned(t, k1)}}, &k1.PublicKey},
		{"ok/both-agree", JWK{Kty: "RSA", N: ne.N, E: ne.E, X5c: []string{selfSigned(t, k1)}}, &k1.PublicKey},
		{"fail/both-disagree", JWK{Kty: "RSA", N: ne.N, E: ne.E, X5c: []string{selfSigned(t, k2)}}, nil},
		{"fail/kty-ec", JWK{Kty: "EC", N: ne.N, E: ne.E}, nil},
		{"fail/e-3", JWK{Kty: "RSA", N: ne.N, E: "Aw"}, nil},
		{"fail/e-leading-zero", JWK{Kty: "RSA", N: ne.N, E: "AAEAAQ"}, nil},
		{"fail/n-padded", JWK{Kty: "RSA", N: ne.N + "=", E: ne.E}, nil},
		{"fail/n-short", JWK{Kty: "RSA", N: "AQAB", E: ne.E}, nil},
		{"fail/x5c-std-alphabet-broken", JWK{Kty: "RSA", X5c: []string{"!!!"}}, nil},
		{"fail/empty", JWK{Kty: "RSA"}, nil},
		// encoding/base64 skips CR/LF even in Strict mode (SECURITY-NOTES I6).
		{"fail/n-crlf", JWK{Kty: "RSA", N: ne.N[:20] + "\r\n" + ne.N[20:], E: ne.E}, nil},
		{"fail/x5c-crlf", JWK{Kty: "RSA", X5c: []string{crlf(selfSigned(t, k1))}}, nil},
		{"fail/x5c-url-alphabet", JWK{Kty: "RSA", X5c: []string{urlAlphabet(selfSigned(t, k1))}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.jwk.PublicKey()
			if tc.want == nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("PublicKey() = %v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("PublicKey() = %v; want the key", err)
			}
		})
	}
}

// crlf breaks s into 64-character lines, as PEM bodies and `base64` output are.
func crlf(s string) string {
	var out string
	for len(s) > 64 {
		out, s = out+s[:64]+"\r\n", s[64:]
	}
	return out + s
}

// urlAlphabet rewrites standard base64 in the base64url alphabet (padding kept).
func urlAlphabet(s string) string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(s)
}

// TestStrictBase64Messages: a malformed field is refused with its name and the fault.
func TestStrictBase64Messages(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	ne := PublicJWK(&k.PublicKey)
	x5c := selfSigned(t, k)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"n-crlf", func() error { _, err := JWK{Kty: "RSA", N: crlf(ne.N), E: ne.E}.PublicKey(); return err }, `base64url field "n" contains a character outside`},
		{"e-padded", func() error { _, err := JWK{Kty: "RSA", N: ne.N, E: "AQAB=="}.PublicKey(); return err }, `base64url field "e" is padded`},
		{"x5c-crlf", func() error { _, err := JWK{Kty: "RSA", X5c: []string{crlf(x5c)}}.PublicKey(); return err }, `standard base64 field "x5c[0]" contains a character outside`},
		{"thumbprint-x5c-crlf", func() error { _, err := JWK{Kty: "RSA", X5c: []string{crlf(x5c)}}.CertThumbprint(); return err }, `"x5c[0]" contains a character outside`},
	} {
		err := tc.err()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrInvalid saying %q", tc.name, err, tc.want)
		}
	}
}

// TestThumbprintRFC7638 checks the thumbprint against RFC 7638 §3.1's example.
func TestThumbprintRFC7638(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := Thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %s; want %s", got, want)
	}
}

func FuzzParseBlob(f *testing.F) {
	f.Add(`{"format":"coffer-sd/1","domain_id":"00000000-0000-4000-8000-000000000000","required":2,"enc_shares":[],"check":""}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBlob(s)
		if err == nil && (b.Required < MinQuorum || b.Required > len(b.Shares) || len(b.Shares) > MaxCustodians) {
			t.Fatalf("ParseBlob accepted %+v", b)
		}
	})
}

func FuzzParseUpload(f *testing.F) {
	f.Add(`{"format":"coffer-sd-upload/1","security_domain":"{}","transfer_key":"x","shares":[]}`)
	f.Fuzz(func(t *testing.T, s string) {
		u, b, err := ParseUpload(s)
		if err == nil && len(u.Shares) > len(b.Shares) {
			t.Fatalf("ParseUpload accepted %d shares for %d", len(u.Shares), len(b.Shares))
		}
	})
}

func FuzzJWKPublicKey(f *testing.F) {
	f.Add("RSA", "AQAB", "AQAB", "")
	f.Fuzz(func(t *testing.T, kty, n, e, x5c string) {
		j := JWK{Kty: kty, N: n, E: e}
		if x5c != "" {
			j.X5c = []string{x5c}
		}
		if pub, err := j.PublicKey(); err == nil && (pub.E != 65537 || pub.N.BitLen() < 2048) {
			t.Fatalf("PublicKey accepted e=%d, %d bits", pub.E, pub.N.BitLen())
		}
	})
}

// FuzzParseDomain: the datum a restore blob carries is parsed strictly; what ParseDomain
// accepts, Marshal writes and ParseDomain reads back to the same domain.
func FuzzParseDomain(f *testing.F) {
	d := &Domain{ID: "00000000-0000-4000-8000-000000000000", Key: make([]byte, DomainKeyLen), Required: 2}
	good, err := d.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"domain_id":"x","domain_key":"","required":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDomain(b)
		if err != nil {
			return
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed domain = %v", err)
		}
		d2, err := ParseDomain(out)
		if err != nil || d2.ID != d.ID || d2.Required != d.Required || string(d2.Key) != string(d.Key) {
			t.Fatalf("ParseDomain(Marshal(ParseDomain(%q))) = %+v, %v", b, d2, err)
		}
	})
}
