package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// The one base64 rule of Coffer's wire format (SECURITY-NOTES I6, package strictb64):
// unpadded base64url (RFC 4648 §5) with canonical trailing bits, written as a JSON string
// with no escapes. Padding, '+', '/', whitespace (which encoding/base64 would silently
// skip), escapes and non-zero trailing bits are refused. b64 only encodes.
var b64 = base64.RawURLEncoding

// MarshalText writes b as unpadded base64url; encoding/json quotes it. (A MarshalJSON
// would be re-validated and compacted by encoding/json on every call: that was 9% of a
// key read's handler CPU, for the same bytes.)
func (b B64) MarshalText() ([]byte, error) {
	return b64.AppendEncode(make([]byte, 0, b64.EncodedLen(len(b))), b), nil
}

// UnmarshalJSON reads a strict unpadded base64url JSON string (see b64). null leaves b
// unchanged, as encoding/json does for other types. Errors wrap ErrInvalidParameter and
// never repeat the input.
func (b *B64) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	v, err := decodeB64(data)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// decodeB64 decodes a raw JSON string token holding strict base64url (strictb64.URL).
func decodeB64(data []byte) (B64, error) {
	v, err := strictb64.URL.DecodeJSON("", data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParameter, err)
	}
	return v, nil
}

// maxJWKDepth bounds the nesting of a JWK document (unknown members may hold objects).
const maxJWKDepth = 16

// jwkB64Members maps the byte members of a JWK to their fields.
var jwkB64Members = map[string]func(*JWK) *B64{
	"n": func(j *JWK) *B64 { return &j.N }, "e": func(j *JWK) *B64 { return &j.E },
	"d": func(j *JWK) *B64 { return &j.D }, "dp": func(j *JWK) *B64 { return &j.DP },
	"dq": func(j *JWK) *B64 { return &j.DQ }, "qi": func(j *JWK) *B64 { return &j.QI },
	"p": func(j *JWK) *B64 { return &j.P }, "q": func(j *JWK) *B64 { return &j.Q },
	"k": func(j *JWK) *B64 { return &j.K }, "key_hsm": func(j *JWK) *B64 { return &j.T },
	"x": func(j *JWK) *B64 { return &j.X }, "y": func(j *JWK) *B64 { return &j.Y },
}

// knownKty lists the key types a JWK may carry.
var knownKty = map[KeyType]bool{RSA: true, EC: true, Oct: true, RSAHSM: true, ECHSM: true, OctHSM: true}

// ParseJWK parses a JSON Web Key strictly: the document must be one UTF-8 JSON object with
// no duplicate member names at any depth (matched after unescaping and case-sensitively,
// unlike encoding/json), no trailing data, a known kty, and strict base64url byte members
// (I6). Members Coffer does not use (alg, use, x5c, ...) are ignored, except "oth"
// (multi-prime RSA), which is refused. A null member counts as absent. Whether the members
// fit the kty, and the key itself, are checked by the provider's Import.
//
// Every error wraps ErrInvalidKey (a byte member's encoding error wraps ErrInvalidParameter
// too) and names at most a known member, never a value.
func ParseJWK(b []byte) (*JWK, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: JWK is not valid UTF-8", ErrInvalidKey)
	}
	if err := checkJSONObject(b); err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return nil, fmt.Errorf("%w: JWK is not a JSON object", ErrInvalidKey)
	}
	j := &JWK{}
	for name, raw := range members {
		if string(raw) == "null" {
			continue
		}
		if field, ok := jwkB64Members[name]; ok {
			v, err := decodeB64(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: member %q: %w", ErrInvalidKey, name, err)
			}
			*field(j) = v
			continue
		}
		var err error
		switch name {
		case "kty":
			var s string
			if s, err = jsonString(raw); err == nil {
				j.Kty = KeyType(s)
			}
		case "crv":
			var s string
			if s, err = jsonString(raw); err == nil {
				j.Crv = Curve(s)
			}
		case "kid":
			j.KID, err = jsonString(raw)
		case "key_ops":
			if err = json.Unmarshal(raw, &j.KeyOps); err != nil || j.KeyOps == nil {
				err = errors.New("not an array of strings")
			}
		case "oth":
			return nil, fmt.Errorf("%w: multi-prime RSA keys (member \"oth\") are not supported", ErrInvalidKey)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrInvalidKey, name, err)
		}
	}
	if j.Kty == "" {
		return nil, fmt.Errorf("%w: JWK has no kty", ErrInvalidKey)
	}
	if !knownKty[j.Kty] {
		return nil, fmt.Errorf("%w: unknown kty: use RSA, EC, oct, RSA-HSM, EC-HSM or oct-HSM", ErrInvalidKey)
	}
	return j, nil
}

// jsonString decodes a JSON string member.
func jsonString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("not a string")
	}
	return s, nil
}

// checkJSONObject checks that b is exactly one JSON object with no duplicate member names at
// any depth and nesting of at most maxJWKDepth.
func checkJSONObject(b []byte) error {
	type frame struct {
		obj, wantName bool
		seen          map[string]struct{}
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: JWK is not a JSON object", ErrInvalidKey)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantName = true
		}
	}
	started := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || !started {
				return fmt.Errorf("%w: JWK is truncated", ErrInvalidKey)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: JWK is not valid JSON", ErrInvalidKey)
		}
		if started && len(stack) == 0 {
			return fmt.Errorf("%w: JWK has data after the object", ErrInvalidKey)
		}
		started = true
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantName {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name, _ := tok.(string)
			if _, dup := stack[n-1].seen[name]; dup {
				if n == 1 && isJWKName(name) {
					return fmt.Errorf("%w: member %q appears twice", ErrInvalidKey, name)
				}
				return fmt.Errorf("%w: a member name appears twice", ErrInvalidKey)
			}
			stack[n-1].seen[name] = struct{}{}
			stack[n-1].wantName = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxJWKDepth {
				return fmt.Errorf("%w: JWK is nested too deeply", ErrInvalidKey)
			}
			f := frame{obj: tok == json.Delim('{'), wantName: true}
			if f.obj {
				f.seen = make(map[string]struct{})
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// isJWKName reports whether name is a JWK member this package reads.
func isJWKName(name string) bool {
	switch name {
	case "kty", "crv", "kid", "key_ops", "oth":
		return true
	}
	_, ok := jwkB64Members[name]
	return ok
}

// UnmarshalJSON parses j with ParseJWK, so a JWK inside any request body gets the same
// strict rules. null leaves j unchanged.
func (j *JWK) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	parsed, err := ParseJWK(b)
	if err != nil {
		return err
	}
	*j = *parsed
	return nil
}

// Private reports whether j carries private key material (d, p, q, dp, dq, qi or k).
func (j *JWK) Private() bool {
	return len(j.D) > 0 || len(j.P) > 0 || len(j.Q) > 0 || len(j.DP) > 0 ||
		len(j.DQ) > 0 || len(j.QI) > 0 || len(j.K) > 0
}

// String describes j without any key bytes, so a JWK that reaches a log by mistake does
// not carry its private members there (SECURITY-NOTES C9).
func (j JWK) String() string {
	return fmt.Sprintf("JWK{kty:%s crv:%s kid:%.80q private:%t}", j.Kty, j.Crv, j.KID, j.Private())
}

// GoString is String, for %#v.
func (j JWK) GoString() string { return j.String() }
