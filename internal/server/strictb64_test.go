package server

import (
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/mgmt"
)

// TestStrictBase64OverHTTPS is SECURITY-NOTES I6 through the real HTTPS API: every base64
// field of a request is read with the one rule (internal/strictb64) — no CR/LF, which
// encoding/base64 skips even in Strict mode, no other alphabet, padding only where the
// format has it — and a certificate import's PEM may not carry a damaged block or text
// after its last block. Each request gets 400 in Key Vault's error shape with a message
// naming the fault, and stores nothing.
func TestStrictBase64OverHTTPS(t *testing.T) {
	do, must := devVaultCalls(t)
	const v = "?api-version=7.6"
	must("POST", "keys/k/create"+v, `{"kty":"EC","crv":"P-256"}`, 200)
	must("POST", "certificates/m/create"+v, `{"policy":{"issuer":{"name":"Unknown"},"x509_props":{"subject":"CN=m"},"key_props":{"kty":"EC","crv":"P-256"}}}`, 202)

	crlf := func(s string) string { return s[:len(s)/2] + "\r\n" + s[len(s)/2:] }
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	digest := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	certPEM, _ := ecPEM(t, elliptic.P256())
	blk, _ := pem.Decode([]byte(certPEM[strings.Index(certPEM, "-----BEGIN CERTIFICATE"):]))
	der := base64.StdEncoding.EncodeToString(blk.Bytes)
	x := base64.RawURLEncoding.EncodeToString(make([]byte, 32))

	for _, tc := range []struct {
		name, method, path, body string
		msg                      string // part of error.message
		gone                     string // a path that must still answer 404 afterwards
	}{
		{"sign/value-crlf", "POST", "keys/k/sign", `{"alg":"ES256","value":` + js(crlf(digest)) + `}`, `base64url field "value" contains a character outside`, ""},
		{"sign/value-padded", "POST", "keys/k/sign", `{"alg":"ES256","value":"` + base64.URLEncoding.EncodeToString(make([]byte, 32)) + `"}`, `"value" is padded`, ""},
		{"verify/digest-padded", "POST", "keys/k/verify", `{"alg":"ES256","digest":"` + base64.URLEncoding.EncodeToString(make([]byte, 32)) + `","value":"` + digest + digest + `"}`, `"digest" is padded`, ""},
		{"sign/value-standard-alphabet", "POST", "keys/k/sign", `{"alg":"ES256","value":"` + strings.Repeat("+/", 21) + `+w"}`, `"value" uses the standard alphabet`, ""},
		{"sign/value-non-canonical", "POST", "keys/k/sign", `{"alg":"ES256","value":"` + digest[:len(digest)-1] + `B"}`, `"value" is not canonical`, ""},
		{"import/jwk-x-crlf", "PUT", "keys/imp", `{"key":{"kty":"EC","crv":"P-256","x":` + js(crlf(x)) + `,"y":"` + x + `"}}`, `member "x"`, "keys/imp"},
		{"secrets/restore-crlf", "POST", "secrets/restore", `{"value":` + js(crlf(strings.Repeat("A", 64))) + `}`, "outside", ""},
		{"merge/x5c-crlf", "POST", "certificates/m/pending/merge", `{"x5c":[` + js(crlf(der)) + `]}`, `"x5c"`, "certificates/m"},
		{"merge/x5c-pem-wrapped", "POST", "certificates/m/pending/merge", `{"x5c":[` + js(der[:64]+"\n"+der[64:]) + `]}`, `"x5c"`, "certificates/m"},
		{"merge/x5c-url-alphabet", "POST", "certificates/m/pending/merge", `{"x5c":["-_8="]}`, "base64url alphabet", "certificates/m"},
		{"import/pem-trailing-garbage", "POST", "certificates/imp/import", `{"value":` + js(certPEM+"garbage after the blocks\n") + `}`, "after the last PEM block", "certificates/imp"},
		{"import/pem-truncated-block", "POST", "certificates/imp/import", `{"value":` + js(certPEM+"-----BEGIN CERTIFICATE-----\nMIIB\n") + `}`, "truncated", "certificates/imp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := do(tc.method, tc.path+v, tc.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if st != 400 || json.Unmarshal(raw, &e) != nil || e.Error.Code != "BadParameter" || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("%s %s = %d %s; want 400 BadParameter saying %q", tc.method, tc.path, st, raw, tc.msg)
			}
			if tc.gone != "" {
				if st, raw := do("GET", tc.gone+v, ""); st != 404 {
					t.Errorf("GET %s after the refusal = %d %.200s; want 404 (nothing stored)", tc.gone, st, raw)
				}
			}
		})
	}
	// The pending certificate is still pending: the refused merges changed nothing.
	var op struct{ Status string }
	if err := json.Unmarshal(must("GET", "certificates/m/pending"+v, "", 200), &op); err != nil || op.Status != "inProgress" {
		t.Errorf("pending operation after refused merges = %q, %v; want inProgress", op.Status, err)
	}
	// The well-formed import still works, so the refusals above were for the garbage.
	must("POST", "certificates/imp/import"+v, `{"value":`+js(certPEM+"\n  \n")+`}`, 200)
}

// TestStrictBase64AttestOverHTTPS: the attestation endpoint (MAA's wire format) reads its
// base64url with the one rule too — padded or not, but never with a line break inside —
// and its runtime keys' members likewise: 400 naming the field, and no token.
func TestStrictBase64AttestOverHTTPS(t *testing.T) {
	ts := startDev(t)
	ts.client = loopbackClient(t, ts.caFile) // provider hosts are <name>.attest.localhost
	tc, tok := newTenant(t, ts, "Contoso")
	var p mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", "/v1/tenants/"+tc.Tenant.ID+"/attestationProviders/teeprov", tok,
		map[string]any{"policy": map[string]any{"types": []string{"sim"}, "measurements": []string{strings.Repeat("0a", 48)}}}, 201, &p)
	url := p.URI + "/attest/sim?api-version=2022-08-01"
	key := devSimKey(t, ts)
	_, rt := teeRuntime(t)
	if st, raw := ts.post(t, url, simBody(t, key, 0x0a, rt, rt)); st != 200 {
		t.Fatalf("well-formed attest = %d %s", st, raw)
	}
	crlf := func(s string) string { return s[:len(s)/2] + "\r\n" + s[len(s)/2:] }
	mutate := func(f func(r *attest.Request)) []byte {
		var r attest.Request
		if err := json.Unmarshal(simBody(t, key, 0x0a, rt, rt), &r); err != nil {
			t.Fatal(err)
		}
		f(&r)
		b, _ := json.Marshal(r)
		return b
	}
	// Runtime data whose key's n has a line break inside, bound into the report as sent.
	var doc map[string][]map[string]any
	if err := json.Unmarshal(rt, &doc); err != nil {
		t.Fatal(err)
	}
	doc["keys"][0]["n"] = crlf(doc["keys"][0]["n"].(string))
	rtCRLF, _ := json.Marshal(doc)

	for _, tc := range []struct {
		name string
		body []byte
		msg  string
	}{
		{"report-crlf", mutate(func(r *attest.Request) { r.Report = crlf(r.Report) }), `"report" contains a character outside`},
		{"report-extra-padding", mutate(func(r *attest.Request) { r.Report += "===" }), `"report"`},
		{"runtime-data-crlf", mutate(func(r *attest.Request) { r.RuntimeData.Data = crlf(r.RuntimeData.Data) }), `"runtimeData.data" contains a character outside`},
		{"runtime-key-n-crlf", simBody(t, key, 0x0a, rtCRLF, rtCRLF), `"n" contains a character outside`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := ts.post(t, url, tc.body)
			var e struct {
				Error struct{ Code, Message string }
			}
			if st != 400 || json.Unmarshal(raw, &e) != nil || e.Error.Code == "" || !strings.Contains(e.Error.Message, tc.msg) {
				t.Fatalf("attest = %d %s; want 400 with an error saying %q", st, raw, tc.msg)
			}
		})
	}
}
