package server

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/mgmt"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tdxdata "github.com/google/go-tdx-guest/testing/testdata"
)

// TestAttestationTDXOverHTTP sends go-tdx-guest's real TDX quote and its Intel collateral
// through POST /attest/TdxVm. The collateral expired in July 2023, so the server's attestation
// clock is set inside its validity (2023-07-01); everything else runs on the real clock.
func TestAttestationTDXOverHTTP(t *testing.T) {
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	ts := startWithClock(t, cfg, "", nil, func(s *Server) {
		s.attestH.now = func() time.Time { return time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC) }
	})
	ts.client = loopbackClient(t, ts.caFile)
	tc, tok := newTenant(t, ts, "Contoso")
	base := "/v1/tenants/" + tc.Tenant.ID + "/attestationProviders/"
	var lax, strict mgmt.AttestationProviderDTO
	ts.mjson(t, "PUT", base+"tdxlax", tok, map[string]any{"policy": map[string]any{"types": []string{"tdxvm"}, "tdx": map[string]any{"allowTcbNotUpToDate": true}}}, 201, &lax)
	ts.mjson(t, "PUT", base+"tdxstrict", tok, map[string]any{"policy": map[string]any{"types": []string{"tdxvm"}}}, 201, &strict)

	unesc := func(h map[string][]string, name string) string {
		s, err := url.QueryUnescape(h[name][0])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	coll := &attest.TDXCollateral{
		TcbInfo: string(tdxdata.TcbInfoBody), TcbInfoIssuerChain: unesc(tdxtest.TcbInfoHeader, "Tcb-Info-Issuer-Chain"),
		QeIdentity: string(tdxdata.QeIdentityBody), QeIdentityIssuerChain: unesc(tdxtest.QeIdentityHeader, "Sgx-Enclave-Identity-Issuer-Chain"),
	}
	e := base64.RawURLEncoding
	body := func(quote []byte, c *attest.TDXCollateral, runtime []byte) []byte {
		req := attest.Request{Quote: e.EncodeToString(quote), Collateral: c}
		if runtime != nil {
			req.RuntimeData = &attest.RuntimeData{Data: e.EncodeToString(runtime), DataType: "JSON"}
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	quote := func(mut func([]byte)) []byte {
		q := append([]byte(nil), tdxdata.RawQuote...)
		if mut != nil {
			mut(q)
		}
		return q
	}

	st, raw := ts.post(t, lax.URI+"/attest/TdxVm?api-version=2025-06-01", body(quote(nil), coll, nil))
	if st != 200 {
		t.Fatalf("POST /attest/TdxVm = %d %s", st, raw)
	}
	var resp attest.Response
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	jwks, err := token.ParseJWKS(ts.get(t, lax.URI+"/certs"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := token.VerifyClaims(resp.Token, jwks)
	if err != nil {
		t.Fatalf("VerifyClaims = %v", err)
	}
	if claims["iss"] != lax.URI || claims["x-ms-attestation-type"] != "tdxvm" || claims["tdx_mrtd"] != hexOf(tdxdata.RawQuote[0xB8:0xE8]) ||
		claims["tdx_td_attributes_debug"] != false || claims["attester_tcb_status"] != "NotUpToDate" || claims["x-ms-sevsnpvm-launchmeasurement"] != nil {
		t.Errorf("claims = %v", claims)
	}

	_, rt := teeRuntime(t)
	badColl := map[string]any{"quote": e.EncodeToString(tdxdata.RawQuote), "collateral": map[string]any{"tcbInfo": "{}", "bogus": 1}}
	badCollBody, _ := json.Marshal(badColl)
	for _, tc := range []struct {
		name, url string
		body      []byte
		code      string
	}{
		{"tcb-not-up-to-date", strict.URI + "/attest/TdxVm", body(quote(nil), coll, nil), "AttestationPolicyNotSatisfied"},
		{"altered-measurement", lax.URI + "/attest/TdxVm", body(quote(func(q []byte) { q[0xB8] ^= 1 }), coll, nil), "InvalidEvidence"},
		{"broken-signature", lax.URI + "/attest/TdxVm", body(quote(func(q []byte) { q[0x27C+3] ^= 1 }), coll, nil), "InvalidEvidence"},
		{"debug-td", lax.URI + "/attest/TdxVm", body(quote(func(q []byte) { q[0xA8] |= 1 }), coll, nil), "InvalidEvidence"},
		{"wrong-report-data-binding", lax.URI + "/attest/TdxVm", body(quote(nil), coll, rt), "InvalidRuntimeData"},
		{"truncated-quote", lax.URI + "/attest/TdxVm", body(tdxdata.RawQuote[:900], coll, nil), "InvalidEvidence"},
		{"no-collateral", lax.URI + "/attest/TdxVm", body(quote(nil), nil, nil), "InvalidEvidence"},
		{"collateral-unknown-member", lax.URI + "/attest/TdxVm", badCollBody, "InvalidParameter"},
		{"sevsnpvm-not-in-policy", lax.URI + "/attest/SevSnpVm", body(quote(nil), coll, nil), "AttestationTypeDisabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, raw := ts.post(t, tc.url, tc.body)
			if code, _ := kvError(t, raw); st != 400 || code != tc.code {
				t.Errorf("POST = %d %s; want 400 %s", st, raw, tc.code)
			}
		})
	}
	if log := readAudit(t, ts); !strings.Contains(log, "attestationProviders/tdxlax/TdxVm") {
		t.Errorf("audit log lacks the tdxvm attest records")
	}
}
