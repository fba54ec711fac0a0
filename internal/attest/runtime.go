package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"math/big"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// MaxRuntimeKeys is the most keys runtime data may hold.
const MaxRuntimeKeys = 8

// privateMembers are JWK members that only private keys have.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

// ReportData returns the REPORT_DATA a TEE must put in its report to bind runtimeData:
// SHA-256(runtimeData) followed by 32 zero bytes.
func ReportData(runtimeData []byte) [64]byte {
	var rd [64]byte
	sum := sha256.Sum256(runtimeData)
	copy(rd[:], sum[:])
	return rd
}

// parseRuntime checks that runtimeData is bound by reportData and that it is a JSON object
// whose "keys" are 1 to MaxRuntimeKeys public JWKs (RSA ≥ 2048 bits with e = 65537, or EC
// P-256/P-384), and returns it as the x-ms-runtime claim.
func parseRuntime(runtimeData []byte, reportData []byte) (map[string]any, error) {
	want := ReportData(runtimeData)
	if subtle.ConstantTimeCompare(want[:], reportData) != 1 {
		return nil, errf(CodeRuntimeData, "the report's REPORT_DATA is not SHA-256(runtimeData) followed by 32 zero bytes: the runtime data is not the data the TEE bound")
	}
	dec := json.NewDecoder(bytes.NewReader(runtimeData))
	dec.UseNumber()
	var rt map[string]any
	if err := dec.Decode(&rt); err != nil || dec.More() || rt == nil {
		return nil, errf(CodeRuntimeData, "the runtime data is not a JSON object")
	}
	keys, ok := rt["keys"].([]any)
	if !ok || len(keys) == 0 || len(keys) > MaxRuntimeKeys {
		return nil, errf(CodeRuntimeData, "the runtime data must hold \"keys\": 1 to %d public JWKs", MaxRuntimeKeys)
	}
	for i, k := range keys {
		jwk, ok := k.(map[string]any)
		if !ok {
			return nil, errf(CodeRuntimeData, "keys[%d] is not a JWK object", i)
		}
		if err := checkPublicJWK(jwk); err != nil {
			return nil, errf(CodeRuntimeData, "keys[%d]: %s", i, err.Message)
		}
	}
	return rt, nil
}

func checkPublicJWK(jwk map[string]any) *Error {
	for _, m := range privateMembers {
		if _, ok := jwk[m]; ok {
			return errf(CodeRuntimeData, "a runtime key must be public: member %q is not allowed", m)
		}
	}
	switch jwk["kty"] {
	case "RSA", "RSA-HSM":
		n, err := b64Int(jwk, "n")
		if err != nil {
			return err
		}
		e, err := b64Int(jwk, "e")
		if err != nil {
			return err
		}
		if n.BitLen() < 2048 || n.BitLen() > 8192 || e.Cmp(big.NewInt(65537)) != 0 {
			return errf(CodeRuntimeData, "an RSA runtime key needs n of 2048 to 8192 bits and e = 65537 (AQAB)")
		}
	case "EC", "EC-HSM":
		var curve elliptic.Curve
		switch jwk["crv"] {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return errf(CodeRuntimeData, "an EC runtime key must be on P-256 or P-384")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Bytes(jwk, "x")
		if err != nil {
			return err
		}
		y, err := b64Bytes(jwk, "y")
		if err != nil {
			return err
		}
		if len(x) != size || len(y) != size {
			return errf(CodeRuntimeData, "an EC runtime key needs x and y of %d bytes", size)
		}
		point := append(append([]byte{4}, x...), y...)
		if _, err := ecdsa.ParseUncompressedPublicKey(curve, point); err != nil {
			return errf(CodeRuntimeData, "the EC runtime key is not a point on its curve")
		}
	default:
		return errf(CodeRuntimeData, "a runtime key's kty must be RSA or EC")
	}
	return nil
}

// b64Bytes decodes the JWK member name: a non-empty strict base64url string (strictb64.URL).
func b64Bytes(jwk map[string]any, name string) ([]byte, *Error) {
	s, ok := jwk[name].(string)
	if !ok || s == "" {
		return nil, errf(CodeRuntimeData, "a runtime key needs %q as a non-empty base64url string", name)
	}
	b, err := strictb64.URL.DecodeString(name, s)
	if err != nil {
		return nil, errf(CodeRuntimeData, "%s", err)
	}
	return b, nil
}

// b64Int decodes the JWK member name as a big-endian integer without leading zeros.
func b64Int(jwk map[string]any, name string) (*big.Int, *Error) {
	b, err := b64Bytes(jwk, name)
	if err != nil {
		return nil, err
	}
	if b[0] == 0 {
		return nil, errf(CodeRuntimeData, "%q of a runtime key has a leading zero byte", name)
	}
	return new(big.Int).SetBytes(b), nil
}
