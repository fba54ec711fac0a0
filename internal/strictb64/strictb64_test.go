package strictb64

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// TestRule: each encoding accepts exactly its canonical form and refuses, with a message
// naming the field and the fault, every variant encoding/base64 would let through.
func TestRule(t *testing.T) {
	cases := []struct {
		enc    *Encoding
		in     string
		want   []byte // nil: refused
		reason string // part of the message when refused
	}{
		{URL, "", []byte{}, ""},
		{URL, "AQAB", []byte{1, 0, 1}, ""},
		{URL, "-_8", []byte{0xfb, 0xff}, ""},
		{URL, "AQ", []byte{1}, ""},
		{URL, "AQ==", nil, "padded"},
		{URL, "AQAB\r\n", nil, "whitespace"},
		{URL, "AQ\nAB", nil, "whitespace"},
		{URL, "AQ\rAB", nil, "whitespace"},
		{URL, " AQAB", nil, "whitespace"},
		{URL, "AQ\\u0041", nil, "whitespace"},
		{URL, "+/8", nil, "standard alphabet"},
		{URL, "AR", nil, "non-zero trailing bits"},
		{URL, "AQABA", nil, "impossible length"},
		{Std, "", []byte{}, ""},
		{Std, "AQAB", []byte{1, 0, 1}, ""},
		{Std, "+/8=", []byte{0xfb, 0xff}, ""},
		{Std, "AQ==", []byte{1}, ""},
		{Std, "AQ", nil, "multiple of 4"},
		{Std, "AQ=", nil, "multiple of 4"},
		{Std, "AQ==\r\n", nil, "whitespace"},
		{Std, "AQ\r\n==", nil, "whitespace"},
		{Std, "-_8=", nil, "base64url alphabet"},
		{Std, "AR==", nil, "non-zero trailing bits"},
		{Std, "A===", nil, "'=' before its end"},
		{Std, "AQ==AQ==", nil, "'=' before its end"},
		{PaddedURL, "-_8=", []byte{0xfb, 0xff}, ""},
		{PaddedURL, "-_8", nil, "multiple of 4"},
		{RawStd, "+/8", []byte{0xfb, 0xff}, ""},
		{RawStd, "+/8=", nil, "padded"},
	}
	for _, c := range cases {
		for _, viaBytes := range []bool{false, true} {
			var got []byte
			var err error
			if viaBytes {
				got, err = c.enc.Decode("f", []byte(c.in))
			} else {
				got, err = c.enc.DecodeString("f", c.in)
			}
			if c.want != nil {
				if err != nil || !bytes.Equal(got, c.want) {
					t.Errorf("%s %q (bytes %v) = %x, %v; want %x", c.enc.name, c.in, viaBytes, got, err, c.want)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s %q (bytes %v) accepted as %x; want refused (%s)", c.enc.name, c.in, viaBytes, got, c.reason)
				continue
			}
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) || !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), `field "f"`) {
				t.Errorf("%s %q: error %q; want an *Error matching ErrInvalid, naming field \"f\" and saying %q", c.enc.name, c.in, err, c.reason)
			}
		}
	}
}

// TestEncodingBaseSkipsLineBreaks pins why this package exists: if encoding/base64 ever
// stops skipping CR/LF in Strict mode, the alphabet check here could be revisited.
func TestEncodingBaseSkipsLineBreaks(t *testing.T) {
	if _, err := base64.RawURLEncoding.Strict().DecodeString("AQ\r\nAB"); err != nil {
		t.Skip("encoding/base64 no longer skips CR/LF")
	}
	if _, err := URL.DecodeString("", "AQ\r\nAB"); err == nil {
		t.Fatal("URL accepted CR/LF inside a value")
	}
}

// TestDecodeJSON: a JSON string token, without escapes; the message never repeats input.
func TestDecodeJSON(t *testing.T) {
	if b, err := URL.DecodeJSON("value", []byte(`"AQAB"`)); err != nil || !bytes.Equal(b, []byte{1, 0, 1}) {
		t.Fatalf(`DecodeJSON("AQAB") = %x, %v`, b, err)
	}
	for _, in := range []string{`AQAB`, `"AQAB`, `1`, `"`, `"AQ\nAB"`, `"\u0041QAB"`, `"c2VjcmV0c2VjcmV0=="`} {
		_, err := URL.DecodeJSON("", []byte(in))
		if err == nil {
			t.Errorf("DecodeJSON(%s) accepted", in)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0") || !strings.HasPrefix(err.Error(), "base64url value ") {
			t.Errorf("DecodeJSON(%s): message %q repeats the input or does not name the value", in, err)
		}
	}
}

// TestDecodeAllocs: the key operations' hot path (provider.B64 via internal/api's flat
// decoder) decodes through DecodeJSON: one allocation, the result.
func TestDecodeAllocs(t *testing.T) {
	in := []byte(`"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `"`)
	if n := testing.AllocsPerRun(100, func() { _, _ = URL.DecodeJSON("", in) }); n != 1 {
		t.Fatalf("DecodeJSON allocates %v times; want 1", n)
	}
}
