package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// testChain returns a leaf signed by a CA, with both keys.
func testChain(t testing.TB, leafKey crypto.Signer) (*x509.Certificate, *x509.Certificate, crypto.Signer) {
	t.Helper()
	caKey := ecKey(t, elliptic.P256())
	ca := issue(t, caProfile(), caKey, nil, nil)
	return issue(t, leafProfile(), leafKey, ca, caKey), ca, caKey
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, kt := range []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa", rsaKey(t, 0)},
		{"ec", ecKey(t, elliptic.P384())},
	} {
		leaf, ca, _ := testChain(t, kt.key)
		for _, ct := range []string{ContentTypePKCS12, ContentTypePEM} {
			t.Run(kt.name+"/"+ct, func(t *testing.T) {
				v, err := Encode(ct, kt.key, []*x509.Certificate{leaf, ca})
				if err != nil {
					t.Fatalf("Encode = %v", err)
				}
				key, chain, gotCT, err := Decode(v, "")
				if err != nil {
					t.Fatalf("Decode(Encode(...)) = %v", err)
				}
				if gotCT != ct {
					t.Errorf("content type = %q; want %q", gotCT, ct)
				}
				if !key.(interface{ Equal(crypto.PrivateKey) bool }).Equal(kt.key) {
					t.Errorf("decoded key differs from the encoded one")
				}
				if len(chain) != 2 || !chain[0].Equal(leaf) || !chain[1].Equal(ca) {
					t.Errorf("chain = %d certs; want leaf, CA", len(chain))
				}
			})
			t.Run(kt.name+"/"+ct+"/no-key", func(t *testing.T) {
				v, err := Encode(ct, nil, []*x509.Certificate{leaf, ca})
				if err != nil {
					t.Fatalf("Encode(key nil) = %v", err)
				}
				if strings.Contains(v, "PRIVATE KEY") {
					t.Errorf("Encode(key nil) wrote a private key")
				}
				if _, _, _, err := Decode(v, ""); !errors.Is(err, ErrNoPrivateKey) {
					t.Errorf("Decode(chain only) = %v; want ErrNoPrivateKey", err)
				}
				certs := decodedCerts(t, ct, v)
				if len(certs) != 2 || !certs[0].Equal(leaf) || !certs[1].Equal(ca) {
					t.Errorf("chain-only content holds %d certs; want leaf, CA", len(certs))
				}
			})
		}
	}
}

// decodedCerts reads the certificates of a key-less Encode result independently of Decode.
func decodedCerts(t *testing.T, ct, v string) []*x509.Certificate {
	t.Helper()
	if ct == ContentTypePKCS12 {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pkcs12.DecodeTrustStore(raw, "")
		if err != nil {
			t.Fatalf("pkcs12.DecodeTrustStore = %v", err)
		}
		return certs
	}
	var certs []*x509.Certificate
	for rest := []byte(v); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return certs
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

func TestEncodeRejects(t *testing.T) {
	leaf, ca, caKey := testChain(t, ecKey(t, elliptic.P256()))
	if _, err := Encode(ContentTypePEM, caKey, []*x509.Certificate{leaf, ca}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Encode(CA key for leaf) = %v; want ErrKeyMismatch", err)
	}
	if _, err := Encode(ContentTypePEM, nil, nil); err == nil {
		t.Errorf("Encode(empty chain) = nil error")
	}
	if _, err := Encode("text/plain", nil, []*x509.Certificate{leaf}); err == nil || !strings.Contains(err.Error(), "text/plain") {
		t.Errorf("Encode(text/plain) = %v; want an error naming it", err)
	}
}

func TestDecodeOrdersChainByKey(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	leaf, ca, _ := testChain(t, key)
	other := issue(t, caProfile(), ecKey(t, elliptic.P256()), nil, nil)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	text := pemText(t, "CERTIFICATE", ca.Raw) + pemText(t, "CERTIFICATE", other.Raw) +
		pemText(t, "PRIVATE KEY", der) + pemText(t, "CERTIFICATE", leaf.Raw)
	_, chain, _, err := Decode(text, "")
	if err != nil {
		t.Fatalf("Decode = %v", err)
	}
	if len(chain) != 3 || !chain[0].Equal(leaf) || !chain[1].Equal(ca) || !chain[2].Equal(other) {
		t.Errorf("chain order wrong; want leaf (matches key), CA, other")
	}
}

// TestDecodeAtEncodeAtKeepOrder: DecodeAt reports where the leaf was among the given
// certificates, and EncodeAt writes them back in that order (PEM, and PKCS#12 without a
// key); a PKCS#12 with a key starts with the leaf. InOrder undoes LeafFirst.
func TestDecodeAtEncodeAtKeepOrder(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	leaf, ca, _ := testChain(t, key)
	other := issue(t, caProfile(), ecKey(t, elliptic.P256()), nil, nil)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	given := []*x509.Certificate{ca, leaf, other}
	text := pemText(t, "CERTIFICATE", ca.Raw) + pemText(t, "PRIVATE KEY", der) + pemText(t, "CERTIFICATE", leaf.Raw) + pemText(t, "CERTIFICATE", other.Raw)
	_, chain, leafAt, ct, err := DecodeAt(text, "")
	if err != nil || ct != ContentTypePEM || leafAt != 1 || !chain[0].Equal(leaf) {
		t.Fatalf("DecodeAt = leaf at %d, %v; want 1, leaf first", leafAt, err)
	}
	same := func(what string, got []*x509.Certificate) {
		t.Helper()
		if len(got) != len(given) {
			t.Fatalf("%s: %d certificates; want %d", what, len(got), len(given))
		}
		for i := range given {
			if !got[i].Equal(given[i]) {
				t.Errorf("%s: certificate %d out of order", what, i)
			}
		}
	}
	pemOut, err := EncodeAt(ContentTypePEM, nil, chain, leafAt)
	if err != nil {
		t.Fatal(err)
	}
	same("EncodeAt(PEM)", decodedCerts(t, ContentTypePEM, pemOut))
	pfxOut, err := EncodeAt(ContentTypePKCS12, nil, chain, leafAt)
	if err != nil {
		t.Fatal(err)
	}
	same("EncodeAt(PKCS#12 without key)", decodedCerts(t, ContentTypePKCS12, pfxOut))
	withKey, err := EncodeAt(ContentTypePKCS12, key, chain, leafAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, at, _, err := DecodeAt(withKey, ""); err != nil || at != 0 || !got[0].Equal(leaf) {
		t.Errorf("EncodeAt(PKCS#12 with key): leaf at %d, %v; want first", at, err)
	}
	for i := range given {
		same("InOrder(LeafFirst)", InOrder(LeafFirst(given, i), i))
	}
}

func pemText(t testing.TB, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestDecodePEMKeyFormats(t *testing.T) {
	rk := rsaKey(t, 1)
	ek := ecKey(t, elliptic.P521())
	rleaf := issue(t, leafProfile(), rk, nil, nil)
	eleaf := issue(t, leafProfile(), ek, nil, nil)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	for _, tc := range []struct {
		name string
		text string
	}{
		{"pkcs1", pemText(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)) + pemText(t, "CERTIFICATE", rleaf.Raw)},
		{"sec1-with-params", "subject=CN = x\n-----BEGIN EC PARAMETERS-----\nBgUrgQQAIw==\n-----END EC PARAMETERS-----\n" + pemText(t, "EC PRIVATE KEY", sec1) + pemText(t, "CERTIFICATE", eleaf.Raw)},
		{"base64-of-pem", base64.StdEncoding.EncodeToString([]byte(pemText(t, "EC PRIVATE KEY", sec1) + pemText(t, "CERTIFICATE", eleaf.Raw)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, ct, err := Decode(tc.text, ""); err != nil || ct != ContentTypePEM {
				t.Errorf("Decode = %q, %v; want PEM, nil", ct, err)
			}
		})
	}
}

func TestDecodeBase64Variants(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	leaf := issue(t, leafProfile(), key, nil, nil)
	v, err := Encode(ContentTypePKCS12, key, []*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(v)
	var wrapped strings.Builder
	for i := 0; i < len(v); i += 64 {
		wrapped.WriteString(v[i:min(i+64, len(v))] + "\r\n")
	}
	for name, s := range map[string]string{
		"raw-std":      base64.RawStdEncoding.EncodeToString(raw),
		"url":          base64.URLEncoding.EncodeToString(raw),
		"raw-url":      base64.RawURLEncoding.EncodeToString(raw),
		"line-wrapped": wrapped.String(),
	} {
		if _, _, ct, err := Decode(s, ""); err != nil || ct != ContentTypePKCS12 {
			t.Errorf("Decode(%s) = %q, %v; want PKCS12, nil", name, ct, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	leaf, ca, caKey := testChain(t, key)
	good, err := Encode(ContentTypePKCS12, key, []*x509.Certificate{leaf, ca})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(good)
	withPassword, err := pkcs12.Modern.Encode(key, leaf, nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), raw...)
	corrupt[len(corrupt)/2] ^= 0xff // inside the MAC'd content: the MAC check fails
	badHeader := append([]byte(nil), raw...)
	badHeader[5] ^= 0xff // a DER length in the PFX header
	truncated := raw[:len(raw)/2]

	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caKeyDER, _ := x509.MarshalPKCS8PrivateKey(caKey)
	//lint:ignore SA1019 encrypted PEM is what the test must refuse.
	encBlock, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey(t, 0)), []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edCert := selfSignedRaw(t, edPub, edKey)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKCS8PrivateKey(smallRSA)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalECPrivateKey(p224)

	for _, tc := range []struct {
		name, value, password string
		want                  error
	}{
		{"fail/wrong-password", good, "nope", ErrWrongPassword},
		{"fail/empty-password-for-protected", base64.StdEncoding.EncodeToString(withPassword), "", ErrWrongPassword},
		{"fail/corrupt-pfx-content", base64.StdEncoding.EncodeToString(corrupt), "", nil},
		{"fail/corrupt-pfx-header", base64.StdEncoding.EncodeToString(badHeader), "", ErrCorrupt},
		{"fail/truncated-pfx", base64.StdEncoding.EncodeToString(truncated), "", ErrCorrupt},
		{"fail/not-base64", "this is not base64 !!", "", ErrCorrupt},
		{"fail/empty", "  ", "", ErrCorrupt},
		{"fail/mismatch-pem", pemText(t, "PRIVATE KEY", caKeyDER) + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrKeyMismatch},
		{"fail/no-cert-pem", pemText(t, "PRIVATE KEY", keyDER), "", ErrNoCertificate},
		{"fail/no-key-pem", pemText(t, "CERTIFICATE", leaf.Raw), "", ErrNoPrivateKey},
		// pem.Decode's rest: text after the last block, or a block it skipped, is refused.
		{"fail/pem-trailing-garbage", pemText(t, "PRIVATE KEY", keyDER) + pemText(t, "CERTIFICATE", leaf.Raw) + "garbage\n", "", ErrCorrupt},
		{"fail/pem-truncated-last-block", pemText(t, "PRIVATE KEY", keyDER) + pemText(t, "CERTIFICATE", leaf.Raw) + "-----BEGIN CERTIFICATE-----\nMIIB\n", "", ErrCorrupt},
		{"fail/pem-damaged-middle-block", pemText(t, "PRIVATE KEY", keyDER) + "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n" + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrCorrupt},
		{"fail/two-keys-pem", pemText(t, "PRIVATE KEY", keyDER) + pemText(t, "PRIVATE KEY", keyDER) + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrCorrupt},
		{"fail/encrypted-pem-legacy", string(pem.EncodeToMemory(encBlock)), "", ErrEncryptedKey},
		{"fail/encrypted-pkcs8", pemText(t, "ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), "", ErrEncryptedKey},
		{"fail/corrupt-pem-key", pemText(t, "PRIVATE KEY", keyDER[:len(keyDER)-5]) + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrCorrupt},
		{"fail/corrupt-pem-cert", pemText(t, "PRIVATE KEY", keyDER) + pemText(t, "CERTIFICATE", leaf.Raw[:100]), "", ErrCorrupt},
		{"fail/unknown-pem-block", pemText(t, "X509 CRL", []byte{1}), "", ErrCorrupt},
		{"fail/ed25519", pemText(t, "PRIVATE KEY", edDER) + pemText(t, "CERTIFICATE", edCert), "", ErrUnsupportedKey},
		{"fail/rsa-1024", pemText(t, "PRIVATE KEY", smallDER) + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrUnsupportedKey},
		{"fail/p224", pemText(t, "EC PRIVATE KEY", p224DER) + pemText(t, "CERTIFICATE", leaf.Raw), "", ErrUnsupportedKey},
		{"fail/oversize-base64", base64.StdEncoding.EncodeToString(make([]byte, MaxContent+1)), "", ErrTooLarge},
		{"fail/oversize-pem", pemText(t, "CERTIFICATE", make([]byte, MaxContent)), "", ErrTooLarge},
		{"fail/oversize-raw", strings.Repeat("A", 2*MaxContent+1), "", ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := Decode(tc.value, tc.password)
			switch {
			case err == nil:
				t.Fatalf("Decode = nil error; want %v", tc.want)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Decode = %v; want %v", err, tc.want)
			case tc.want == nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongPassword):
				// A flipped byte breaks the MAC (reported as a wrong password) or the DER.
				t.Errorf("Decode = %v; want ErrCorrupt or ErrWrongPassword", err)
			}
			if err.Error() == "" {
				t.Errorf("empty error message")
			}
			for _, secret := range [][]byte{keyDER, caKeyDER} {
				if leaksKey(err.Error(), secret) {
					t.Errorf("error %q contains key bytes", err)
				}
			}
		})
	}
	if err := ErrWrongPassword.Error(); err != "the password does not open the PFX" {
		t.Errorf("ErrWrongPassword = %q", err)
	}
}

// leaksKey reports whether msg contains a 12-byte run of der in raw, hex or base64 form.
func leaksKey(msg string, der []byte) bool {
	for i := 0; i+12 <= len(der); i += 4 {
		run := der[i : i+12]
		if strings.Contains(msg, string(run)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(run)[:12]) ||
			strings.Contains(strings.ToLower(msg), strings.ToLower(strings.TrimSpace(hexString(run)))) {
			return true
		}
	}
	return false
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func selfSignedRaw(t testing.TB, pub crypto.PublicKey, key crypto.Signer) []byte {
	t.Helper()
	tmpl, err := Template(Profile{Subject: "CN=ed", ValidityMonths: 1}, pub, testNow)
	if err != nil {
		t.Fatal(err)
	}
	der, err := Issue(tmpl, pub, nil, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestDecodeRefusesHugeIterations(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	leaf := issue(t, leafProfile(), key, nil, nil)
	pfx, err := pkcs12.Modern.WithIterations(MaxPFXIterations+1).Encode(key, leaf, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Decode(base64.StdEncoding.EncodeToString(pfx), "")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "iterations") {
		t.Errorf("Decode(PFX with %d iterations) = %v; want ErrCorrupt about iterations", MaxPFXIterations+1, err)
	}
	ok, err := pkcs12.Modern.WithIterations(10000).Encode(key, leaf, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Decode(base64.StdEncoding.EncodeToString(ok), ""); err != nil {
		t.Errorf("Decode(PFX with 10000 iterations) = %v; want nil", err)
	}
}
