package attest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// MaxCollateral is the largest collateral document (configuration file or decoded request
// member), in bytes.
const MaxCollateral = 128 << 10

// TDXCollateral is what Intel's Provisioning Certification Service (PCS) answers for a TDX
// platform, carried in the attest request (or configured) so that verification never goes to
// the network. It mirrors DCAP's sgx_ql_qve_collateral_t:
//
//   - TcbInfo: the body of PCS's TDX TCB info response, verbatim
//     ({"tcbInfo": {...}, "signature": "<hex>"}: the signature covers the exact bytes);
//   - TcbInfoIssuerChain: PEM, the "Intel SGX TCB Signing" certificate then the root (PCS's
//     TCB-Info-Issuer-Chain header, URL-decoded);
//   - QeIdentity and QeIdentityIssuerChain: the same for the TDX quoting enclave's identity;
//   - PckCrl (base64url of DER), PckCrlIssuerChain (PEM) and RootCaCrl (base64url of DER),
//     optional: when all three are present, the PCK certificate chain is checked against them.
//
// Every signature is verified to the pinned Intel SGX Root CA; the issuer chains' own roots
// are not trusted.
type TDXCollateral struct {
	TcbInfo               string `json:"tcbInfo"`
	TcbInfoIssuerChain    string `json:"tcbInfoIssuerChain"`
	QeIdentity            string `json:"qeIdentity"`
	QeIdentityIssuerChain string `json:"qeIdentityIssuerChain"`
	PckCrl                string `json:"pckCrl,omitempty"`
	PckCrlIssuerChain     string `json:"pckCrlIssuerChain,omitempty"`
	RootCaCrl             string `json:"rootCaCrl,omitempty"`
}

// ParseTDXCollateral reads a collateral document strictly (configuration files use it).
func ParseTDXCollateral(doc []byte) (*TDXCollateral, error) {
	if len(doc) > MaxCollateral {
		return nil, errf(CodeInvalidEvidence, "the TDX collateral is larger than %d bytes", MaxCollateral)
	}
	var c TDXCollateral
	if err := strictJSON(doc, &c); err != nil {
		return nil, errf(CodeInvalidEvidence, "the TDX collateral is not {\"tcbInfo\", \"tcbInfoIssuerChain\", \"qeIdentity\", \"qeIdentityIssuerChain\", …}: %s", err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *TDXCollateral) check() error {
	if c.TcbInfo == "" || c.TcbInfoIssuerChain == "" || c.QeIdentity == "" || c.QeIdentityIssuerChain == "" {
		return errf(CodeInvalidEvidence, "the TDX collateral needs tcbInfo, tcbInfoIssuerChain, qeIdentity and qeIdentityIssuerChain")
	}
	crls := 0
	for _, s := range []string{c.PckCrl, c.PckCrlIssuerChain, c.RootCaCrl} {
		if s != "" {
			crls++
		}
	}
	if crls != 0 && crls != 3 {
		return errf(CodeInvalidEvidence, "the TDX collateral's pckCrl, pckCrlIssuerChain and rootCaCrl come together")
	}
	return nil
}

func (c *TDXCollateral) hasCRLs() bool { return c.PckCrl != "" }

// collateralGetter answers go-tdx-guest's PCS requests from the collateral in memory; it never
// touches the network. Anything it does not hold is an error.
type collateralGetter struct {
	c          *TDXCollateral
	pckCrl     []byte
	rootCaCrl  []byte
	pcsTcbURL  string
	pcsPckCRL  string
	qeIdentity string
}

func newCollateralGetter(c *TDXCollateral) (*collateralGetter, error) {
	g := &collateralGetter{c: c, pcsTcbURL: pcs.TcbInfoURL(""), pcsPckCRL: pcs.PckCrlURL(""), qeIdentity: pcs.QeIdentityURL()}
	g.pcsPckCRL = g.pcsPckCRL[:strings.Index(g.pcsPckCRL, "?")+1]
	if c.hasCRLs() {
		var err error
		if g.pckCrl, err = decodeB64("collateral.pckCrl", c.PckCrl, MaxCollateral); err != nil {
			return nil, errf(CodeInvalidEvidence, "%s", err.(*Error).Message)
		}
		if g.rootCaCrl, err = decodeB64("collateral.rootCaCrl", c.RootCaCrl, MaxCollateral); err != nil {
			return nil, errf(CodeInvalidEvidence, "%s", err.(*Error).Message)
		}
	}
	return g, nil
}

// Get implements trust.HTTPSGetter.
func (g *collateralGetter) Get(u string) (map[string][]string, []byte, error) {
	chain := func(name, pemChain string) map[string][]string {
		return map[string][]string{name: {url.QueryEscape(pemChain)}}
	}
	switch {
	case strings.HasPrefix(u, g.pcsTcbURL):
		return chain("Tcb-Info-Issuer-Chain", g.c.TcbInfoIssuerChain), []byte(g.c.TcbInfo), nil
	case u == g.qeIdentity:
		return chain("Sgx-Enclave-Identity-Issuer-Chain", g.c.QeIdentityIssuerChain), []byte(g.c.QeIdentity), nil
	case strings.HasPrefix(u, g.pcsPckCRL) && g.pckCrl != nil:
		return chain("Sgx-Pck-Crl-Issuer-Chain", g.c.PckCrlIssuerChain), g.pckCrl, nil
	case g.rootCaCrl != nil && !strings.HasPrefix(u, g.pcsPckCRL):
		// The root CA CRL is asked for at the root certificate's CRL distribution point.
		return nil, g.rootCaCrl, nil
	}
	return nil, nil, errors.New("not in the supplied collateral")
}

// checkQEIdentity matches the quoting enclave's report against the QE identity collateral
// (MISCSELECT and ATTRIBUTES under their masks, MRSIGNER, ISVPRODID). go-tdx-guest does this
// only when the TDX TCB is up to date; Coffer does it always, so that a policy that accepts a
// TCB that is not up to date still requires Intel's quoting enclave. The signature of the
// collateral itself has been verified by go-tdx-guest before this is called.
func checkQEIdentity(c *TDXCollateral, q *pb.QuoteV4) error {
	var id pcs.QeIdentity
	if err := json.Unmarshal([]byte(c.QeIdentity), &id); err != nil {
		return errf(CodeInvalidEvidence, "the TDX collateral's qeIdentity is malformed")
	}
	ei := id.EnclaveIdentity
	r := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	if len(ei.MiscselectMask.Bytes) != 4 || len(ei.Miscselect.Bytes) != 4 || len(ei.AttributesMask.Bytes) != len(r.GetAttributes()) {
		return errf(CodeInvalidEvidence, "the TDX collateral's qeIdentity is malformed")
	}
	mask := binary.LittleEndian.Uint32(ei.MiscselectMask.Bytes)
	ok := r.GetMiscSelect()&mask == binary.LittleEndian.Uint32(ei.Miscselect.Bytes) &&
		bytes.Equal(andBytes(r.GetAttributes(), ei.AttributesMask.Bytes), ei.Attributes.Bytes) &&
		bytes.Equal(r.GetMrSigner(), ei.Mrsigner.Bytes) &&
		r.GetIsvProdId() == uint32(ei.IsvProdID)
	if !ok {
		return errf(CodeInvalidEvidence, "the TDX quote's quoting enclave is not the one Intel's QE identity names")
	}
	return nil
}

func andBytes(a, mask []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] & mask[i]
	}
	return out
}
