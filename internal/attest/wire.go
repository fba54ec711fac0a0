package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Wire limits, checked before anything is parsed.
const (
	// MaxBody is the largest attest request body, in bytes.
	MaxBody = 256 << 10
	// MaxReport is the largest decoded report, in bytes.
	MaxReport = 128 << 10
	// MaxRuntimeData is the largest decoded runtime data, in bytes.
	MaxRuntimeData = 16 << 10
	// MaxNonce is the longest nonce, in bytes.
	MaxNonce = 256
)

// Request is the body of POST /attest/{type}, as MAA takes it (api-version 2022-08-01):
// report and runtimeData.data are base64url. Coffer does not support initTimeData or
// draftPolicyForAttestation; a request naming them is refused.
type Request struct {
	Report string `json:"report,omitempty"`
	// Quote is a TDX quote (MAA's member for tdxvm); a request carries report or quote.
	Quote string `json:"quote,omitempty"`
	// Collateral is Intel's collateral for a TDX quote (a Coffer extension: MAA fetches it).
	Collateral  *TDXCollateral `json:"collateral,omitempty"`
	RuntimeData *RuntimeData   `json:"runtimeData,omitempty"`
	Nonce       string         `json:"nonce,omitempty"`
}

// RuntimeData is data the TEE bound into its report: for Coffer, JSON with a "keys" member
// holding the TEE's public keys (JWKs).
type RuntimeData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"`
}

// Response is the answer to an attest request.
type Response struct {
	Token string `json:"token"`
}

// SNPReport is the decoded report of a sevsnpvm request: the raw SEV-SNP attestation report
// and the certificate chain that signs it (the VCEK first, in PEM; an ASK and ARK after it
// are ignored, because the AMD roots are pinned).
type SNPReport struct {
	SnpReport     string `json:"SnpReport"`
	VcekCertChain string `json:"VcekCertChain"`
}

// Evidence is a decoded request.
type Evidence struct {
	Report      []byte // the report, or a TDX quote
	Collateral  *TDXCollateral
	RuntimeData []byte // nil when the request has none
	Nonce       string
}

// DecodeRequest reads an attest request body strictly: one JSON object, no unknown members,
// base64url fields within the limits.
func DecodeRequest(body []byte) (*Evidence, error) {
	if len(body) > MaxBody {
		return nil, errf(CodeInvalidParameter, "the request body is larger than %d bytes", MaxBody)
	}
	var req Request
	if err := strictJSON(body, &req); err != nil {
		return nil, errf(CodeInvalidParameter, "the request body is not an attest request: %s (want {\"report\": base64url, \"runtimeData\": {\"data\": base64url, \"dataType\": \"JSON\"}, \"nonce\": string})", err)
	}
	field, report := "report", req.Report
	if req.Quote != "" {
		field, report = "quote", req.Quote
	}
	if (req.Report == "") == (req.Quote == "") {
		return nil, errf(CodeInvalidParameter, "one of \"report\" (sevsnpvm, sim) or \"quote\" (tdxvm) is required")
	}
	ev := &Evidence{Nonce: req.Nonce, Collateral: req.Collateral}
	var err error
	if ev.Report, err = decodeB64(field, report, MaxReport); err != nil {
		return nil, err
	}
	if len(req.Nonce) > MaxNonce {
		return nil, errf(CodeInvalidParameter, "\"nonce\" is longer than %d bytes", MaxNonce)
	}
	if rd := req.RuntimeData; rd != nil {
		if !strings.EqualFold(rd.DataType, "JSON") {
			return nil, errf(CodeInvalidParameter, "\"runtimeData.dataType\" must be \"JSON\" (binary runtime data is not supported)")
		}
		if ev.RuntimeData, err = decodeB64("runtimeData.data", rd.Data, MaxRuntimeData); err != nil {
			return nil, err
		}
		if len(ev.RuntimeData) == 0 {
			return nil, errf(CodeInvalidParameter, "\"runtimeData.data\" is empty")
		}
	}
	return ev, nil
}

// decodeB64 decodes base64url within max bytes. MAA clients send it padded or not, so
// padding is optional, but either form is strict (strictb64): no whitespace, no standard
// alphabet, canonical trailing bits.
func decodeB64(field, s string, max int) ([]byte, error) {
	if base64.RawURLEncoding.DecodedLen(len(s)) > max+2 {
		return nil, errf(CodeInvalidParameter, "%q is larger than %d bytes", field, max)
	}
	enc := strictb64.URL
	if strings.HasSuffix(s, "=") {
		enc = strictb64.PaddedURL
	}
	b, err := enc.DecodeString(field, s)
	if err != nil {
		return nil, errf(CodeInvalidParameter, "%s", err)
	}
	if len(b) > max {
		return nil, errf(CodeInvalidParameter, "%q is larger than %d bytes", field, max)
	}
	return b, nil
}

// strictJSON decodes one JSON object into v, refusing unknown members and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return shortJSONError(err)
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the object")
	}
	return nil
}

// shortJSONError keeps encoding/json's description of the problem without quoting input.
func shortJSONError(err error) error {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case asErr(err, &ute):
		return fmt.Errorf("member %q has the wrong type", ute.Field)
	case asErr(err, &se):
		return fmt.Errorf("malformed JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown member %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fmt.Errorf("malformed JSON")
}

// OpenIDConfiguration is the discovery document served at /.well-known/openid-configuration
// of a provider host, so that relying parties can find the keys that sign its tokens.
type OpenIDConfiguration struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	RevocationEndpoint               string   `json:"revocation_endpoint,omitempty"`
}

// Discovery returns the discovery document of the provider whose base URL is issuer.
func Discovery(issuer string) OpenIDConfiguration {
	return OpenIDConfiguration{
		Issuer:                           issuer,
		JWKSURI:                          issuer + "/certs",
		IDTokenSigningAlgValuesSupported: []string{"ES256"},
		ResponseTypesSupported:           []string{"token"},
		ClaimsSupported: []string{"iss", "iat", "exp", "nbf", "jti", "nonce", ClaimType, ClaimCompliance, ClaimRuntime,
			ClaimSNPMeasurement, ClaimSNPDebuggable, ClaimSimMeasurement, ClaimSimDebuggable,
			ClaimTDXMRTD, "tdx_rtmr0", "tdx_rtmr1", "tdx_rtmr2", "tdx_rtmr3", ClaimTDXDebug, ClaimTDXTCBStatus, ClaimTDXReport},
	}
}
