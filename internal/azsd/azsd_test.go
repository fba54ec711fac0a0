package azsd

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
)

func readPEM(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return blk.Bytes
}

func readKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(readPEM(t, "testdata/"+name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func readCert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(readPEM(t, "testdata/"+name+".cer"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var vectorSecrets = []Secret{{Tag: "coffer-test", Plaintext: []byte("the security domain's data, 48 bytes long......")}, {Tag: "second", Plaintext: []byte("x")}}

func checkSecrets(t *testing.T, got []Secret) {
	t.Helper()
	if len(got) != len(vectorSecrets) {
		t.Fatalf("got %d secrets; want %d", len(got), len(vectorSecrets))
	}
	for i, s := range got {
		if s.Tag != vectorSecrets[i].Tag || string(s.Plaintext) != string(vectorSecrets[i].Plaintext) {
			t.Errorf("secret %d = %q %q; want %q %q", i, s.Tag, s.Plaintext, vectorSecrets[i].Tag, vectorSecrets[i].Plaintext)
		}
	}
}

// TestAzureCLIVectors: a restore blob the Azure CLI made from a security-domain file of
// azsd.Make opens here with the exchange key (testdata/README.md); Restore, the CLI's
// algorithm in Go, makes one from the same file that opens too.
func TestAzureCLIVectors(t *testing.T) {
	exKey, exCert := readKey(t, "exchange"), readCert(t, "exchange")
	text, err := os.ReadFile("testdata/restore-blob.json")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ParseRestoreBlob(text)
	if err != nil {
		t.Fatalf("ParseRestoreBlob(the CLI's restore blob) = %v", err)
	}
	got, err := Open(rb, exKey, exCert.Raw)
	if err != nil {
		t.Fatalf("Open(the CLI's restore blob) = %v", err)
	}
	checkSecrets(t, got)

	sdText, err := os.ReadFile("testdata/security-domain.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(sdText)
	if err != nil {
		t.Fatalf("ParseFile = %v", err)
	}
	for _, tc := range []struct {
		name    string
		holders []Holder
	}{
		{"ok/by-certificate", []Holder{{readKey(t, "custodian2"), CertThumbprint(readCert(t, "custodian2").Raw)}, {readKey(t, "custodian1"), CertThumbprint(readCert(t, "custodian1").Raw)}}},
		{"ok/by-trial", []Holder{{Key: readKey(t, "custodian0")}, {Key: readKey(t, "custodian1")}}},
		{"ok/all-three", []Holder{{Key: readKey(t, "custodian0")}, {Key: readKey(t, "custodian1")}, {Key: readKey(t, "custodian2")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Restore(f, tc.holders, exCert)
			if err != nil {
				t.Fatalf("Restore = %v", err)
			}
			rb, err := ParseRestoreBlob([]byte(out))
			if err != nil {
				t.Fatalf("ParseRestoreBlob(Restore's output) = %v", err)
			}
			got, err := Open(rb, exKey, exCert.Raw)
			if err != nil {
				t.Fatalf("Open(Restore's output) = %v", err)
			}
			checkSecrets(t, got)
		})
	}
	other := readCert(t, "custodian0")
	if _, err := Open(rb, readKey(t, "custodian0"), other.Raw); !errors.Is(err, ErrExchangeKey) {
		t.Errorf("Open(for another exchange certificate) = %v; want ErrExchangeKey", err)
	}
	// The certificate named but another key: nothing decrypts.
	if _, err := Open(rb, readKey(t, "custodian0"), exCert.Raw); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(with another key) = %v; want ErrDecrypt", err)
	}
}

// TestFileShape pins what the Azure CLI reads in a security-domain file: the member
// names, key_algorithm, required, each share's x5t_256 (the SHA-256 of the custodian's
// certificate) and JWE headers, and the data's kdf.
func TestFileShape(t *testing.T) {
	var cs []Custodian
	for _, n := range []string{"custodian0", "custodian1", "custodian2"} {
		c := readCert(t, n)
		cs = append(cs, Custodian{Key: c.PublicKey.(*rsa.PublicKey), X5tS256: CertThumbprint(c.Raw)})
	}
	text, err := Make(vectorSecrets, cs, 3)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil || len(raw) != 2 || raw["EncData"] == nil || raw["SharedKeys"] == nil {
		t.Fatalf("file = %s; want EncData and SharedKeys only", text)
	}
	if string(raw["SharedKeys"]["key_algorithm"]) != `"shamir_share"` || string(raw["SharedKeys"]["required"]) != "3" || string(raw["EncData"]["kdf"]) != `"sp108_kdf"` {
		t.Errorf("file = %s", text)
	}
	f, _ := ParseFile([]byte(text))
	for i, es := range f.SharedKeys.EncShares {
		if es.X5tS256 != cs[i].X5tS256 {
			t.Errorf("share %d x5t_256 = %s; want %s", i, es.X5tS256, cs[i].X5tS256)
		}
		j, err := parseJWE(es.EncKey)
		if err != nil || j.H.Alg != "RSA-OAEP-256" || j.H.Enc != "A256CBC-HS512" {
			t.Errorf("share %d header = %+v, %v", i, j, err)
		}
		share, err := decryptRSA(readKey(t, []string{"custodian0", "custodian1", "custodian2"}[i]), es.EncKey)
		if err != nil || len(share) != 2*masterKeyLen || share[1]>>1 != byte(i+1) {
			t.Errorf("share %d = %x, %v; want 32 little-endian words with x = %d", i, share, err, i+1)
		}
	}
	for _, d := range f.EncData.Data {
		j, err := parseJWE(d.CompactJWE)
		if err != nil || j.H.Alg != "dir" || j.H.Kid != d.Tag || len(j.EncryptedKey) != 0 {
			t.Errorf("datum %q header = %+v, %v", d.Tag, j, err)
		}
	}
}

// TestRestoreRefuses: too few keys, keys of no share, a changed datum or share, shares of
// two downloads.
func TestRestoreRefuses(t *testing.T) {
	exCert := readCert(t, "exchange")
	sdText, _ := os.ReadFile("testdata/security-domain.json")
	k0, k1, k2 := Holder{Key: readKey(t, "custodian0")}, Holder{Key: readKey(t, "custodian1")}, Holder{Key: readKey(t, "custodian2")}
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	parse := func(mod func(f *File)) *File {
		f, err := ParseFile(sdText)
		if err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(f)
		}
		return f
	}
	flip := func(s string) string { // change one character of the ciphertext part
		p := strings.Split(s, ".")
		c := []byte(p[3])
		c[3] ^= 1
		if c[3] == '.' || c[3] == 0 {
			c[3] = 'A'
		}
		p[3] = string(c)
		return strings.Join(p, ".")
	}
	// A second file of the same custodians: its shares do not combine with the first's.
	var cs []Custodian
	for _, n := range []string{"custodian0", "custodian1", "custodian2"} {
		c := readCert(t, n)
		cs = append(cs, Custodian{Key: c.PublicKey.(*rsa.PublicKey), X5tS256: CertThumbprint(c.Raw)})
	}
	second, _ := Make(vectorSecrets, cs, 2)
	f2, _ := ParseFile([]byte(second))
	threeOfThree, _ := Make(vectorSecrets, cs, 3)
	f3, _ := ParseFile([]byte(threeOfThree))
	f3.SharedKeys.Required = 2

	for _, tc := range []struct {
		name    string
		f       *File
		holders []Holder
		want    error
	}{
		{"fail/one-key", parse(nil), []Holder{k0}, ErrInvalid},
		{"fail/same-key-twice", parse(nil), []Holder{k0, k0}, ErrInvalid},
		{"fail/stranger", parse(nil), []Holder{k0, {Key: stranger}}, ErrInvalid},
		{"fail/wrong-thumbprint", parse(nil), []Holder{k0, {Key: k1.Key, X5tS256: CertThumbprint(readCert(t, "custodian2").Raw)}}, ErrInvalid},
		{"fail/datum-changed", parse(func(f *File) { f.EncData.Data[0].CompactJWE = flip(f.EncData.Data[0].CompactJWE) }), []Holder{k0, k1}, ErrDecrypt},
		{"fail/datum-tag-changed", parse(func(f *File) { f.EncData.Data[1].Tag = "other" }), []Holder{k0, k1}, ErrDecrypt},
		{"fail/share-changed", parse(func(f *File) { f.SharedKeys.EncShares[1].EncKey = flip(f.SharedKeys.EncShares[1].EncKey) }), []Holder{k0, k1}, ErrInvalid},
		{"fail/shares-of-two-downloads", parse(func(f *File) { f.SharedKeys.EncShares[1] = f2.SharedKeys.EncShares[1] }), []Holder{k0, k1}, ErrDecrypt},
		{"fail/quorum-lowered", f3, []Holder{k1, k2}, ErrDecrypt},
		{"ok/quorum", parse(nil), []Holder{k1, k2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(tc.f, tc.holders, exCert)
			if tc.want == nil {
				if err != nil {
					t.Errorf("Restore = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Restore = %v; want %v", err, tc.want)
			}
		})
	}
}

// TestOpenRefuses: a changed restore blob does not open, and every decryption failure is
// the same error.
func TestOpenRefuses(t *testing.T) {
	exKey, exCert := readKey(t, "exchange"), readCert(t, "exchange")
	text, _ := os.ReadFile("testdata/restore-blob.json")
	for _, tc := range []struct {
		name string
		mod  func(rb *RestoreBlob)
		want error
	}{
		{"fail/wrapped-key-byte", func(rb *RestoreBlob) { rb.WrappedKey.EncKey = strings.Replace(rb.WrappedKey.EncKey, ".", ".A", 1) }, ErrDecrypt},
		{"fail/wrapped-key-ciphertext", func(rb *RestoreBlob) {
			p := strings.Split(rb.WrappedKey.EncKey, ".")
			p[3] = p[4][:len(p[3])%len(p[4])] + p[3][len(p[3])%len(p[4]):]
			rb.WrappedKey.EncKey = strings.Join(p, ".")
		}, ErrDecrypt},
		{"fail/datum-swapped", func(rb *RestoreBlob) {
			rb.EncData.Data[0].CompactJWE, rb.EncData.Data[1].CompactJWE = rb.EncData.Data[1].CompactJWE, rb.EncData.Data[0].CompactJWE
		}, ErrDecrypt},
		{"fail/tag-renamed", func(rb *RestoreBlob) { rb.EncData.Data[1].Tag = "third" }, ErrDecrypt},
		{"fail/datum-header", func(rb *RestoreBlob) {
			p := strings.Split(rb.EncData.Data[0].CompactJWE, ".")
			p[0] = b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256CBC-HS512","kid":"x"}`))
			rb.EncData.Data[0].CompactJWE = strings.Join(p, ".")
		}, ErrDecrypt},
		{"fail/other-thumbprint", func(rb *RestoreBlob) { rb.WrappedKey.X5tS256 = CertThumbprint([]byte("another")) }, ErrExchangeKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb, err := ParseRestoreBlob(text)
			if err != nil {
				t.Fatal(err)
			}
			tc.mod(rb)
			if _, err := Open(rb, exKey, exCert.Raw); !errors.Is(err, tc.want) {
				t.Errorf("Open = %v; want %v", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "{}", `{"EncData":{"data":[],"kdf":"sp108_kdf"},"WrappedKey":{}}`,
		`{"EncData":{"data":[{"compact_jwe":"a","tag":"t"}],"kdf":"other"},"WrappedKey":{"enc_key":"a","x5t_256":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}}`,
		`{"EncData":{"data":[{"compact_jwe":"a","tag":"t"}],"kdf":"sp108_kdf"},"WrappedKey":{"enc_key":"a","x5t_256":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},"extra":1}`,
		`{"EncData":{"data":[{"compact_jwe":"a","tag":"t"},{"compact_jwe":"a","tag":"t"}],"kdf":"sp108_kdf"},"WrappedKey":{"enc_key":"a","x5t_256":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}}`,
		strings.Repeat(" ", maxLen+1),
	} {
		if _, err := ParseRestoreBlob([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRestoreBlob(%.60q) = %v; want ErrInvalid", bad, err)
		}
	}
	// encoding/base64 skips CR/LF even in Strict mode: x5t_256 with a line break inside was
	// taken before strictb64 (SECURITY-NOTES I6).
	var m map[string]any
	if err := json.Unmarshal(text, &m); err != nil {
		t.Fatal(err)
	}
	wk := m["WrappedKey"].(map[string]any)
	tp := wk["x5t_256"].(string)
	wk["x5t_256"] = tp[:10] + "\r\n" + tp[10:]
	crlf, _ := json.Marshal(m)
	if _, err := ParseRestoreBlob(crlf); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseRestoreBlob(x5t_256 with CR/LF) = %v; want ErrInvalid", err)
	}
}

// TestJWEPadding: every plaintext length round-trips; RSA1_5 and unknown enc are refused.
func TestJWEPadding(t *testing.T) {
	cek := make([]byte, cekLen)
	rand.Read(cek)
	for n := range 40 {
		pt := make([]byte, n)
		rand.Read(pt)
		c, err := encryptDir(cek, "t", pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decryptDir(cek, c)
		if err != nil || string(got) != string(pt) {
			t.Fatalf("round trip of %d bytes = %x, %v", n, got, err)
		}
	}
	k := readKey(t, "custodian0")
	c, _ := encryptRSA(&k.PublicKey, "", []byte("secret"))
	p := strings.Split(c, ".")
	for _, h := range []string{`{"alg":"RSA1_5","enc":"A256CBC-HS512"}`, `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, `{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512","zip":"DEF"}`} {
		p[0] = b64.EncodeToString([]byte(h))
		if _, err := decryptRSA(k, strings.Join(p, ".")); err != errJWE {
			t.Errorf("decryptRSA(header %s) = %v; want errJWE", h, err)
		}
	}
}

func FuzzParseRestoreBlob(f *testing.F) {
	text, err := os.ReadFile("testdata/restore-blob.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Add([]byte(`{"EncData":{"data":[{"compact_jwe":"a.b.c.d.e","tag":"t"}],"kdf":"sp108_kdf"},"WrappedKey":{"enc_key":"a..c.d.e","x5t_256":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}}`))
	exKey, exCert := readKey(f, "exchange"), readCert(f, "exchange")
	f.Fuzz(func(t *testing.T, b []byte) {
		rb, err := ParseRestoreBlob(b)
		if err != nil {
			return
		}
		if s, err := Open(rb, exKey, exCert.Raw); err == nil {
			ClearSecrets(s)
		}
	})
}
