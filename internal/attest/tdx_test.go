package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	tdxdata "github.com/google/go-tdx-guest/testing/testdata"
)

// go-tdx-guest's test data: a real TDX quote (Sapphire Rapids, quote v4) and the Intel PCS
// collateral of its platform (TCB info and QE identity issued 2023-06, next update
// 2023-07-08/18; PCK CRL and root CA CRL). The collateral is expired today, so these tests
// verify at a fixed time inside its validity. The quote's TEE TCB SVN (03 00 04 …) is below
// every TCB level of that TCB info (03 00 05 …): the library's own test expects "no matching
// TCB level" for it, so Coffer reports attester_tcb_status NotUpToDate for this quote.
var tdxNow = time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC)

// Offsets in a TDX quote v4: the 48-byte header, then the TD quote body.
const (
	tdxOffAttributes = 0x30 + 0x78
	tdxOffMRTD       = 0x30 + 0x88
	tdxOffSignature  = 0x27C
)

func tdxQuote() []byte { return append([]byte(nil), tdxdata.RawQuote...) }

func unescapeChain(t testing.TB, h map[string][]string, name string) string {
	t.Helper()
	s, err := url.QueryUnescape(h[name][0])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tdxCollateral is the library's test collateral in Coffer's collateral shape.
func tdxCollateral(t testing.TB, crls bool) *TDXCollateral {
	t.Helper()
	c := &TDXCollateral{
		TcbInfo:               string(tdxdata.TcbInfoBody),
		TcbInfoIssuerChain:    unescapeChain(t, tdxtest.TcbInfoHeader, "Tcb-Info-Issuer-Chain"),
		QeIdentity:            string(tdxdata.QeIdentityBody),
		QeIdentityIssuerChain: unescapeChain(t, tdxtest.QeIdentityHeader, "Sgx-Enclave-Identity-Issuer-Chain"),
	}
	if crls {
		c.PckCrl = b64u.EncodeToString(tdxdata.PckCrlBody)
		c.PckCrlIssuerChain = unescapeChain(t, tdxtest.PckCrlHeader, "Sgx-Pck-Crl-Issuer-Chain")
		c.RootCaCrl = b64u.EncodeToString(tdxdata.RootCrlBody)
	}
	return c
}

func tdxBody(t testing.TB) *pb.TDQuoteBody {
	t.Helper()
	q, err := abi.QuoteToProto(tdxdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	return q.(*pb.QuoteV4).GetTdQuoteBody()
}

func TestTDXRealQuote(t *testing.T) {
	body := tdxBody(t)
	mrtd := hex.EncodeToString(body.GetMrTd())
	rtmr0 := hex.EncodeToString(body.GetRtmrs()[0])
	// The policy a relying party would write for this TD, accepting its outdated platform TCB.
	pol := &Policy{Types: []string{TypeTDX}, Measurements: []string{mrtd}, TDX: &TDXPolicy{RTMR0: []string{rtmr0}, AllowTCBNotUpToDate: true}}
	svc := &Service{TDX: &TDXVerifier{}, Now: func() time.Time { return tdxNow }}

	for _, crls := range []bool{false, true} {
		c, err := svc.Claims("TdxVm", pol, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, crls)})
		if err != nil {
			t.Fatalf("Claims(real quote, crls=%v) = %v", crls, err)
		}
		if c[ClaimType] != TypeTDX || c[ClaimTDXMRTD] != mrtd || c["tdx_rtmr0"] != rtmr0 || c[ClaimTDXDebug] != false ||
			c[ClaimTDXTCBStatus] != TCBNotUpToDate || c[ClaimCompliance] != ComplianceSEVSNP || c["dbgstat"] != "disabled" ||
			c["tdx_td_attributes_protection_keys"] != true || c[ClaimTDXReport] != hex.EncodeToString(body.GetReportData()) {
			t.Errorf("claims = %v", c)
		}
		for k := range c {
			if strings.HasPrefix(k, "x-ms-sevsnpvm") || strings.HasPrefix(k, "x-ms-sim") {
				t.Errorf("tdxvm token carries %s", k)
			}
		}
	}
	t.Run("ok/collateral-from-configuration", func(t *testing.T) {
		s := &Service{TDX: &TDXVerifier{Collateral: tdxCollateral(t, true)}, Now: svc.Now}
		if _, err := s.Claims(TypeTDX, pol, &Evidence{Report: tdxQuote()}); err != nil {
			t.Fatalf("Claims = %v", err)
		}
	})

	altered := tdxQuote()
	altered[tdxOffMRTD] ^= 1
	badSig := tdxQuote()
	badSig[tdxOffSignature+7] ^= 0x80
	debugOn := tdxQuote()
	debugOn[tdxOffAttributes] |= 1
	tamperedTCB := tdxCollateral(t, false)
	tamperedTCB.TcbInfo = strings.Replace(tamperedTCB.TcbInfo, `"tcbEvaluationDataNumber":15`, `"tcbEvaluationDataNumber":16`, 1)
	tamperedQE := tdxCollateral(t, false)
	tamperedQE.QeIdentity = strings.Replace(tamperedQE.QeIdentity, `"isvprodid":2`, `"isvprodid":3`, 1)
	swapped := tdxCollateral(t, false)
	swapped.TcbInfo, swapped.QeIdentity = swapped.QeIdentity, swapped.TcbInfo
	partialCRL := tdxCollateral(t, true)
	partialCRL.RootCaCrl = ""
	anyTCB := &Policy{Types: []string{TypeTDX}, TDX: &TDXPolicy{AllowTCBNotUpToDate: true}}
	zero48 := hex.EncodeToString(make([]byte, 48))
	tests := []struct {
		name     string
		pol      *Policy
		ev       *Evidence
		now      time.Time
		roots    *x509.CertPool
		code     string
		contains string
	}{
		{"fail/tcb-not-up-to-date-by-default", &Policy{Types: []string{TypeTDX}}, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, true)}, tdxNow, nil, CodePolicy, "allowTcbNotUpToDate"},
		{"fail/altered-mrtd", anyTCB, &Evidence{Report: altered, Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, "did not verify against the pinned Intel root"},
		{"fail/broken-signature", anyTCB, &Evidence{Report: badSig, Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, "did not verify against the pinned Intel root"},
		{"fail/debug-bit-set-breaks-signature", &Policy{Types: []string{TypeTDX}, AllowDebug: true, TDX: &TDXPolicy{AllowTCBNotUpToDate: true}}, &Evidence{Report: debugOn, Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, "did not verify"},
		{"fail/wrong-report-data-binding", anyTCB, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false), RuntimeData: runtimeJSON(t)}, tdxNow, nil, CodeRuntimeData, "REPORT_DATA"},
		{"fail/mrtd-not-accepted", &Policy{Types: []string{TypeTDX}, Measurements: []string{zero48}, TDX: &TDXPolicy{AllowTCBNotUpToDate: true}}, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodePolicy, "launch measurement"},
		{"fail/rtmr-not-accepted", &Policy{Types: []string{TypeTDX}, TDX: &TDXPolicy{RTMR2: []string{zero48}, AllowTCBNotUpToDate: true}}, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodePolicy, "RTMR2"},
		{"fail/truncated-quote", anyTCB, &Evidence{Report: tdxQuote()[:600], Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, "at least"},
		{"fail/truncated-signed-data", anyTCB, &Evidence{Report: tdxQuote()[:2000], Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, "malformed"},
		{"fail/collateral-expired", anyTCB, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)}, time.Date(2023, 8, 1, 0, 0, 0, 0, time.UTC), nil, CodeInvalidEvidence, "expired"},
		{"fail/tcb-info-tampered", anyTCB, &Evidence{Report: tdxQuote(), Collateral: tamperedTCB}, tdxNow, nil, CodeInvalidEvidence, "tcbInfo response verification failed"},
		{"fail/qe-identity-tampered", anyTCB, &Evidence{Report: tdxQuote(), Collateral: tamperedQE}, tdxNow, nil, CodeInvalidEvidence, "QeIdentity response verification failed"},
		{"fail/collateral-swapped", anyTCB, &Evidence{Report: tdxQuote(), Collateral: swapped}, tdxNow, nil, CodeInvalidEvidence, "collateral"},
		{"fail/crls-incomplete", anyTCB, &Evidence{Report: tdxQuote(), Collateral: partialCRL}, tdxNow, nil, CodeInvalidEvidence, "come together"},
		{"fail/no-collateral", anyTCB, &Evidence{Report: tdxQuote()}, tdxNow, nil, CodeInvalidEvidence, "needs Intel's collateral"},
		{"fail/other-root-pinned", anyTCB, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)}, tdxNow, otherRoot(t), CodeInvalidEvidence, "pinned Intel root"},
		{"fail/tdx-not-in-policy", &Policy{}, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeTypeDisabled, "tdxvm"},
		{"fail/sevsnp-report-as-quote", anyTCB, &Evidence{Report: realReport(), Collateral: tdxCollateral(t, false)}, tdxNow, nil, CodeInvalidEvidence, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{TDX: &TDXVerifier{Roots: tc.roots}, Now: func() time.Time { return tc.now }}
			_, err := s.Claims(TypeTDX, tc.pol, tc.ev)
			wantCode(t, err, tc.code, tc.contains)
		})
	}
	t.Run("fail/tdx-disabled", func(t *testing.T) {
		s := &Service{Now: svc.Now}
		_, err := s.Claims(TypeTDX, anyTCB, &Evidence{Report: tdxQuote(), Collateral: tdxCollateral(t, false)})
		wantCode(t, err, CodeTypeDisabled, "disabled")
	})
	t.Run("fail/collateral-with-sim", func(t *testing.T) {
		key := simKey(t)
		s := &Service{Sim: &SimVerifier{Keys: []*ecdsa.PublicKey{&key.PublicKey}}, Now: svc.Now}
		ev := simEvidence(t, key, 1, nil, false)
		ev.Collateral = tdxCollateral(t, false)
		_, err := s.Claims(TypeSim, &Policy{Types: []string{TypeSim}}, ev)
		wantCode(t, err, CodeInvalidParameter, "only for tdxvm")
	})
}

// TestTDXPolicyDebug applies the policy to a debuggable TD: Intel's keys sign real quotes only,
// so the debug bit cannot be set in a quote that verifies (see debug-bit-set-breaks-signature);
// the policy decision is tested on the verified form.
func TestTDXPolicyDebug(t *testing.T) {
	body := tdxBody(t)
	body.TdAttributes = append([]byte(nil), body.GetTdAttributes()...)
	body.TdAttributes[0] |= 1
	ver := tdxVerified(body, TCBUpToDate)
	if !ver.Debuggable || ver.Claims[ClaimTDXDebug] != true || ver.Claims["dbgstat"] != "enabled" {
		t.Fatalf("verified = %+v", ver)
	}
	wantCode(t, (&Policy{Types: []string{TypeTDX}}).check(ver), CodePolicy, "debugging")
	if err := (&Policy{Types: []string{TypeTDX}, AllowDebug: true}).check(ver); err != nil {
		t.Errorf("check(allowDebug) = %v", err)
	}
}

func TestTDXPolicyParse(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"types":["TdxVm"],"tdx":{"rtmr1":["` + strings.Repeat("AB", 48) + `"],"allowTcbNotUpToDate":true}}`))
	if err != nil || p.Types[0] != TypeTDX || p.TDX.RTMR1[0] != strings.Repeat("ab", 48) || !p.TDX.AllowTCBNotUpToDate {
		t.Fatalf("ParsePolicy = %+v, %v", p, err)
	}
	for _, bad := range []string{`{"tdx":{"rtmr0":["00"]}}`, `{"tdx":{"rtmr4":[]}}`, `{"tdx":{"minimumTcb":1}}`} {
		if _, err := ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) = nil error", bad)
		}
	}
}

func TestTDXCollateralParse(t *testing.T) {
	if _, err := ParseTDXCollateral([]byte(`{"tcbInfo":"x","tcbInfoIssuerChain":"x","qeIdentity":"x","qeIdentityIssuerChain":"x"}`)); err != nil {
		t.Errorf("ParseTDXCollateral(complete) = %v", err)
	}
	for _, bad := range []string{`{}`, `{"tcbInfo":"x"}`, `{"tcbInfo":"x","tcbInfoIssuerChain":"x","qeIdentity":"x","qeIdentityIssuerChain":"x","extra":1}`, `[]`} {
		if _, err := ParseTDXCollateral([]byte(bad)); err == nil {
			t.Errorf("ParseTDXCollateral(%s) = nil error", bad)
		}
	}
}

// otherRoot is a self-signed CA that signed none of the test data.
func otherRoot(t *testing.T) *x509.CertPool {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Intel SGX Root CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: tdxNow.AddDate(-1, 0, 0), NotAfter: tdxNow.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// FuzzTDXQuote sends mutated quotes through the tdxvm verifier: every rejection must be an
// *Error (a 4xx), never a panic or another error.
func FuzzTDXQuote(f *testing.F) {
	f.Add(tdxQuote())
	f.Add(tdxQuote()[:abi.QuoteMinSize])
	coll := tdxCollateral(f, true)
	v := &TDXVerifier{}
	f.Fuzz(func(t *testing.T, quote []byte) {
		if _, err := v.VerifyQuote(quote, coll, tdxNow); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("VerifyQuote error %v is not an *Error", err)
			}
		}
	})
}
