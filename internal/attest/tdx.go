package attest

import (
	"crypto/x509"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
)

// intelRootPEM is the Intel SGX Root CA (CN=Intel SGX Root CA, valid until 2049-12-31,
// SHA-256 fingerprint 44:A0:19:6B:…:74:D3), copied from go-tdx-guest's verify/trusted_root.pem
// and pinned here: every TDX signature chain (PCK certificate, TCB info, QE identity, CRLs)
// must end at it.
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

// MAA's TDX claims (the Azure Attestation EAT profile for Intel TDX).
const (
	ClaimTDXMRTD      = "tdx_mrtd"
	ClaimTDXDebug     = "tdx_td_attributes_debug"
	ClaimTDXTCBStatus = "attester_tcb_status"
	ClaimTDXReport    = "tdx_report_data"
)

// TCBUpToDate is the attester_tcb_status of a platform whose TDX TCB and quoting enclave are
// both at Intel's UpToDate level; TCBNotUpToDate is every other outcome (OutOfDate,
// configuration needed, or no matching TCB level at all).
const (
	TCBUpToDate    = "UpToDate"
	TCBNotUpToDate = "NotUpToDate"
)

// TD attribute bits (TDX DCAP Quoting Library API, A.3.4).
const (
	tdAttrDebug         = 1 << 0
	tdAttrSeptVEDisable = 1 << 28
	tdAttrPKS           = 1 << 30
	tdAttrKeyLocker     = 1 << 31
	tdAttrPerfmon       = 1 << 63
)

// TDXVerifier verifies Intel TDX quotes (version 4) offline with github.com/google/go-tdx-guest.
type TDXVerifier struct {
	// Roots are the trusted roots; nil means the pinned Intel SGX Root CA. Tests may pin others.
	Roots *x509.CertPool
	// Collateral is used for quotes whose request carries none (server configuration); nil
	// means every request must carry its own.
	Collateral *TDXCollateral
}

func (v *TDXVerifier) roots() *x509.CertPool {
	if v.Roots != nil {
		return v.Roots
	}
	pool := x509.NewCertPool()
	blk, _ := pem.Decode(intelRootPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		panic("attest: the embedded Intel SGX Root CA does not parse: " + err.Error())
	}
	pool.AddCert(cert)
	return pool
}

// VerifyQuote checks a raw TDX quote against collateral at now:
//
//  1. the quote's structure, its signature by the attestation key, the QE report's signature
//     by the PCK certificate, the QE report's binding of the attestation key, and the PCK
//     certificate chain to the pinned Intel root (go-tdx-guest, no collateral);
//  2. the collateral: TCB info and QE identity signed by Intel's TCB signing certificate to the
//     pinned root, unexpired at now, CRLs when supplied, FMSPC/PCE-ID/TDX module consistency,
//     and the TCB level (go-tdx-guest with an in-memory getter). A TCB that matches no
//     UpToDate level is not an error here: it is reported as TCBNotUpToDate, and the
//     attestation policy decides;
//  3. the quoting enclave against the QE identity (always, see checkQEIdentity).
func (v *TDXVerifier) VerifyQuote(raw []byte, coll *TDXCollateral, now time.Time) (ver *Verified, err error) {
	if coll == nil {
		coll = v.Collateral
	}
	if coll == nil {
		return nil, errf(CodeInvalidEvidence, "tdxvm evidence needs Intel's collateral: send \"collateral\" with the quote (this server has none configured)")
	}
	if err := coll.check(); err != nil {
		return nil, err
	}
	if len(raw) < abi.QuoteMinSize {
		return nil, errf(CodeInvalidEvidence, "the TDX quote is %d bytes; a quote is at least %d bytes", len(raw), abi.QuoteMinSize)
	}
	// go-tdx-guest parses attacker-controlled bytes; a panic in it must not become a 500.
	defer func() {
		if p := recover(); p != nil {
			ver, err = nil, errf(CodeInvalidEvidence, "the TDX quote could not be parsed")
		}
	}()
	anyQuote, perr := abi.QuoteToProto(raw)
	if perr != nil {
		return nil, errf(CodeInvalidEvidence, "the TDX quote is malformed: %s", shorten(perr))
	}
	quote, ok := anyQuote.(*pb.QuoteV4)
	if !ok {
		return nil, errf(CodeInvalidEvidence, "only TDX quotes of version 4 are supported")
	}
	if quote.GetHeader().GetTeeType() != abi.TeeTDX {
		return nil, errf(CodeInvalidEvidence, "the quote is not a TDX quote (TEE type %#x)", quote.GetHeader().GetTeeType())
	}
	roots := v.roots()
	if verr := verify.TdxQuote(quote, &verify.Options{TrustedRoots: roots, Now: now}); verr != nil {
		return nil, errf(CodeInvalidEvidence, "the TDX quote did not verify against the pinned Intel root: %s", shorten(verr))
	}
	getter, err := newCollateralGetter(coll)
	if err != nil {
		return nil, err
	}
	status := TCBUpToDate
	opts := &verify.Options{GetCollateral: true, CheckRevocations: coll.hasCRLs(), Getter: getter, TrustedRoots: roots, Now: now}
	if verr := verify.TdxQuote(quote, opts); verr != nil {
		// go-tdx-guest v0.3.1 words every TCB level outcome other than UpToDate this way (TDX
		// TCB info or QE identity); everything else is a collateral or consistency failure.
		if !strings.Contains(verr.Error(), "failed TCB status check") {
			return nil, errf(CodeInvalidEvidence, "the TDX quote did not verify against its collateral: %s", shorten(verr))
		}
		status = TCBNotUpToDate
	}
	if err := checkQEIdentity(coll, quote); err != nil {
		return nil, err
	}
	return tdxVerified(quote.GetTdQuoteBody(), status), nil
}

// Verify implements Verifier for quotes without request collateral.
func (v *TDXVerifier) Verify(report []byte, now time.Time) (*Verified, error) {
	return v.VerifyQuote(report, nil, now)
}

func tdxVerified(b *pb.TDQuoteBody, status string) *Verified {
	attrs := binary.LittleEndian.Uint64(b.GetTdAttributes())
	debug := attrs&tdAttrDebug != 0
	h := hex.EncodeToString
	claims := map[string]any{
		ClaimTDXMRTD:                        h(b.GetMrTd()),
		"tdx_mrseam":                        h(b.GetMrSeam()),
		"tdx_mrsignerseam":                  h(b.GetMrSignerSeam()),
		"tdx_mrconfigid":                    h(b.GetMrConfigId()),
		"tdx_mrowner":                       h(b.GetMrOwner()),
		"tdx_mrownerconfig":                 h(b.GetMrOwnerConfig()),
		ClaimTDXReport:                      h(b.GetReportData()),
		"tdx_seam_attributes":               h(b.GetSeamAttributes()),
		"tdx_td_attributes":                 h(b.GetTdAttributes()),
		ClaimTDXDebug:                       debug,
		"tdx_td_attributes_septve_disable":  attrs&tdAttrSeptVEDisable != 0,
		"tdx_td_attributes_protection_keys": attrs&tdAttrPKS != 0,
		"tdx_td_attributes_key_locker":      attrs&tdAttrKeyLocker != 0,
		"tdx_td_attributes_perfmon":         attrs&tdAttrPerfmon != 0,
		"tdx_tee_tcb_svn":                   h(b.GetTeeTcbSvn()),
		"tdx_xfam":                          h(b.GetXfam()),
		ClaimTDXTCBStatus:                   status,
		"dbgstat":                           "disabled",
	}
	if debug {
		claims["dbgstat"] = "enabled"
	}
	rtmrs := b.GetRtmrs()
	for i, r := range rtmrs {
		claims["tdx_rtmr"+string(rune('0'+i))] = h(r)
	}
	return &Verified{
		Type: TypeTDX, Measurement: b.GetMrTd(), Debuggable: debug, ReportData: b.GetReportData(),
		RTMRs: rtmrs, TCBStatus: status, Claims: claims,
	}
}
