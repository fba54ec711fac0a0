package azsd

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseFile feeds arbitrary bytes to ParseFile, which `coffer` runs on a security-domain
// file given to it, and restores what it accepts with two custodians' keys: whatever Restore
// makes is a restore blob that ParseRestoreBlob accepts and the exchange key opens.
func FuzzParseFile(f *testing.F) {
	text, err := os.ReadFile("testdata/security-domain.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Add([]byte(`{"EncData":{"data":[{"compact_jwe":"a.b.c.d.e","tag":"t"}],"kdf":"sp108_kdf"},"SharedKeys":{"enc_shares":[],"key_algorithm":"shamir_share","required":2}}`))
	holders := []Holder{{Key: readKey(f, "custodian0")}, {Key: readKey(f, "custodian1")}}
	exKey, exCert := readKey(f, "exchange"), readCert(f, "exchange")
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := ParseFile(b)
		if err != nil {
			if sd != nil {
				t.Fatalf("ParseFile returned a file with error %v", err)
			}
			return
		}
		if sd.SharedKeys.Required < MinRequired || sd.SharedKeys.Required > len(sd.SharedKeys.EncShares) {
			t.Fatalf("ParseFile accepted quorum %d of %d shares", sd.SharedKeys.Required, len(sd.SharedKeys.EncShares))
		}
		out, err := Restore(sd, holders, exCert)
		if err != nil {
			return
		}
		rb, err := ParseRestoreBlob([]byte(out))
		if err != nil {
			t.Fatalf("ParseRestoreBlob(Restore's output) = %v", err)
		}
		secrets, err := Open(rb, exKey, exCert.Raw)
		if err != nil {
			t.Fatalf("Open(Restore's output) = %v", err)
		}
		ClearSecrets(secrets)
	})
}

// FuzzParseJWE: a compact JWE that parseJWE accepts is written back byte for byte by
// compact (the encoding is strict base64url), and decrypting it with a "dir" key never
// panics, whatever its padding.
func FuzzParseJWE(f *testing.F) {
	cek := make([]byte, cekLen)
	for i := range cek {
		cek[i] = byte(i)
	}
	for _, pt := range []string{"", "secret", "sixteen bytes!!!"} {
		c, err := encryptDir(cek, "kid", []byte(pt))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
	}
	pub := &readKey(f, "custodian0").PublicKey
	c, err := encryptRSA(pub, "", []byte("share"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Fuzz(func(t *testing.T, s string) {
		j, err := parseJWE(s)
		if err != nil {
			return
		}
		if got := j.compact(); got != s {
			t.Fatalf("compact(parseJWE(%q)) = %q", s, got)
		}
		_, _ = decryptDir(cek, s)
	})
}

// TestJWERefusesNonCanonicalText: encoding/base64 skips CR and LF even in strict mode, so a
// compact JWE with line breaks in a part decoded to the same bytes and decrypted: one JWE
// had many texts. Only the base64url alphabet and the four dots are a compact JWE.
func TestJWERefusesNonCanonicalText(t *testing.T) {
	cek := make([]byte, cekLen)
	c, err := encryptDir(cek, "kid", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decryptDir(cek, c); err != nil {
		t.Fatalf("decryptDir(valid) = %v", err)
	}
	at := strings.LastIndexByte(c, '.') + 4
	for _, ins := range []string{"\n", "\r\n", "\r", " ", "="} {
		if _, err := decryptDir(cek, c[:at]+ins+c[at:]); err != errJWE {
			t.Errorf("decryptDir(tag with %q inserted) = %v; want errJWE", ins, err)
		}
	}
}
