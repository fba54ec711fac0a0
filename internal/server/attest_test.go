package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/mgmt"
	sevtestdata "github.com/google/go-sev-guest/verify/testdata"
)

// devSimKey reads the TEE simulator key dev mode made.
func devSimKey(t *testing.T, ts *testServer) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, DevSimKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

// teeRuntime makes a TEE runtime key pair and its runtime data.
func teeRuntime(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := base64.RawURLEncoding
	rt, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "tee", "key_ops": []string{"encrypt"},
		"n": e.EncodeToString(k.N.Bytes()), "e": e.EncodeToString(big.NewInt(int64(k.E)).Bytes())}}})
	return k, rt
}

// simBody is an attest request body with sim evidence for measurement byte m.
func simBody(t *testing.T, key *ecdsa.PrivateKey, m byte, rt []byte, bindTo []byte) []byte {
	t.Helper()
	var meas [attest.MeasurementLen]byte
	for i := range meas {
		meas[i] = m
	}
	rep, err := attest.SimReport(key, meas, attest.ReportData(bindTo), false)
	if err != nil {
		t.Fatal(err)
	}
	e := base64.RawURLEncoding
	b, _ := json.Marshal(attest.Request{Report: e.EncodeToString(rep), RuntimeData: &attest.RuntimeData{Data: e.EncodeToString(rt), DataType: "JSON"}})
	return b
}

func (ts *testServer) post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := ts.client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (ts *testServer) get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := ts.client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, raw)
	}
	return raw
}

func TestAttestationService(t *testing.T) {
	ts := startDev(t)
	ts.client = loopbackClient(t, ts.caFile) // provider hosts are <name>.attest.localhost
	tc, tok := newTenant(t, ts, "Contoso")
	_, tokB := newTenant(t, ts, "Fabrikam")
	good := strings.Repeat("0a", 48)
	base := "/v1/tenants/" + tc.Tenant.ID + "/attestationProviders/"

	// Management: create, validate, isolate.
	var p mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", base+"teeprov", tok, map[string]any{"policy": map[string]any{"types": []string{"sim"}, "measurements": []string{good}}}, 201, &p)
	if p.URI != ts.attestURL("teeprov") || !strings.HasPrefix(p.URI, "https://teeprov.attest.localhost:") {
		t.Fatalf("provider = %+v", p)
	}
	ts.mjson(t, "PUT", base+"teeprov", tok, map[string]any{"policy": map[string]any{"types": []string{"sim"}, "measurements": []string{good}}}, 200, nil)
	if st, raw := ts.mcall(t, "PUT", base+"badprov", tok, map[string]any{"policy": map[string]any{"measurements": []string{"00"}}}); st != 400 || !strings.Contains(string(raw), "96 hex digits") {
		t.Errorf("PUT with a bad policy = %d %s; want 400", st, raw)
	}
	if st, _ := ts.mcall(t, "GET", base+"teeprov", tokB, nil); st != 404 && st != 403 {
		t.Errorf("other tenant's GET = %d; want 403/404", st)
	}
	if st, _ := ts.mcall(t, "PUT", base+"teeprov", "", nil); st != 401 {
		t.Errorf("unauthenticated PUT = %d; want 401", st)
	}

	// Attest with sim evidence, then verify the token with the published keys only.
	key := devSimKey(t, ts)
	_, rt := teeRuntime(t)
	url := p.URI + "/attest/sim?api-version=2022-08-01"
	st, raw := ts.post(t, url, simBody(t, key, 0x0a, rt, rt))
	if st != 200 {
		t.Fatalf("POST /attest/sim = %d %s", st, raw)
	}
	var resp attest.Response
	if err := json.Unmarshal(raw, &resp); err != nil || resp.Token == "" {
		t.Fatalf("response %s: %v", raw, err)
	}
	var disc attest.OpenIDConfiguration
	if err := json.Unmarshal(ts.get(t, p.URI+"/.well-known/openid-configuration"), &disc); err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != p.URI || disc.JWKSURI != p.URI+"/certs" {
		t.Errorf("discovery = %+v", disc)
	}
	jwks, err := token.ParseJWKS(ts.get(t, disc.JWKSURI))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyClaims(resp.Token, jwks)
	if err != nil {
		t.Fatalf("VerifyClaims = %v", err)
	}
	keys := claims["x-ms-runtime"].(map[string]any)["keys"].([]any)
	if claims["iss"] != p.URI || claims["x-ms-attestation-type"] != "sim" || claims["x-ms-sim-launchmeasurement"] != good ||
		claims["x-ms-sevsnpvm-launchmeasurement"] != nil || len(keys) != 1 || claims["exp"] == nil || claims["jti"] == "" {
		t.Errorf("claims = %v", claims)
	}

	// Bad input: 4xx in Key Vault's error shape, never 5xx, each audited.
	_, other := teeRuntime(t)
	for _, tc := range []struct {
		name, url string
		body      []byte
		status    int
		code      string
	}{
		{"tampered-measurement", url, simBody(t, key, 0x0b, rt, rt), 400, "AttestationPolicyNotSatisfied"},
		{"other-runtime-key", url, simBody(t, key, 0x0a, other, rt), 400, "InvalidRuntimeData"},
		{"unregistered-simulator", url, simBody(t, mustP256(t), 0x0a, rt, rt), 400, "InvalidEvidence"},
		{"sevsnpvm-not-in-policy", p.URI + "/attest/SevSnpVm", simBody(t, key, 0x0a, rt, rt), 400, "AttestationTypeDisabled"},
		{"unknown-type", p.URI + "/attest/sgx", simBody(t, key, 0x0a, rt, rt), 400, "UnknownAttestationType"},
		{"tdx", p.URI + "/attest/TdxVm", simBody(t, key, 0x0a, rt, rt), 400, "AttestationTypeDisabled"},
		{"malformed-json", url, []byte(`{"report":`), 400, "InvalidParameter"},
		{"report-garbage", url, []byte(`{"report":"AAAA"}`), 400, "InvalidEvidence"},
		{"oversized", url, []byte(`{"report":"` + strings.Repeat("A", attest.MaxBody) + `"}`), 400, "InvalidParameter"},
		{"unknown-provider", strings.Replace(url, "teeprov", "nobody", 1), simBody(t, key, 0x0a, rt, rt), 404, "AttestationProviderNotFound"},
		{"unknown-path", p.URI + "/attest", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := ts.post(t, tc.url, tc.body)
			if st != tc.status {
				t.Fatalf("POST = %d %s; want %d", st, raw, tc.status)
			}
			if code, _ := kvError(t, raw); tc.code != "" && code != tc.code {
				t.Errorf("code = %q (%s); want %q", code, raw, tc.code)
			}
		})
	}
	log := readAudit(t, ts)
	if !strings.Contains(log, `"op":"Attest"`) || !strings.Contains(log, "AttestationPolicyNotSatisfied") || !strings.Contains(log, `"op":"AttestationProviderPut"`) {
		t.Errorf("audit log lacks the attestation records")
	}
}

func mustP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAttestationSEVSNPOverHTTP sends go-sev-guest's real Milan report and VCEK (valid until
// 2029) through the API.
func TestAttestationSEVSNPOverHTTP(t *testing.T) {
	ts := startDev(t)
	ts.client = loopbackClient(t, ts.caFile)
	tc, tok := newTenant(t, ts, "Contoso")
	base := "/v1/tenants/" + tc.Tenant.ID + "/attestationProviders/"
	var dbg, strict mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", base+"snpdebug", tok, map[string]any{"policy": map[string]any{"allowDebug": true}}, 201, &dbg)
	ts.mjson(t, "PUT", base+"snpstrict", tok, nil, 201, &strict)

	e := base64.RawURLEncoding
	rep, _ := json.Marshal(attest.SNPReport{SnpReport: e.EncodeToString(sevtestdata.AttestationBytes),
		VcekCertChain: e.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sevtestdata.VcekBytes}))})
	body, _ := json.Marshal(attest.Request{Report: e.EncodeToString(rep)})

	st, raw := ts.post(t, dbg.URI+"/attest/SevSnpVm", body)
	if st != 200 {
		t.Fatalf("POST /attest/SevSnpVm = %d %s", st, raw)
	}
	var resp attest.Response
	_ = json.Unmarshal(raw, &resp)
	jwks, err := token.ParseJWKS(ts.get(t, dbg.URI+"/certs"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyClaims(resp.Token, jwks)
	if err != nil {
		t.Fatal(err)
	}
	if claims["x-ms-attestation-type"] != "sevsnpvm" || claims["x-ms-sevsnpvm-is-debuggable"] != true ||
		claims["x-ms-sevsnpvm-launchmeasurement"] != hexOf(sevtestdata.AttestationBytes[0x90:0xC0]) || claims["x-ms-compliance-status"] != "coffer-compliant-cvm" {
		t.Errorf("claims = %v", claims)
	}

	st, raw = ts.post(t, strict.URI+"/attest/SevSnpVm", body)
	if code, msg := kvError(t, raw); st != 400 || code != "AttestationPolicyNotSatisfied" || !strings.Contains(msg, "debugging") {
		t.Errorf("strict provider = %d %s; want 400 AttestationPolicyNotSatisfied (debug)", st, raw)
	}
	truncated, _ := json.Marshal(attest.SNPReport{SnpReport: e.EncodeToString(sevtestdata.AttestationBytes[:600]), VcekCertChain: "AA"})
	body, _ = json.Marshal(attest.Request{Report: e.EncodeToString(truncated)})
	if st, raw = ts.post(t, dbg.URI+"/attest/SevSnpVm", body); st != 400 {
		t.Errorf("truncated report = %d %s; want 400", st, raw)
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
