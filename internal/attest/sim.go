package attest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The sim report body: magic ‖ measurement ‖ report data ‖ flags (big-endian; bit 0 =
// debuggable, the other bits must be zero). The report is base64url of the JSON
// {"body": base64url(body), "signature": base64url(ASN.1 ECDSA P-256 SHA-256 over body)}.
const (
	simMagic   = "CSIMREP1"
	simBodyLen = len(simMagic) + MeasurementLen + 64 + 8
	simDebug   = 1
)

// SimVerifier verifies evidence of the software TEE simulator: reports signed by one of the
// simulator keys the operator registered.
type SimVerifier struct {
	Keys []*ecdsa.PublicKey
}

type simReport struct {
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

// Verify checks a sim report's signature by a registered key and returns its contents.
func (v *SimVerifier) Verify(report []byte, _ time.Time) (*Verified, error) {
	var r simReport
	if err := strictJSON(report, &r); err != nil {
		return nil, errf(CodeInvalidEvidence, "the sim report is not {\"body\": base64url, \"signature\": base64url}: %s", err)
	}
	body, err := decodeB64("body", r.Body, simBodyLen)
	if err != nil || len(body) != simBodyLen || string(body[:len(simMagic)]) != simMagic {
		return nil, errf(CodeInvalidEvidence, "the sim report body must be %d bytes starting with %q", simBodyLen, simMagic)
	}
	sig, err := decodeB64("signature", r.Signature, 80)
	if err != nil {
		return nil, errf(CodeInvalidEvidence, "the sim report signature is not base64url")
	}
	digest := sha256.Sum256(body)
	ok := false
	for _, k := range v.Keys {
		ok = ok || ecdsa.VerifyASN1(k, digest[:], sig)
	}
	if !ok {
		return nil, errf(CodeInvalidEvidence, "the sim report is not signed by a registered simulator key")
	}
	rest := body[len(simMagic):]
	meas, rd, flags := rest[:MeasurementLen], rest[MeasurementLen:MeasurementLen+64], binary.BigEndian.Uint64(rest[MeasurementLen+64:])
	if flags&^simDebug != 0 {
		return nil, errf(CodeInvalidEvidence, "the sim report sets unknown flags")
	}
	debug := flags&simDebug != 0
	return &Verified{
		Type: TypeSim, Measurement: meas, Debuggable: debug, ReportData: rd,
		Claims: map[string]any{
			ClaimSimMeasurement: hex.EncodeToString(meas),
			ClaimSimDebuggable:  debug,
		},
	}, nil
}

// SimReport makes a sim report signed by key: what a simulated TEE sends as "report". The
// measurement stands for the TEE's code; reportData binds its runtime data (see ReportData).
func SimReport(key *ecdsa.PrivateKey, measurement [MeasurementLen]byte, reportData [64]byte, debuggable bool) ([]byte, error) {
	body := make([]byte, 0, simBodyLen)
	body = append(body, simMagic...)
	body = append(body, measurement[:]...)
	body = append(body, reportData[:]...)
	var flags uint64
	if debuggable {
		flags = simDebug
	}
	body = binary.BigEndian.AppendUint64(body, flags)
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	return json.Marshal(simReport{Body: enc.EncodeToString(body), Signature: enc.EncodeToString(sig)})
}
