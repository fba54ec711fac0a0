package attest

import (
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
)

// maxChainCerts is the most certificates a VcekCertChain may hold (VCEK, ASK, ARK).
const maxChainCerts = 3

// SNPVerifier verifies AMD SEV-SNP evidence offline.
type SNPVerifier struct {
	// Roots are the trusted ARK/ASK pairs per product line. Nil means the AMD roots embedded
	// in go-sev-guest: production servers leave it nil; tests pin other roots.
	Roots map[string][]*trust.AMDRootCerts
}

// Verify checks a sevsnpvm report (the JSON of SNPReport): the report's format, the VCEK
// certificate to the pinned AMD roots at now, the report's signature by the VCEK, and the
// consistency of the report with the VCEK (TCB, chip id). Policy checks are the caller's.
func (v *SNPVerifier) Verify(report []byte, now time.Time) (ver *Verified, err error) {
	var r SNPReport
	if err := strictJSON(report, &r); err != nil {
		return nil, errf(CodeInvalidEvidence, "the sevsnpvm report is not {\"SnpReport\": base64url, \"VcekCertChain\": base64url(PEM)}: %s", err)
	}
	raw, err := decodeB64("SnpReport", r.SnpReport, abi.ReportSize)
	if err != nil {
		return nil, errf(CodeInvalidEvidence, "%s", err.(*Error).Message)
	}
	if len(raw) != abi.ReportSize {
		return nil, errf(CodeInvalidEvidence, "the SEV-SNP report is %d bytes; an attestation report is %d bytes", len(raw), abi.ReportSize)
	}
	chainPEM, err := decodeB64("VcekCertChain", r.VcekCertChain, 16<<10)
	if err != nil {
		return nil, errf(CodeInvalidEvidence, "%s", err.(*Error).Message)
	}
	vcek, err := firstCert(chainPEM)
	if err != nil {
		return nil, err
	}
	// go-sev-guest parses attacker-controlled bytes; a panic in it must not become a 500.
	defer func() {
		if p := recover(); p != nil {
			ver, err = nil, errf(CodeInvalidEvidence, "the SEV-SNP report could not be parsed")
		}
	}()
	rep, perr := abi.ReportToProto(raw)
	if perr != nil {
		return nil, errf(CodeInvalidEvidence, "the SEV-SNP report is malformed: %s", shorten(perr))
	}
	att := &spb.Attestation{Report: rep, CertificateChain: &spb.CertificateChain{VcekCert: vcek}}
	opts := &verify.Options{Now: now, DisableCertFetching: true, TrustedRoots: v.Roots}
	if verr := verify.SnpAttestation(att, opts); verr != nil {
		return nil, errf(CodeInvalidEvidence, "the SEV-SNP report did not verify against the pinned AMD roots: %s", shorten(verr))
	}
	// Consistency only: everything policy-dependent (debug, TCB minimum, measurement) is
	// checked by Policy.check.
	vopts := &validate.Options{
		GuestPolicy:               abi.SnpPolicy{ABIMajor: 0, ABIMinor: 0, SMT: true, Debug: true, MigrateMA: true, CXLAllowed: true},
		PermitProvisionalFirmware: true,
	}
	if verr := validate.SnpAttestation(att, vopts); verr != nil {
		return nil, errf(CodeInvalidEvidence, "the SEV-SNP report is inconsistent with its VCEK certificate: %s", shorten(verr))
	}
	pol, perr := abi.ParseSnpPolicy(rep.GetPolicy())
	if perr != nil {
		return nil, errf(CodeInvalidEvidence, "the SEV-SNP guest policy is malformed")
	}
	tcb := abiTCB(rep.GetReportedTcb())
	return &Verified{
		Type:        TypeSEVSNP,
		Measurement: rep.GetMeasurement(),
		Debuggable:  pol.Debug,
		ReportData:  rep.GetReportData(),
		TCB:         tcb,
		Claims: map[string]any{
			ClaimSNPMeasurement:               hex.EncodeToString(rep.GetMeasurement()),
			ClaimSNPDebuggable:                pol.Debug,
			"x-ms-sevsnpvm-reportdata":        hex.EncodeToString(rep.GetReportData()),
			"x-ms-sevsnpvm-hostdata":          hex.EncodeToString(rep.GetHostData()),
			"x-ms-sevsnpvm-guestsvn":          rep.GetGuestSvn(),
			"x-ms-sevsnpvm-vmpl":              rep.GetVmpl(),
			"x-ms-sevsnpvm-bootloader-svn":    tcb.Bootloader,
			"x-ms-sevsnpvm-tee-svn":           tcb.TEE,
			"x-ms-sevsnpvm-snpfw-svn":         tcb.SNP,
			"x-ms-sevsnpvm-microcode-svn":     tcb.Microcode,
			"x-ms-sevsnpvm-migration-allowed": pol.MigrateMA,
			"x-ms-sevsnpvm-smt-allowed":       pol.SMT,
		},
	}, nil
}

// abiTCB splits a TCB_VERSION into its component SVNs (Milan/Genoa layout).
func abiTCB(v uint64) TCB {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(v))
	return TCB{Bootloader: p.BlSpl, TEE: p.TeeSpl, SNP: p.SnpSpl, Microcode: p.UcodeSpl}
}

// firstCert returns the DER of the first certificate of a PEM chain (or the bytes as they
// are, if they are DER).
func firstCert(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == 0x30 {
		return b, nil
	}
	var first []byte
	for n := 0; ; n++ {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" || n >= maxChainCerts {
			return nil, errf(CodeInvalidEvidence, "VcekCertChain must be at most %d PEM CERTIFICATE blocks, the VCEK first", maxChainCerts)
		}
		if first == nil {
			first = blk.Bytes
		}
	}
	if first == nil {
		return nil, errf(CodeInvalidEvidence, "VcekCertChain holds no PEM certificate")
	}
	return first, nil
}

// shorten keeps a library error's first line, bounded (it may quote certificate fields).
func shorten(err error) string {
	s := fmt.Sprint(err)
	for i, c := range s {
		if c == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
