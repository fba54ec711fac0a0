package attest

import (
	"strings"
	"time"
)

// Claim names of attestation tokens (MAA's where MAA has one).
const (
	ClaimType           = "x-ms-attestation-type"
	ClaimCompliance     = "x-ms-compliance-status"
	ClaimRuntime        = "x-ms-runtime"
	ClaimPolicyHash     = "x-ms-policy-hash"
	ClaimSNPMeasurement = "x-ms-sevsnpvm-launchmeasurement"
	ClaimSNPDebuggable  = "x-ms-sevsnpvm-is-debuggable"
	ClaimSimMeasurement = "x-ms-sim-launchmeasurement"
	ClaimSimDebuggable  = "x-ms-sim-is-debuggable"
)

// Compliance statuses: what Coffer vouches for. Never Azure's "azure-compliant-cvm".
const (
	ComplianceSEVSNP = "coffer-compliant-cvm"
	ComplianceSim    = "coffer-sim-not-a-tee"
)

// Verified is evidence whose signature verified, before policy.
type Verified struct {
	Type        string
	Measurement []byte
	Debuggable  bool
	ReportData  []byte
	TCB         TCB
	// RTMRs are a TDX quote's runtime measurement registers (nil for other types).
	RTMRs [][]byte
	// TCBStatus is a TDX platform's TCB status (TCBUpToDate or TCBNotUpToDate).
	TCBStatus string
	// Claims are the type's own token claims.
	Claims map[string]any
}

// Verifier verifies one type of evidence.
type Verifier interface {
	Verify(report []byte, now time.Time) (*Verified, error)
}

// Service turns evidence into attestation token claims.
type Service struct {
	// SNP verifies sevsnpvm evidence; nil disables the type.
	SNP Verifier
	// TDX verifies tdxvm evidence; nil disables the type.
	TDX *TDXVerifier
	// Sim verifies sim evidence; nil (no simulator key registered) disables the type.
	Sim Verifier
	// Now is the clock certificates are checked at.
	Now func() time.Time
}

// NormalizeType maps a path's attestation type (MAA spells it "SevSnpVm") to Coffer's name,
// or returns an *Error for a type Coffer does not serve.
func NormalizeType(t string) (string, error) {
	switch lt := strings.ToLower(t); lt {
	case TypeSEVSNP, TypeSim, TypeTDX:
		return lt, nil
	}
	return "", errf(CodeUnknownType, "unknown attestation type %q: use sevsnpvm, tdxvm or sim", truncate(t))
}

// Claims verifies ev as evidence of type typ, applies pol, checks the runtime data's binding,
// and returns the claims of the token (without iss, iat, nbf, exp and jti, which the signer
// sets). Every rejection is an *Error.
func (s *Service) Claims(typ string, pol *Policy, ev *Evidence) (map[string]any, error) {
	typ, err := NormalizeType(typ)
	if err != nil {
		return nil, err
	}
	var v Verifier
	switch typ {
	case TypeSEVSNP:
		if s.SNP != nil {
			v = s.SNP
		}
	case TypeSim:
		if s.Sim != nil {
			v = s.Sim
		}
	case TypeTDX:
		if s.TDX != nil {
			v = tdxWith{s.TDX, ev.Collateral}
		}
	}
	if v == nil {
		return nil, errf(CodeTypeDisabled, "attestation type %s is disabled on this server (sim needs a registered simulator key)", typ)
	}
	if !pol.accepts(typ) {
		return nil, errf(CodeTypeDisabled, "this attestation provider's policy does not accept %s evidence", typ)
	}
	ver, err := v.Verify(ev.Report, s.Now())
	if err != nil {
		return nil, err
	}
	if err := pol.check(ver); err != nil {
		return nil, err
	}
	claims := map[string]any{
		ClaimType:       typ,
		ClaimCompliance: ComplianceSEVSNP,
		ClaimPolicyHash: pol.Hash(),
		"x-ms-ver":      "1.0",
	}
	if typ == TypeSim {
		claims[ClaimCompliance] = ComplianceSim
	}
	for k, c := range ver.Claims {
		claims[k] = c
	}
	if typ != TypeTDX && ev.Collateral != nil {
		return nil, errf(CodeInvalidParameter, "\"collateral\" is only for tdxvm quotes")
	}
	if ev.RuntimeData != nil {
		rt, err := parseRuntime(ev.RuntimeData, ver.ReportData)
		if err != nil {
			return nil, err
		}
		claims[ClaimRuntime] = rt
	}
	if ev.Nonce != "" {
		claims["nonce"] = ev.Nonce
	}
	return claims, nil
}

// tdxWith verifies a TDX quote with the request's collateral.
type tdxWith struct {
	v    *TDXVerifier
	coll *TDXCollateral
}

func (t tdxWith) Verify(report []byte, now time.Time) (*Verified, error) {
	return t.v.VerifyQuote(report, t.coll, now)
}
