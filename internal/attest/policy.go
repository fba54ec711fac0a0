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
}

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
		case TypeSEVSNP, TypeSim:
			p.Types[i] = t
		default:
			return nil, errf(CodeInvalidPolicy, "types[%d]: %q is not an attestation type Coffer serves (sevsnpvm, sim)", i, truncate(t))
		}
	}
	if len(p.Measurements) > MaxMeasurements {
		return nil, errf(CodeInvalidPolicy, "at most %d measurements are allowed", MaxMeasurements)
	}
	for i, m := range p.Measurements {
		b, err := hex.DecodeString(m)
		if err != nil || len(b) != MeasurementLen {
			return nil, errf(CodeInvalidPolicy, "measurements[%d] must be %d hex digits", i, 2*MeasurementLen)
		}
		p.Measurements[i] = hex.EncodeToString(b)
	}
	return &p, nil
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
	if len(p.Measurements) > 0 {
		got := hex.EncodeToString(v.Measurement)
		ok := false
		for _, m := range p.Measurements {
			ok = ok || m == got
		}
		if !ok {
			return errf(CodePolicy, "the launch measurement is not one the attestation policy accepts")
		}
	}
	if v.Debuggable && !p.AllowDebug {
		return errf(CodePolicy, "the TEE's guest policy allows debugging; the attestation policy does not accept debuggable TEEs")
	}
	if p.MinimumTCB != nil && v.Type == TypeSEVSNP && !v.TCB.atLeast(*p.MinimumTCB) {
		return errf(CodePolicy, "the reported TCB is below the attestation policy's minimumTcb")
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
