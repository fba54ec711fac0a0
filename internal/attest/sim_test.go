package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func simKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func simEvidence(t testing.TB, key *ecdsa.PrivateKey, m byte, rt []byte, debug bool) *Evidence {
	t.Helper()
	var meas [MeasurementLen]byte
	for i := range meas {
		meas[i] = m
	}
	rep, err := SimReport(key, meas, ReportData(rt), debug)
	if err != nil {
		t.Fatal(err)
	}
	return &Evidence{Report: rep, RuntimeData: rt}
}

func TestSim(t *testing.T) {
	key := simKey(t)
	svc := &Service{Sim: &SimVerifier{Keys: []*ecdsa.PublicKey{&key.PublicKey}}, Now: time.Now}
	good := strings.Repeat("0a", 48)
	pol := &Policy{Types: []string{TypeSim}, Measurements: []string{good}}
	rt := runtimeJSON(t)

	c, err := svc.Claims("sim", pol, simEvidence(t, key, 0x0a, rt, false))
	if err != nil {
		t.Fatalf("Claims = %v", err)
	}
	if c[ClaimType] != TypeSim || c[ClaimSimMeasurement] != good || c[ClaimCompliance] != ComplianceSim {
		t.Errorf("claims = %v", c)
	}
	if _, ok := c[ClaimSNPMeasurement]; ok {
		t.Errorf("sim claims carry %s", ClaimSNPMeasurement)
	}

	tampered := simEvidence(t, key, 0x0a, rt, false)
	var r simReport
	if err := json.Unmarshal(tampered.Report, &r); err != nil {
		t.Fatal(err)
	}
	body, _ := b64u.DecodeString(r.Body)
	body[10] ^= 1
	r.Body = b64u.EncodeToString(body)
	tampered.Report, _ = json.Marshal(r)

	// A runtime key whose x has a line break inside: encoding/base64 skips it even in
	// Strict mode, so before the one rule (strictb64) the key was taken.
	pt, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	crlfX := b64u.EncodeToString(pt[1:33])
	crlfX = crlfX[:8] + "\r\n" + crlfX[8:]

	tests := []struct {
		name     string
		svc      *Service
		pol      *Policy
		ev       *Evidence
		code, in string
	}{
		{"fail/tampered-measurement", svc, pol, tampered, CodeInvalidEvidence, "not signed by a registered"},
		{"fail/unregistered-key", svc, pol, simEvidence(t, simKey(t), 0x0a, rt, false), CodeInvalidEvidence, "not signed by a registered"},
		{"fail/other-measurement", svc, pol, simEvidence(t, key, 0x0b, rt, false), CodePolicy, "launch measurement"},
		{"fail/debuggable", svc, pol, simEvidence(t, key, 0x0a, rt, true), CodePolicy, "debugging"},
		{"fail/other-runtime-key", svc, pol, &Evidence{Report: simEvidence(t, key, 0x0a, rt, false).Report, RuntimeData: runtimeJSON(t)}, CodeRuntimeData, "REPORT_DATA"},
		{"fail/sim-not-configured", &Service{Now: time.Now}, pol, simEvidence(t, key, 0x0a, rt, false), CodeTypeDisabled, "disabled on this server"},
		{"fail/policy-without-sim", svc, &Policy{}, simEvidence(t, key, 0x0a, rt, false), CodeTypeDisabled, "does not accept sim"},
		{"fail/private-runtime-key", svc, pol, simEvidence(t, key, 0x0a, runtimeFor(t, map[string]any{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}), false), CodeRuntimeData, `"d" is not allowed`},
		{"fail/off-curve-runtime-key", svc, pol, simEvidence(t, key, 0x0a, runtimeFor(t, map[string]any{"kty": "EC", "crv": "P-256", "x": b64u.EncodeToString(make([]byte, 32)), "y": b64u.EncodeToString(make([]byte, 32))}), false), CodeRuntimeData, "not a point"},
		{"fail/small-rsa-runtime-key", svc, pol, simEvidence(t, key, 0x0a, runtimeFor(t, map[string]any{"kty": "RSA", "n": b64u.EncodeToString(append([]byte{0xc1}, make([]byte, 127)...)), "e": "AQAB"}), false), CodeRuntimeData, "2048"},
		{"fail/runtime-key-crlf", svc, pol, simEvidence(t, key, 0x0a, runtimeFor(t, map[string]any{"kty": "EC", "crv": "P-256", "x": crlfX, "y": b64u.EncodeToString(pt[33:])}), false), CodeRuntimeData, `"x" contains a character outside`},
		{"fail/runtime-key-padded", svc, pol, simEvidence(t, key, 0x0a, runtimeFor(t, map[string]any{"kty": "RSA", "n": base64.URLEncoding.EncodeToString(append([]byte{0xc1}, make([]byte, 255)...)), "e": "AQAB"}), false), CodeRuntimeData, `"n" is padded`},
		{"fail/runtime-without-keys", svc, pol, simEvidence(t, key, 0x0a, []byte(`{"x":1}`), false), CodeRuntimeData, `"keys"`},
		{"fail/runtime-not-json", svc, pol, simEvidence(t, key, 0x0a, []byte(`keys`), false), CodeRuntimeData, "not a JSON object"},
		{"fail/unknown-type", svc, pol, simEvidence(t, key, 0x0a, rt, false), CodeUnknownType, "unknown attestation type"},
		{"fail/tdx-disabled", svc, pol, simEvidence(t, key, 0x0a, rt, false), CodeTypeDisabled, "tdxvm is disabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := TypeSim
			switch tc.name {
			case "fail/unknown-type":
				typ = "sgx"
			case "fail/tdx-disabled":
				typ = "TdxVm"
			}
			_, err := tc.svc.Claims(typ, tc.pol, tc.ev)
			wantCode(t, err, tc.code, tc.in)
		})
	}
}
