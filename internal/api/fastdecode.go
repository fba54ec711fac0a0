package api

import (
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/strictb64"
)

// The request bodies of key operations ({"alg":"ES256","value":"<base64url>"} and the
// like) are read by a small parser when they are the plain case — an object of distinct,
// known, lowercase members whose values are printable-ASCII strings without escapes — and
// by DecodeJSON's encoding/json decoder otherwise, which also writes every error. The
// reflective decoder was ~4% of an ES256 signature's server CPU. FuzzFlatBodies holds
// the parser to encoding/json: whatever it accepts, the decoder accepts with the same
// result.

// decodeSign reads SignParams.
func decodeSign(r *http.Request, p *keys.SignParams) error {
	return decodeKeyOp(r, p, &p.Algorithm, b64Member{"value", &p.Value})
}

// decodeVerify reads VerifyParams.
func decodeVerify(r *http.Request, p *keys.VerifyParams) error {
	return decodeKeyOp(r, p, &p.Algorithm, b64Member{"digest", &p.Digest}, b64Member{"value", &p.Signature})
}

// decodeOperation reads the OperationParams of encrypt, decrypt, wrapKey and unwrapKey.
func decodeOperation(r *http.Request, p *keys.OperationParams) error {
	return decodeKeyOp(r, p, &p.Algorithm, b64Member{"value", &p.Value}, b64Member{"iv", &p.IV},
		b64Member{"aad", &p.AAD}, b64Member{"tag", &p.Tag})
}

// b64Member is a base64url member of a key operation's body and the field it fills.
type b64Member struct {
	name string
	dst  *provider.B64
}

// decodeKeyOp reads a body of "alg" and base64url members into v (the struct that alg and
// the members' fields belong to): with parseFlat when it can, otherwise it zeroes v and
// decodes as DecodeJSON does.
func decodeKeyOp(r *http.Request, v any, alg *string, members ...b64Member) error {
	body, err := readJSONBody(r)
	if err != nil {
		return err
	}
	if parseFlat(body, func(name string, q []byte) bool {
		if name == "alg" {
			*alg = string(q[1 : len(q)-1])
			return true
		}
		for _, m := range members {
			if m.name == name {
				return m.dst.UnmarshalJSON(q) == nil
			}
		}
		return false
	}) {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero()
	if err := decodeJSONBytes(body, v); err != nil {
		return nameBadB64Member(body, err, members)
	}
	return nil
}

// nameBadB64Member returns, for a body that did not decode, an error naming the first of
// members that breaks the base64 rule (encoding/json cannot say which member's
// UnmarshalJSON failed), or err when none does. Only refused bodies get here.
func nameBadB64Member(body []byte, err error, members []b64Member) error {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return err
	}
	for _, m := range members {
		if q, ok := raw[m.name]; ok && string(q) != "null" {
			if _, bad := strictb64.URL.DecodeJSON(m.name, q); bad != nil {
				return badBody(bad.Error())
			}
		}
	}
	return err
}

// parseFlat parses b as a JSON object whose members have distinct names of lowercase
// letters and string values of printable ASCII without escapes, calling set with each
// name and its quoted value. It returns false, having perhaps called set, for anything
// else, or when set does.
func parseFlat(b []byte, set func(name string, quoted []byte) bool) bool {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	var seen [8]string
	n := 0
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false
		}
		start := i + 1
		for i = start; i < len(b) && b[i] >= 'a' && b[i] <= 'z'; i++ {
		}
		if i == len(b) || b[i] != '"' || i == start || n == len(seen) {
			return false
		}
		name := string(b[start:i])
		for _, s := range seen[:n] {
			if s == name {
				return false
			}
		}
		seen[n] = name
		n++
		i = skipSpace(b, i+1)
		if i == len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i == len(b) || b[i] != '"' {
			return false
		}
		vstart := i
		for i++; i < len(b) && b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\'; i++ {
		}
		if i == len(b) || b[i] != '"' {
			return false
		}
		if !set(name, b[vstart:i+1]) {
			return false
		}
		i = skipSpace(b, i+1)
		if i == len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// skipSpace skips JSON whitespace from i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
