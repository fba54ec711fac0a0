package attest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Attestation types.
const (
	TypeSEVSNP = "sevsnpvm"
	TypeSim    = "sim"
	TypeTDX    = "tdxvm"
)

// Policy limits.
const (
	// MaxPolicy is the largest attestation policy document, in bytes.
	MaxPolicy = 32 << 10
	// MaxMeasurements is the most acceptable measurements a policy lists.
	MaxMeasurements = 128
	// MeasurementLen is the length of a launch measurement, in bytes (SHA-384).
	MeasurementLen = 48
)

// Policy is an attestation provider's policy: which evidence it turns into tokens. It is
// stored (sealed) with the provider and managed through the management API.
type Policy struct {
	// Types are the evidence types accepted. Empty means ["sevsnpvm"]: "sim" must always be
	// named explicitly.
	Types []string `json:"types,omitempty"`
	// Measurements are the acceptable launch measurements, 96 hex digits each. Empty means
	// any measurement (release policies can still pin one).
	Measurements []string `json:"measurements,omitempty"`
	// AllowDebug accepts TEEs whose guest policy allows debugging (never for production).
	AllowDebug bool `json:"allowDebug,omitempty"`
	// MinimumTCB is the lowest reported TCB accepted for sevsnpvm, component-wise.
	MinimumTCB *TCB `json:"minimumTcb,omitempty"`
	// TDX holds the checks only tdxvm evidence has (measurements apply to its MRTD).
	TDX *TDXPolicy `json:"tdx,omitempty"`
}

// TDXPolicy is the tdxvm part of an attestation policy.
type TDXPolicy struct {
	// RTMR0 to RTMR3 are the acceptable values of each runtime measurement register, 96 hex
	// digits each; an empty list accepts any value.
	RTMR0 []string `json:"rtmr0,omitempty"`
	RTMR1 []string `json:"rtmr1,omitempty"`
	RTMR2 []string `json:"rtmr2,omitempty"`
	RTMR3 []string `json:"rtmr3,omitempty"`
	// AllowTCBNotUpToDate accepts platforms whose TCB (or quoting enclave) is not at Intel's
	// UpToDate level. Off by default; the token still says attester_tcb_status NotUpToDate.
	AllowTCBNotUpToDate bool `json:"allowTcbNotUpToDate,omitempty"`
}

func (t *TDXPolicy) rtmrs() [][]string { return [][]string{t.RTMR0, t.RTMR1, t.RTMR2, t.RTMR3} }

// TCB is an AMD SEV-SNP TCB version: the security version numbers of its components.
type TCB struct {
	Bootloader uint8 `json:"bootloader"`
	TEE        uint8 `json:"tee"`
	SNP        uint8 `json:"snp"`
	Microcode  uint8 `json:"microcode"`
}

// atLeast reports whether t is component-wise at least min.
func (t TCB) atLeast(min TCB) bool {
	return t.Bootloader >= min.Bootloader && t.TEE >= min.TEE && t.SNP >= min.SNP && t.Microcode >= min.Microcode
}

// ParsePolicy reads an attestation policy strictly (no unknown members, limits, known types,
// well-formed measurements) and returns it with measurements in lower case.
func ParsePolicy(doc []byte) (*Policy, error) {
	if len(doc) > MaxPolicy {
		return nil, errf(CodeInvalidPolicy, "the policy is larger than %d bytes", MaxPolicy)
	}
	var p Policy
	if err := strictJSON(doc, &p); err != nil {
		return nil, errf(CodeInvalidPolicy, "the policy is not an attestation policy: %s", err)
	}
	for i, t := range p.Types {
		switch t = strings.ToLower(t); t {
		case TypeSEVSNP, TypeSim, TypeTDX:
			p.Types[i] = t
		default:
			return nil, errf(CodeInvalidPolicy, "types[%d]: %q is not an attestation type Coffer serves (sevsnpvm, tdxvm, sim)", i, truncate(t))
		}
	}
	if len(p.Measurements) > MaxMeasurements {
		return nil, errf(CodeInvalidPolicy, "at most %d measurements are allowed", MaxMeasurements)
	}
	if err := normalizeHex48("measurements", p.Measurements); err != nil {
		return nil, err
	}
	if p.TDX != nil {
		for r, list := range p.TDX.rtmrs() {
			if err := normalizeHex48("tdx.rtmr"+string(rune('0'+r)), list); err != nil {
				return nil, err
			}
		}
	}
	return &p, nil
}

// normalizeHex48 checks that every value of list is 48 bytes in hex and lower-cases it.
func normalizeHex48(name string, list []string) error {
	if len(list) > MaxMeasurements {
		return errf(CodeInvalidPolicy, "at most %d values are allowed in %s", MaxMeasurements, name)
	}
	for i, m := range list {
		b, err := hex.DecodeString(m)
		if err != nil || len(b) != MeasurementLen {
			return errf(CodeInvalidPolicy, "%s[%d] must be %d hex digits", name, i, 2*MeasurementLen)
		}
		list[i] = hex.EncodeToString(b)
	}
	return nil
}

// oneOf reports whether the hex of v is in list (an empty list accepts anything).
func oneOf(list []string, v []byte) bool {
	if len(list) == 0 {
		return true
	}
	got := hex.EncodeToString(v)
	ok := false
	for _, m := range list {
		ok = ok || m == got
	}
	return ok
}

// accepts reports whether the policy accepts evidence of type typ.
func (p *Policy) accepts(typ string) bool {
	if len(p.Types) == 0 {
		return typ == TypeSEVSNP
	}
	for _, t := range p.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// check applies the policy to verified evidence.
func (p *Policy) check(v *Verified) error {
	if !oneOf(p.Measurements, v.Measurement) {
		return errf(CodePolicy, "the launch measurement is not one the attestation policy accepts")
	}
	if v.Debuggable && !p.AllowDebug {
		return errf(CodePolicy, "the TEE's guest policy allows debugging; the attestation policy does not accept debuggable TEEs")
	}
	if p.MinimumTCB != nil && v.Type == TypeSEVSNP && !v.TCB.atLeast(*p.MinimumTCB) {
		return errf(CodePolicy, "the reported TCB is below the attestation policy's minimumTcb")
	}
	if v.Type == TypeTDX {
		return p.checkTDX(v)
	}
	return nil
}

// checkTDX applies the tdx part of the policy: the TCB status and the RTMRs.
func (p *Policy) checkTDX(v *Verified) error {
	tp := p.TDX
	if tp == nil {
		tp = &TDXPolicy{}
	}
	if v.TCBStatus != TCBUpToDate && !tp.AllowTCBNotUpToDate {
		return errf(CodePolicy, "the TDX platform's TCB is not UpToDate by Intel's collateral; the attestation policy does not set tdx.allowTcbNotUpToDate")
	}
	for r, list := range tp.rtmrs() {
		if r >= len(v.RTMRs) || !oneOf(list, v.RTMRs[r]) {
			if len(list) > 0 {
				return errf(CodePolicy, "RTMR%d is not one the attestation policy accepts", r)
			}
		}
	}
	return nil
}

// Hash is the policy's x-ms-policy-hash claim: base64url(SHA-256) of its canonical JSON.
func (p *Policy) Hash() string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
