package attest

import (
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"
)

// FuzzAttestEvidence sends arbitrary bodies through DecodeRequest and the sevsnpvm and sim
// verifiers: every rejection must be an *Error (a 4xx), never a panic or another error.
func FuzzAttestEvidence(f *testing.F) {
	key := simKey(f)
	rt := runtimeJSON(f)
	simEv := simEvidence(f, key, 1, rt, false)
	snp := snpEvidence(f, realReport(), append(pemCert(testdata.VcekBytes), trust.AskArkMilanVcekBytes...), nil)
	for _, ev := range []*Evidence{simEv, snp} {
		f.Add(`{"report":"`+b64u.EncodeToString(ev.Report)+`","runtimeData":{"data":"`+b64u.EncodeToString(rt)+`","dataType":"JSON"}}`, true)
		f.Add(`{"report":"`+b64u.EncodeToString(ev.Report)+`"}`, false)
	}
	svc := &Service{SNP: &SNPVerifier{}, Sim: &SimVerifier{Keys: []*ecdsa.PublicKey{&key.PublicKey}}, Now: func() time.Time { return realNow }}
	pol := &Policy{Types: []string{TypeSEVSNP, TypeSim}, AllowDebug: true}
	f.Fuzz(func(t *testing.T, body string, sim bool) {
		ev, err := DecodeRequest([]byte(body))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeRequest error %v is not an *Error", err)
			}
			return
		}
		typ := TypeSEVSNP
		if sim {
			typ = TypeSim
		}
		if _, err := svc.Claims(typ, pol, ev); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Claims error %v is not an *Error", err)
			}
		}
	})
}
