package attest

import (
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"
)

// The real Milan report and VCEK shipped in go-sev-guest's testdata (VCEK valid 2022-09-24 to
// 2029-09-24). Its guest policy allows debugging and its REPORT_DATA is 01 02 03 04 05 0….
var realNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Offsets in the SEV-SNP ATTESTATION_REPORT structure.
const (
	offPolicy      = 0x08
	offMeasurement = 0x90
	offSignature   = 0x2A0
)

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// snpEvidence wraps a raw report and a PEM chain in the sevsnpvm report JSON.
func snpEvidence(t testing.TB, raw, chain []byte, runtime []byte) *Evidence {
	t.Helper()
	rep, err := json.Marshal(SNPReport{SnpReport: b64u.EncodeToString(raw), VcekCertChain: b64u.EncodeToString(chain)})
	if err != nil {
		t.Fatal(err)
	}
	return &Evidence{Report: rep, RuntimeData: runtime}
}

func realReport() []byte { return append([]byte(nil), testdata.AttestationBytes...) }

func TestSEVSNPRealReport(t *testing.T) {
	svc := &Service{SNP: &SNPVerifier{}, Now: func() time.Time { return realNow }}
	chain := append(pemCert(testdata.VcekBytes), trust.AskArkMilanVcekBytes...)
	measurement := hex.EncodeToString(testdata.AttestationBytes[offMeasurement : offMeasurement+48])
	debugOK := &Policy{AllowDebug: true, Measurements: []string{measurement}}

	t.Run("ok/real-report-accepted", func(t *testing.T) {
		c, err := svc.Claims("SevSnpVm", debugOK, snpEvidence(t, realReport(), chain, nil))
		if err != nil {
			t.Fatalf("Claims = %v", err)
		}
		if c[ClaimType] != TypeSEVSNP || c[ClaimSNPMeasurement] != measurement || c[ClaimSNPDebuggable] != true || c[ClaimCompliance] != ComplianceSEVSNP {
			t.Errorf("claims = %v", c)
		}
		if _, ok := c[ClaimRuntime]; ok {
			t.Errorf("claims without runtime data carry %s", ClaimRuntime)
		}
	})
	t.Run("ok/vcek-alone-as-der", func(t *testing.T) {
		if _, err := svc.Claims(TypeSEVSNP, debugOK, snpEvidence(t, realReport(), testdata.VcekBytes, nil)); err != nil {
			t.Fatalf("Claims = %v", err)
		}
	})

	altered := realReport()
	altered[offMeasurement] ^= 1
	badSig := realReport()
	badSig[offSignature+5] ^= 0x80
	undebug := realReport()
	undebug[offPolicy+2] &^= 0x08 // clear DEBUG (bit 19)
	fake, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", realNow.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pol      *Policy
		ev       *Evidence
		now      time.Time
		code     string
		contains string
	}{
		{"fail/altered-measurement", &Policy{AllowDebug: true}, snpEvidence(t, altered, chain, nil), realNow, CodeInvalidEvidence, "did not verify"},
		{"fail/broken-signature", &Policy{AllowDebug: true}, snpEvidence(t, badSig, chain, nil), realNow, CodeInvalidEvidence, "did not verify"},
		{"fail/debug-bit-cleared-breaks-signature", &Policy{AllowDebug: true}, snpEvidence(t, undebug, chain, nil), realNow, CodeInvalidEvidence, "did not verify"},
		{"fail/debug-policy", &Policy{}, snpEvidence(t, realReport(), chain, nil), realNow, CodePolicy, "debugging"},
		{"fail/wrong-report-data-binding", debugOK, snpEvidence(t, realReport(), chain, runtimeJSON(t)), realNow, CodeRuntimeData, "REPORT_DATA"},
		{"fail/measurement-not-accepted", &Policy{AllowDebug: true, Measurements: []string{hex.EncodeToString(make([]byte, 48))}}, snpEvidence(t, realReport(), chain, nil), realNow, CodePolicy, "launch measurement"},
		{"fail/tcb-below-minimum", &Policy{AllowDebug: true, MinimumTCB: &TCB{Microcode: 255}}, snpEvidence(t, realReport(), chain, nil), realNow, CodePolicy, "minimumTcb"},
		{"fail/vcek-expired", debugOK, snpEvidence(t, realReport(), chain, nil), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), CodeInvalidEvidence, "did not verify"},
		{"fail/vcek-of-another-chain", debugOK, snpEvidence(t, realReport(), pemCert(fake.Vcek.Raw), nil), realNow, CodeInvalidEvidence, "did not verify"},
		{"fail/truncated-report", debugOK, snpEvidence(t, realReport()[:1000], chain, nil), realNow, CodeInvalidEvidence, "1184 bytes"},
		{"fail/oversized-report", debugOK, snpEvidence(t, append(realReport(), 0), chain, nil), realNow, CodeInvalidEvidence, "larger than"},
		{"fail/no-certificate", debugOK, snpEvidence(t, realReport(), []byte("not pem"), nil), realNow, CodeInvalidEvidence, "no PEM certificate"},
		{"fail/garbage-certificate", debugOK, snpEvidence(t, realReport(), []byte{0x30, 1, 2}, nil), realNow, CodeInvalidEvidence, "did not verify"},
		{"fail/report-not-json", debugOK, &Evidence{Report: []byte("\x00\x01")}, realNow, CodeInvalidEvidence, "sevsnpvm report"},
		{"fail/report-unknown-member", debugOK, &Evidence{Report: []byte(`{"SnpReport":"","VcekCertChain":"","x":1}`)}, realNow, CodeInvalidEvidence, "unknown member"},
		{"fail/sim-type-disabled", debugOK, snpEvidence(t, realReport(), chain, nil), realNow, CodeTypeDisabled, "sim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{SNP: &SNPVerifier{}, Now: func() time.Time { return tc.now }}
			typ := TypeSEVSNP
			if tc.code == CodeTypeDisabled {
				typ = TypeSim
			}
			_, err := s.Claims(typ, tc.pol, tc.ev)
			wantCode(t, err, tc.code, tc.contains)
		})
	}
}

// fakeReport returns a version 2 report with measurement, REPORT_DATA and guest policy pol,
// signed by the VCEK of signer.
func fakeReport(t *testing.T, signer *sevtest.AmdSigner, measurement byte, reportData [64]byte, pol abi.SnpPolicy) []byte {
	t.Helper()
	raw := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: reportData[:]})
	r := raw[:abi.ReportSize]
	copy(r[offPolicy:offPolicy+8], le64(abi.SnpPolicyToBytes(pol)))
	for i := 0; i < 48; i++ {
		r[offMeasurement+i] = measurement
	}
	R, S, err := signer.Sign(abi.SignedComponent(r))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(R, S, r); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), r...)
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// TestSEVSNPRuntimeBinding drives the REPORT_DATA binding end to end with reports signed by
// a test-only AMD chain (go-sev-guest's testing package): real hardware reports cannot bind
// a key made in a test.
func TestSEVSNPRuntimeBinding(t *testing.T) {
	fake, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", realNow.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	root := trust.AMDRootCertsProduct("Milan")
	root.ProductCerts = &trust.ProductCerts{Ark: fake.Ark, Ask: fake.Ask}
	svc := &Service{SNP: &SNPVerifier{Roots: map[string][]*trust.AMDRootCerts{"Milan": {root}}}, Now: func() time.Time { return realNow }}
	rt := runtimeJSON(t)
	chain := pemCert(fake.Vcek.Raw)
	prod := abi.SnpPolicy{SMT: true}

	c, err := svc.Claims(TypeSEVSNP, &Policy{}, snpEvidence(t, fakeReport(t, fake, 0xAB, ReportData(rt), prod), chain, rt))
	if err != nil {
		t.Fatalf("Claims(bound runtime data) = %v", err)
	}
	keys := c[ClaimRuntime].(map[string]any)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kid"] != "tee-key" || c[ClaimSNPDebuggable] != false {
		t.Errorf("claims = %v", c)
	}

	other := runtimeJSON(t)
	_, err = svc.Claims(TypeSEVSNP, &Policy{}, snpEvidence(t, fakeReport(t, fake, 0xAB, ReportData(rt), prod), chain, other))
	wantCode(t, err, CodeRuntimeData, "REPORT_DATA")

	_, err = svc.Claims(TypeSEVSNP, &Policy{}, snpEvidence(t, fakeReport(t, fake, 0xAB, ReportData(rt), abi.SnpPolicy{SMT: true, Debug: true}), chain, rt))
	wantCode(t, err, CodePolicy, "debugging")

	// The production verifier pins AMD's roots: the same evidence is a forgery there.
	prodSvc := &Service{SNP: &SNPVerifier{}, Now: svc.Now}
	_, err = prodSvc.Claims(TypeSEVSNP, &Policy{}, snpEvidence(t, fakeReport(t, fake, 0xAB, ReportData(rt), prod), chain, rt))
	wantCode(t, err, CodeInvalidEvidence, "did not verify")
}
