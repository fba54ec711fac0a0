package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrInvalidToken is the one error Validate returns, wrapped with a short reason for logs.
// Callers must answer every ErrInvalidToken the same way (401), whatever the reason.
var ErrInvalidToken = errors.New("invalid token")

// invalid returns ErrInvalidToken wrapped with a fixed reason. Reasons never contain
// attacker-supplied text, so they can be logged as they are.
func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// Limits applied before any parsing (SECURITY-NOTES A11, A8).
const (
	// MaxTokenLen is the longest compact JWS Validate looks at, in bytes.
	MaxTokenLen = 16 << 10
	// MaxHeaderLen is the longest encoded protected header Validate decodes, in bytes.
	MaxHeaderLen = 4 << 10
	maxKIDLen    = 256
)

// The reasons Validate reports: fixed values, so that most rejections allocate nothing.
var (
	errTooLong         = invalid("token too long")
	errHeaderTooLong   = invalid("header too long")
	errCharset         = invalid("character outside the base64url alphabet")
	errSegments        = invalid("not a compact JWS with three segments")
	errEmptySegment    = invalid("empty header or signature")
	errBase64          = invalid("segment is not strict unpadded base64url")
	errAlgMissing      = invalid("alg missing")
	errKIDMissing      = invalid("kid missing")
	errKIDTooLong      = invalid("kid too long")
	errForbiddenHeader = invalid("forbidden header parameter (crit, b64, zip, enc, jku, x5u, jwk, x5c)")
	errTyp             = invalid("typ is not JWT")
	errUnknownKID      = invalid("unknown kid")
	errAlgNotAllowed   = invalid("alg not allowed for this key")
	errSignature       = invalid("bad signature")
)

// header is the protected header. Only these members are read; see parseHeader.
type header struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
	Typ string `json:"typ"`

	// Present means rejected.
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
	Zip  json.RawMessage `json:"zip"`
	Enc  json.RawMessage `json:"enc"`
	JKU  json.RawMessage `json:"jku"`
	X5U  json.RawMessage `json:"x5u"`
	JWK  json.RawMessage `json:"jwk"`
	X5C  json.RawMessage `json:"x5c"`
}

var headerNames = []string{"alg", "kid", "typ", "crit", "b64", "zip", "enc", "jku", "x5u", "jwk", "x5c"}

// verifyJWS checks raw as a compact JWS signed by a key of keys and returns its payload,
// still unparsed. Everything up to the signature check happens here, in this order: size,
// alphabet, shape, header, key lookup, algorithm allowed for the key, signature.
func verifyJWS(raw string, keys KeySet) ([]byte, error) {
	if len(raw) > MaxTokenLen {
		return nil, errTooLong
	}
	for i := 0; i < len(raw); i++ {
		if !isB64URLOrDot(raw[i]) {
			return nil, errCharset
		}
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 {
		return nil, errSegments
	}
	if len(h) > MaxHeaderLen {
		return nil, errHeaderTooLong
	}
	if h == "" || s == "" {
		return nil, errEmptySegment
	}
	hb, err := decodeSegment(h)
	if err != nil {
		return nil, err
	}
	hdr, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	key, ok := keys.Lookup(hdr.KID)
	if !ok {
		return nil, errUnknownKID
	}
	if !allowed(key.Algs, hdr.Alg) {
		return nil, errAlgNotAllowed
	}
	sig, err := decodeSegment(s)
	if err != nil {
		return nil, err
	}
	if !verifySignature(hdr.Alg, key.Public, raw[:len(h)+1+len(p)], sig) {
		return nil, errSignature
	}
	return decodeSegment(p)
}

func isB64URLOrDot(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

var b64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes unpadded base64url, rejecting non-zero trailing bits. The caller has
// already rejected every byte outside the alphabet, so '=', '+', '/' and whitespace (which
// encoding/base64 would skip) never get here.
func decodeSegment(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, errBase64
	}
	return b, nil
}

func parseHeader(b []byte) (*header, error) {
	if err := checkJSONObject(b, headerNames); err != nil {
		return nil, invalidJSON(err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, invalidJSON(errJSON)
	}
	switch {
	case h.Crit != nil || h.B64 != nil || h.Zip != nil || h.Enc != nil ||
		h.JKU != nil || h.X5U != nil || h.JWK != nil || h.X5C != nil:
		return nil, errForbiddenHeader
	case h.Alg == "":
		return nil, errAlgMissing
	case h.KID == "":
		return nil, errKIDMissing
	case len(h.KID) > maxKIDLen:
		return nil, errKIDTooLong
	}
	switch strings.ToLower(h.Typ) {
	case "", "jwt", "at+jwt", "application/at+jwt":
	default:
		return nil, errTyp
	}
	return &h, nil
}

func allowed(algs []string, alg string) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

// verifySignature checks sig over input with pub for alg. It knows only asymmetric
// algorithms, so a KeySet that (wrongly) allows HS256 or none for a key still gets nothing
// accepted. ECDSA signatures must be raw r‖s of exactly twice the field size (RFC 7518
// §3.4); DER is rejected by length.
func verifySignature(alg string, pub crypto.PublicKey, input string, sig []byte) bool {
	switch alg {
	case "ES256":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() || len(sig) != 64 {
			return false
		}
		d := sha256.Sum256([]byte(input))
		return verifyECDSA(k, d[:], sig)
	case "ES384":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P384() || len(sig) != 96 {
			return false
		}
		d := sha512.Sum384([]byte(input))
		return verifyECDSA(k, d[:], sig)
	case "RS256", "PS256":
		k, ok := pub.(*rsa.PublicKey)
		if !ok || len(sig) != k.Size() {
			return false
		}
		d := sha256.Sum256([]byte(input))
		if alg == "RS256" {
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
		}
		return rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}) == nil
	}
	return false
}

func verifyECDSA(k *ecdsa.PublicKey, d, sig []byte) bool {
	n := len(sig) / 2
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(k, d, r, s)
}
