package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
)

// checkFlat decodes body with each key-operation decoder and with encoding/json
// (DecodeJSON): both must agree on success and on the value; it returns whether the flat
// parser took the body.
func checkFlat(t *testing.T, body string) (fast bool) {
	t.Helper()
	cases := []struct {
		name   string
		v      func() any
		decode func(b string, v any) error
	}{
		{"sign", func() any { return new(keys.SignParams) }, func(b string, v any) error {
			return decodeSign(jsonRequest(b), v.(*keys.SignParams))
		}},
		{"verify", func() any { return new(keys.VerifyParams) }, func(b string, v any) error {
			return decodeVerify(jsonRequest(b), v.(*keys.VerifyParams))
		}},
		{"operation", func() any { return new(keys.OperationParams) }, func(b string, v any) error {
			return decodeOperation(jsonRequest(b), v.(*keys.OperationParams))
		}},
	}
	for _, c := range cases {
		got, want := c.v(), c.v()
		gerr := c.decode(body, got)
		werr := DecodeJSON(jsonRequest(body), want)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error() && !namesB64Member(gerr, werr)) {
			t.Fatalf("%s %q: decoder error %v; encoding/json %v", c.name, body, gerr, werr)
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q: decoder %+v; encoding/json %+v", c.name, body, got, want)
		}
	}
	return parseFlat([]byte(body), func(string, []byte) bool { return true })
}

// namesB64Member reports whether gerr is werr, a base64 error of encoding/json's decoding,
// told better: the same status and code, and a message naming the member (decodeKeyOp's
// nameBadB64Member).
func namesB64Member(gerr, werr error) bool {
	g, okG := gerr.(*Error)
	w, okW := werr.(*Error)
	return okG && okW && g.Status == w.Status && g.Code == w.Code &&
		strings.Contains(w.Message, "base64url value ") && strings.Contains(g.Message, "base64url field \"")
}

// TestFlatBodies: the bodies the Azure SDKs send take the flat parser and decode as
// encoding/json decodes them; everything else decodes exactly as before, errors included
// (but for a base64 error, which names the member).
func TestFlatBodies(t *testing.T) {
	for _, b := range []string{
		`{"alg":"ES256","value":"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"}`,
		` { "alg" : "RSA-OAEP-256" ,	"value":"AQAB"}` + "\n",
		`{"alg":"A256GCM","value":"AQAB","iv":"AAECAwQFBgcICQoL","aad":"YQ","tag":"AAECAwQFBgcICQoLDA0ODw"}`,
		`{"alg":"PS256","digest":"AQAB","value":"AQAB"}`,
		`{}`,
	} {
		if !checkFlat(t, b) {
			t.Errorf("%q did not take the flat parser", b)
		}
	}
	for _, b := range []string{
		``, `{`, `{"alg":"ES256"`, `{"alg":"ES256",}`, `{"alg":"ES256"} x`, `{"alg":"ES256"}}`,
		`{"alg":"ES256","alg":"PS256"}`, `{"ALG":"ES256"}`, `{"alg":"E\u0053256"}`, `{"alg":1}`,
		`{"alg":null}`, `{"value":"a+b/"}`, `{"value":"AQAB="}`, `{"unknown":"x"}`, `{"alg":"é"}`,
		`{"value":"AQ\nB"}`, `[]`, `"x"`, `{"alg":"ES256","value":"AQAB","iv":"AQAB","aad":"AQAB","tag":"AQAB","x":"1","y":"2","z":"3","w":"4"}`,
	} {
		checkFlat(t, b)
	}
}

func FuzzFlatBodies(f *testing.F) {
	for _, s := range []string{`{"alg":"ES256","value":"AQAB"}`, `{"alg":"RSA1_5","value":"AQAB","iv":"","tag":"AQ"}`, `{"digest":"AQ","value":"AQ","alg":"x"}`, ` {}`, `{"a":"b"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 4096 {
			return
		}
		checkFlat(t, body)
	})
}
