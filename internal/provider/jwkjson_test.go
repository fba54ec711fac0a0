package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestB64JSON(t *testing.T) {
	ok := []struct {
		in   string
		want []byte
	}{
		{`""`, []byte{}},
		{`"AA"`, []byte{0}},
		{`"AQAB"`, []byte{1, 0, 1}},
		{`"_-8"`, []byte{0xff, 0xef}},
		{`"AAEC"`, []byte{0, 1, 2}},
		{`"AAECAw"`, []byte{0, 1, 2, 3}},
	}
	for _, tc := range ok {
		var b B64
		if err := json.Unmarshal([]byte(tc.in), &b); err != nil || !bytes.Equal(b, tc.want) {
			t.Errorf("Unmarshal(%s) = %x, %v; want %x", tc.in, []byte(b), err, tc.want)
		}
		out, err := json.Marshal(b)
		if err != nil || string(out) != tc.in {
			t.Errorf("Marshal(%x) = %s, %v; want %s", tc.want, out, err, tc.in)
		}
	}
	bad := map[string]string{
		"padding":            `"AQAB="`,
		"padding-2":          `"AA=="`,
		"plus":               `"+/8"`,
		"slash":              `"AB/A"`,
		"space":              `"AQ AB"`,
		"newline":            `"AQ\nAB"`,
		"raw-newline":        "\"AQ\nAB\"",
		"cr":                 `"AQAB\r"`,
		"tab":                "\"\tAQAB\"",
		"escape":             `"\u0041QAB"`,
		"trailing-bits-1":    `"AB"`,
		"trailing-bits-2":    `"AAB"`,
		"impossible-length":  `"AAAAA"`,
		"number":             `12`,
		"object":             `{}`,
		"array":              `["AQAB"]`,
		"true":               `true`,
		"unterminated":       `"AQAB`,
		"non-ascii":          `"AQé"`,
		"single-quote":       `'AQAB'`,
		"nul":                "\"AQ\x00B\"",
		"percent":            `"AQ%3D"`,
		"dot":                `"AQ.B"`,
		"standard-alphabet+": `"a+b/"`,
	}
	for name, in := range bad {
		var b B64
		err := b.UnmarshalJSON([]byte(in))
		if !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("UnmarshalJSON(%s: %q) = %v; want ErrInvalidParameter", name, in, err)
		}
		if b != nil {
			t.Errorf("UnmarshalJSON(%s) set the value after an error", name)
		}
	}
	var b B64 = []byte{9}
	if err := json.Unmarshal([]byte(`null`), &b); err != nil || !bytes.Equal(b, []byte{9}) {
		t.Errorf("Unmarshal(null) = %x, %v; want unchanged", []byte(b), err)
	}
	// Inside a struct, with omitempty.
	type doc struct {
		V B64 `json:"v,omitempty"`
		W B64 `json:"w"`
	}
	out, _ := json.Marshal(doc{W: []byte{1}})
	if string(out) != `{"w":"AQ"}` {
		t.Errorf("Marshal(doc) = %s", out)
	}
}

const rsaPublicJWK = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

func TestParseJWK(t *testing.T) {
	j, err := ParseJWK([]byte(rsaPublicJWK))
	if err != nil {
		t.Fatalf("ParseJWK(RFC 7517 A.1) = %v", err)
	}
	if j.Kty != RSA || len(j.N) != 256 || !bytes.Equal(j.E, []byte{1, 0, 1}) || j.KID != "2011-04-29" || j.Private() {
		t.Errorf("ParseJWK(RFC 7517 A.1) = %v, n %d bytes", j, len(j.N))
	}

	ok := map[string]string{
		"ec-private":      `{"kty":"EC","crv":"P-256","x":"AA","y":"AQ","d":"Ag","key_ops":["sign","verify"]}`,
		"unknown-members": `{"kty":"EC","use":"sig","x5c":["MII"],"ext":true,"n2":{"a":[1,2,{"b":null}]}}`,
		"null-members":    `{"kty":"RSA","n":null,"kid":null,"key_ops":null,"crv":null}`,
		"whitespace":      " \n\t{ \"kty\" : \"oct\" , \"k\" : \"AAEC\" } \n",
		"hsm":             `{"kty":"RSA-HSM","key_hsm":"eyJ9"}`,
		"case-distinct":   `{"kty":"EC","KTY":"RSA","Kty":"oct"}`,
		"empty-key-ops":   `{"kty":"EC","key_ops":[]}`,
		"escaped-kty":     `{"k\u0074y":"EC"}`,
	}
	for name, in := range ok {
		if _, err := ParseJWK([]byte(in)); err != nil {
			t.Errorf("ParseJWK(%s) = %v; want success", name, err)
		}
	}
	if j, _ := ParseJWK([]byte(ok["case-distinct"])); j.Kty != EC {
		t.Errorf("ParseJWK(case-distinct).Kty = %q; want EC (member names are case-sensitive)", j.Kty)
	}

	bad := map[string]string{
		"empty":               "",
		"null":                "null",
		"array":               `[{"kty":"EC"}]`,
		"string":              `"kty"`,
		"no-kty":              `{"crv":"P-256"}`,
		"empty-kty":           `{"kty":""}`,
		"unknown-kty":         `{"kty":"OKP"}`,
		"lowercase-kty":       `{"kty":"rsa"}`,
		"kty-number":          `{"kty":1}`,
		"kty-array":           `{"kty":["RSA"]}`,
		"duplicate-kty":       `{"kty":"RSA","kty":"EC"}`,
		"duplicate-escaped":   `{"kty":"RSA","k\u0074y":"EC"}`,
		"duplicate-n":         `{"kty":"RSA","n":"AQ","n":"AQAB"}`,
		"duplicate-d-null":    `{"kty":"EC","d":null,"d":"AQ"}`,
		"duplicate-unknown":   `{"kty":"EC","alg":"ES256","alg":"none"}`,
		"duplicate-nested":    `{"kty":"EC","x5":{"a":1,"a":2}}`,
		"duplicate-in-array":  `{"kty":"EC","x5":[{"a":1,"a":2}]}`,
		"trailing-data":       `{"kty":"EC"} x`,
		"two-objects":         `{"kty":"EC"}{"kty":"RSA"}`,
		"truncated":           `{"kty":"EC"`,
		"trailing-comma":      `{"kty":"EC",}`,
		"invalid-utf8":        "{\"kty\":\"EC\",\"kid\":\"\xff\"}",
		"invalid-utf8-name":   "{\"kty\":\"EC\",\"\xc0\xaf\":1}",
		"bom":                 "\xef\xbb\xbf{\"kty\":\"EC\"}",
		"oth":                 `{"kty":"RSA","oth":[{"r":"AQ","d":"AQ","t":"AQ"}]}`,
		"oth-empty":           `{"kty":"RSA","oth":[]}`,
		"n-padded":            `{"kty":"RSA","n":"AQAB="}`,
		"x-standard-alphabet": `{"kty":"EC","x":"a+b/"}`,
		"d-whitespace":        `{"kty":"EC","d":"AQ AB"}`,
		"d-trailing-bits":     `{"kty":"EC","d":"AB"}`,
		"key-hsm-number":      `{"kty":"RSA-HSM","key_hsm":5}`,
		"kid-number":          `{"kty":"EC","kid":5}`,
		"key-ops-string":      `{"kty":"EC","key_ops":"sign"}`,
		"key-ops-numbers":     `{"kty":"EC","key_ops":[1]}`,
		"crv-number":          `{"kty":"EC","crv":256}`,
		"deep":                `{"kty":"EC","a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"comment":             `{"kty":"EC"/*c*/}`,
		"single-quotes":       `{'kty':'EC'}`,
	}
	for name, in := range bad {
		j, err := ParseJWK([]byte(in))
		if !errors.Is(err, ErrInvalidKey) || j != nil {
			t.Errorf("ParseJWK(%s: %q) = %v, %v; want nil, ErrInvalidKey", name, in, j, err)
		}
	}
	if _, err := ParseJWK([]byte(`{"kty":"EC","a":1e400}`)); err != nil {
		t.Errorf("ParseJWK(unknown member 1e400) = %v; want success (unknown members are skipped)", err)
	}
	_, err = ParseJWK([]byte(`{"kty":"RSA","n":"AQAB="}`))
	if !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("ParseJWK(padded n) = %v; want it to wrap ErrInvalidParameter too", err)
	}
}

// TestParseJWKErrorsDoNotEchoValues: error texts name members, never their values.
func TestParseJWKErrorsDoNotEchoValues(t *testing.T) {
	secret := "c2VjcmV0LWtleS1tYXRlcmlhbC1kbyBub3QgbG9n" // valid base64url
	for _, in := range []string{
		`{"kty":"EC","d":"` + secret + `="}`,
		`{"kty":"EC","d":"` + secret + `+"}`,
		`{"kty":"EC","d":"` + secret + ` "}`,
		`{"kty":"EC","d":"` + secret + `","d":"` + secret + `"}`,
		`{"kty":"` + secret + `"}`,
		`{"kty":"EC","` + secret + `":1,"` + secret + `":2}`,
		`{"kty":"EC","d":"` + secret + `"} "` + secret + `"`,
	} {
		_, err := ParseJWK([]byte(in))
		if err == nil {
			t.Fatalf("ParseJWK(%q) succeeded; want an error", in)
		}
		if strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("ParseJWK error repeats the value: %q", err)
		}
	}
}

func TestJWKUnmarshalJSONIsStrict(t *testing.T) {
	type req struct {
		Key *JWK `json:"key"`
	}
	var r req
	if err := json.Unmarshal([]byte(`{"key":{"kty":"EC","crv":"P-256","kty":"RSA"}}`), &r); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Unmarshal(request with duplicate kty) = %v; want ErrInvalidKey", err)
	}
	if err := json.Unmarshal([]byte(`{"key":{"kty":"EC","x":"AQ=="}}`), &r); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Unmarshal(request with padded x) = %v; want ErrInvalidKey", err)
	}
	r = req{}
	if err := json.Unmarshal([]byte(`{"key":null}`), &r); err != nil || r.Key != nil {
		t.Errorf("Unmarshal(null key) = %v, %v; want nil, nil", r.Key, err)
	}
	if err := json.Unmarshal([]byte(`{"key":{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag"}}`), &r); err != nil || r.Key == nil || r.Key.Crv != P256 {
		t.Errorf("Unmarshal(valid key) = %v, %v", r.Key, err)
	}
	// Marshal writes base64url and omits empty members.
	out, err := json.Marshal(&JWK{Kty: EC, Crv: P256, X: []byte{1}, Y: []byte{2}})
	if err != nil || string(out) != `{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag"}` {
		t.Errorf("Marshal = %s, %v", out, err)
	}
}

func TestJWKPrivateAndString(t *testing.T) {
	pub := &JWK{Kty: RSA, N: []byte{1}, E: []byte{1, 0, 1}}
	if pub.Private() {
		t.Errorf("Private() = true for a public JWK")
	}
	for _, f := range []func(*JWK){
		func(j *JWK) { j.D = []byte{0x5e} }, func(j *JWK) { j.P = []byte{0x5e} }, func(j *JWK) { j.Q = []byte{0x5e} },
		func(j *JWK) { j.DP = []byte{0x5e} }, func(j *JWK) { j.DQ = []byte{0x5e} }, func(j *JWK) { j.QI = []byte{0x5e} },
		func(j *JWK) { j.K = []byte{0x5e} },
	} {
		j := *pub
		f(&j)
		if !j.Private() {
			t.Errorf("Private() = false for %v", j)
		}
	}
	j := &JWK{Kty: EC, Crv: P256, D: []byte("SECRET-D-CANARY"), K: []byte("SECRET-K-CANARY")}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{j, *j} {
			if s := fmt.Sprintf(format, v); strings.Contains(s, "CANARY") || strings.Contains(s, "U0VDUkVU") {
				t.Errorf("Sprintf(%q, JWK) = %q: it shows private members", format, s)
			}
		}
	}
}

// jwkNormalize maps empty slices to nil so JWKs compare after a JSON round trip.
func jwkNormalize(j *JWK) *JWK {
	c := *j
	for _, f := range []*B64{&c.N, &c.E, &c.D, &c.DP, &c.DQ, &c.QI, &c.P, &c.Q, &c.K, &c.T, &c.X, &c.Y} {
		if len(*f) == 0 {
			*f = nil
		}
	}
	if len(c.KeyOps) == 0 {
		c.KeyOps = nil
	}
	return &c
}

// FuzzParseJWK: ParseJWK never panics; what it accepts survives Marshal → ParseJWK
// unchanged; what it refuses wraps ErrInvalidKey and repeats no long run of the input.
func FuzzParseJWK(f *testing.F) {
	for _, s := range []string{
		rsaPublicJWK,
		`{"kty":"EC","crv":"P-256","x":"AA","y":"AQ","d":"Ag","key_ops":["sign"]}`,
		`{"kty":"oct","k":"AAEC","kid":"a\u00e9"}`,
		`{"kty":"RSA","n":"AQ","e":"AQAB","d":"AQ","p":"AQ","q":"AQ","dp":"AQ","dq":"AQ","qi":"AQ"}`,
		`{"kty":"RSA-HSM","key_hsm":"eyJ9","x5c":[{"a":[]}]}`,
		`{"kty":"EC","kty":"RSA"}`,
		`{"kty":"EC","oth":[]}`,
		`{"kty":"EC","x":"AB"}`,
		`{"kty":"EC","x":"AQ=="}`,
		`{"kty":"EC"} {}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJWK(b)
		if err != nil {
			if j != nil || !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParseJWK = %v, %v; want nil and an ErrInvalidKey", j, err)
			}
			for _, run := range alnumRuns(b, 16) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error %q repeats input %q", err, run)
				}
			}
			return
		}
		out, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("Marshal(ParseJWK(...)) = %v", err)
		}
		again, err := ParseJWK(out)
		if err != nil {
			t.Fatalf("ParseJWK(Marshal(ParseJWK(x))) = %v for %s", err, out)
		}
		if !reflect.DeepEqual(jwkNormalize(j), jwkNormalize(again)) {
			t.Fatalf("round trip changed the JWK:\n%#v\n%#v", jwkNormalize(j), jwkNormalize(again))
		}
	})
}

// alnumRuns returns the runs of at least n base64url-alphabet bytes in b.
func alnumRuns(b []byte, n int) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(b); i++ {
		in := i < len(b) && (b[i] >= 'a' && b[i] <= 'z' || b[i] >= 'A' && b[i] <= 'Z' || b[i] >= '0' && b[i] <= '9' || b[i] == '-' || b[i] == '_')
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= n {
				runs = append(runs, string(b[start:i]))
			}
			start = -1
		}
	}
	return runs
}

// TestB64JSONEncoding: B64 encodes as an unpadded base64url JSON string — empty and nil
// as "" — alone, in a struct and with omitempty, and decodes back.
func TestB64JSONEncoding(t *testing.T) {
	type s struct {
		A B64 `json:"a"`
		B B64 `json:"b,omitempty"`
		C B64 `json:"c"`
	}
	v := s{A: B64{0xfb, 0xff, 0x01}, C: nil}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"-_8B","c":""}`; string(out) != want {
		t.Fatalf("Marshal = %s; want %s", out, want)
	}
	var back s
	if err := json.Unmarshal(out, &back); err != nil || !bytes.Equal(back.A, v.A) {
		t.Fatalf("Unmarshal = %x, %v", back.A, err)
	}
	if got, _ := json.Marshal(B64("\x00\x01\x02\x03")); string(got) != `"AAECAw"` {
		t.Errorf("Marshal alone = %s", got)
	}
}
