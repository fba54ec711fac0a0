package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
)

var rsa1024 = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
})

func ecJWKMap(t testing.TB, curve elliptic.Curve, kid string) map[string]any {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.PublicKey.Bytes()
	n := (len(b) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384", 66: "P-521"}[n]
	return map[string]any{"kty": "EC", "crv": crv, "kid": kid, "use": "sig",
		"x": b64.EncodeToString(b[1 : 1+n]), "y": b64.EncodeToString(b[1+n:])}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestParseJWKS(t *testing.T) {
	p256 := ecJWKMap(t, elliptic.P256(), "ec256")
	p384 := ecJWKMap(t, elliptic.P384(), "ec384")
	p521 := ecJWKMap(t, elliptic.P521(), "ec521")
	rsaKey := rsaJWK("rsa", &rsaTestKey().PublicKey, "")
	weak := rsaJWK("weak", &rsa1024().PublicKey, "")
	offCurve := with(p256, "y", p256["x"]) // (x, x) is not on P-256 (with overwhelming probability)

	tests := []struct {
		name     string
		key      map[string]any
		wantAlgs []string // nil: the key must be dropped
	}{
		{name: "ok/ec-p256", key: p256, wantAlgs: []string{"ES256"}},
		{name: "ok/ec-p256-alg-es256", key: with(p256, "alg", "ES256"), wantAlgs: []string{"ES256"}},
		{name: "ok/ec-p384", key: p384, wantAlgs: []string{"ES384"}},
		{name: "ok/rsa-2048", key: rsaKey, wantAlgs: []string{"RS256", "PS256"}},
		{name: "ok/rsa-alg-rs256", key: with(rsaKey, "alg", "RS256"), wantAlgs: []string{"RS256"}},
		{name: "ok/rsa-alg-ps256", key: with(rsaKey, "alg", "PS256"), wantAlgs: []string{"PS256"}},
		{name: "ok/no-use", key: with(p256, "use", nil), wantAlgs: []string{"ES256"}},
		{name: "ok/key-ops-verify", key: with(p256, "use", nil, "key_ops", []string{"verify"}), wantAlgs: []string{"ES256"}},
		{name: "ok/x5c-ignored", key: with(rsaKey, "x5c", []string{"MIIB"}), wantAlgs: []string{"RS256", "PS256"}},
		{name: "fail/use-enc", key: with(p256, "use", "enc")},
		{name: "fail/key-ops-encrypt", key: with(p256, "key_ops", []string{"encrypt"})},
		{name: "fail/rsa-1024", key: weak},
		{name: "fail/rsa-exponent-3", key: with(rsaKey, "e", "Aw")},
		{name: "fail/rsa-exponent-1", key: with(rsaKey, "e", "AQ")},
		{name: "fail/rsa-even-modulus", key: with(rsaKey, "n", b64.EncodeToString(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 2047), big.NewInt(2)).Bytes()))},
		{name: "fail/rsa-8192-bits", key: with(rsaKey, "n", b64.EncodeToString(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 8191), big.NewInt(1)).Bytes()))},
		{name: "fail/ec-p521", key: p521},
		{name: "fail/ec-secp256k1", key: with(p256, "crv", "secp256k1")},
		{name: "fail/ec-off-curve", key: offCurve},
		{name: "fail/ec-short-x", key: with(p256, "x", b64.EncodeToString(make([]byte, 31)))},
		{name: "fail/ec-wrong-curve-coords", key: with(p384, "crv", "P-256")},
		{name: "fail/kty-oct", key: map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}},
		{name: "fail/kty-okp", key: map[string]any{"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},
		{name: "fail/kty-missing", key: with(p256, "kty", nil)},
		{name: "fail/kty-rsa-with-ec-params", key: with(p256, "kty", "RSA")},
		{name: "fail/alg-hs256-on-ec", key: with(p256, "alg", "HS256")},
		{name: "fail/alg-none", key: with(p256, "alg", "none")},
		{name: "fail/alg-es384-on-p256", key: with(p256, "alg", "ES384")},
		{name: "fail/alg-es256-on-rsa", key: with(rsaKey, "alg", "ES256")},
		{name: "fail/alg-rs256-on-ec", key: with(p256, "alg", "RS256")},
		{name: "fail/alg-rsa1_5-on-rsa", key: with(rsaKey, "alg", "RSA1_5")},
		{name: "fail/private-d", key: with(p256, "d", "AAAA")},
		{name: "fail/kid-missing", key: with(p256, "kid", nil)},
		{name: "fail/kid-too-long", key: with(p256, "kid", strings.Repeat("k", 300))},
		{name: "fail/kid-number", key: with(p256, "kid", 7)},
		{name: "fail/x-padded", key: with(p256, "x", p256["x"].(string)+"=")},
		// encoding/base64 skips CR/LF even in Strict mode (SECURITY-NOTES I6).
		{name: "fail/x-crlf", key: with(p256, "x", p256["x"].(string)[:10]+"\r\n"+p256["x"].(string)[10:])},
		{name: "fail/n-lf", key: with(rsaKey, "n", rsaKey["n"].(string)[:10]+"\n"+rsaKey["n"].(string)[10:])},
		{name: "fail/case-variant-member", key: with(p256, "kty", nil, "KTY", "EC")},
		{name: "fail/key-over-16KB", key: with(p256, "pad", strings.Repeat("p", 17<<10))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := ParseJWKS(jwksOf(t, tc.key))
			if err != nil {
				t.Fatalf("ParseJWKS = %v; want a set (bad keys are dropped, not fatal)", err)
			}
			kid, _ := tc.key["kid"].(string)
			k, ok := set.Lookup(kid)
			if tc.wantAlgs == nil {
				if ok || set.Len() != 0 {
					t.Errorf("ParseJWKS kept %+v; want it dropped", k)
				}
				return
			}
			if !ok || strings.Join(k.Algs, ",") != strings.Join(tc.wantAlgs, ",") || k.KID != kid {
				t.Errorf("Lookup(%q) = %+v, %v; want algs %v", kid, k, ok, tc.wantAlgs)
			}
		})
	}
}

func TestParseJWKSDocument(t *testing.T) {
	p256 := ecJWKMap(t, elliptic.P256(), "a")
	many := make([]map[string]any, 101)
	for i := range many {
		many[i] = with(p256, "kid", string(rune('a'+i%26))+strings.Repeat("x", i))
	}
	hundred := many[:100]
	tests := []struct {
		name    string
		doc     []byte
		wantLen int
		wantErr bool
	}{
		{name: "ok/empty-keys", doc: []byte(`{"keys":[]}`), wantLen: 0},
		{name: "ok/100-keys", doc: jwksOf(t, hundred...), wantLen: 100},
		{name: "ok/duplicate-kid-dropped", doc: jwksOf(t, p256, ecJWKMap(t, elliptic.P256(), "a"), ecJWKMap(t, elliptic.P256(), "b")), wantLen: 1},
		{name: "ok/duplicate-kid-thrice-dropped", doc: jwksOf(t, p256, p256, p256), wantLen: 0},
		{name: "fail/101-keys", doc: jwksOf(t, many...), wantErr: true},
		{name: "fail/10000-keys", doc: []byte(`{"keys":[` + strings.Repeat(`{},`, 9999) + `{}]}`), wantErr: true},
		{name: "fail/over-256KB", doc: []byte(`{"keys":[],"pad":"` + strings.Repeat("p", 256<<10) + `"}`), wantErr: true},
		{name: "fail/no-keys-member", doc: []byte(`{}`), wantErr: true},
		{name: "fail/keys-null", doc: []byte(`{"keys":null}`), wantErr: true},
		{name: "fail/keys-object", doc: []byte(`{"keys":{}}`), wantErr: true},
		{name: "fail/array", doc: []byte(`[]`), wantErr: true},
		{name: "fail/not-json", doc: []byte(`keys`), wantErr: true},
		{name: "fail/duplicate-keys-member", doc: []byte(`{"keys":[],"keys":[]}`), wantErr: true},
		{name: "fail/duplicate-member-inside-key", doc: []byte(`{"keys":[{"kty":"EC","kty":"RSA"}]}`), wantErr: true},
		{name: "fail/single-jwk-not-set", doc: mustJSON(t, p256), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := ParseJWKS(tc.doc)
			if tc.wantErr {
				if err == nil {
					t.Errorf("ParseJWKS = %d keys, nil; want an error", set.Len())
				}
				return
			}
			if err != nil || set.Len() != tc.wantLen {
				t.Errorf("ParseJWKS = %v, %v; want %d keys", set, err, tc.wantLen)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestROCAFingerprint(t *testing.T) {
	// Sound keys do not have it.
	if rocaFingerprint(rsaTestKey().N) || rocaFingerprint(rsa1024().N) {
		t.Errorf("rocaFingerprint(fresh Go key) = true")
	}
	// A product of powers of 65537 modulo every fingerprint prime has it: 65537^k itself.
	n := new(big.Int).Exp(big.NewInt(65537), big.NewInt(200), nil)
	if !rocaFingerprint(n) {
		t.Errorf("rocaFingerprint(65537^200) = false; want true")
	}
	// The Wycheproof ROCA vector is covered by TestWycheproofJWS.
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksOf(f, ecJWKMap(f, elliptic.P256(), "a"), rsaJWK("r", &rsaTestKey().PublicKey, "RS256")))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}],"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for _, k := range set.keys {
			if len(k.Algs) == 0 || k.KID == "" || k.Public == nil {
				t.Fatalf("ParseJWKS(%q) kept an unusable key %+v", b, k)
			}
			for _, a := range k.Algs {
				if a != "ES256" && a != "ES384" && a != "RS256" && a != "PS256" {
					t.Fatalf("ParseJWKS(%q) allowed alg %q", b, a)
				}
			}
		}
	})
}
