// Package strictb64 is Coffer's one rule for base64 in untrusted input (SECURITY-NOTES I6,
// docs/COMPAT.md "Base64"): every byte field of a request body, a blob or a token that
// Coffer did not write itself is decoded here, so that one string has exactly one meaning.
//
// The rule: the characters of the field's alphabet and nothing else — no whitespace (which
// encoding/base64 silently skips, '\r' and '\n' even in Strict mode), no escapes, no other
// alphabet's '+' '/' or '-' '_' — padding exactly as the format says (none for base64url,
// '=' to a multiple of 4 for standard base64), and canonical trailing bits. Key Vault's
// binary fields are unpadded base64url (URL); the few fields whose format is padded standard
// base64 (x5c certificates) use Std. An empty string decodes to no bytes: fields that need
// bytes check the length themselves.
//
// Errors are *Error, match ErrInvalid, name the field (when the caller gives one) and never repeat the
// input.
package strictb64

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// ErrInvalid matches (errors.Is) every decoding error.
var ErrInvalid = errors.New("invalid base64")

// Error is a decoding error: its message says what is wrong with which field.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Encoding is one strict base64 format.
type Encoding struct {
	name   string // "base64url" or "standard base64", for messages
	url    bool   // '-' '_' (true) or '+' '/' (false)
	padded bool   // '=' to a multiple of 4 characters required (true) or refused (false)
	enc    *base64.Encoding
}

var (
	// URL is unpadded base64url (RFC 4648 §5): the rule for Key Vault's binary fields.
	URL = &Encoding{name: "base64url", url: true, enc: base64.RawURLEncoding.Strict()}
	// Std is padded standard base64 (RFC 4648 §4): x5c certificates and the like.
	Std = &Encoding{name: "standard base64", padded: true, enc: base64.StdEncoding.Strict()}
	// PaddedURL is base64url with '=' padding, for the one header (a client assertion's
	// thumbprint) some clients send so.
	PaddedURL = &Encoding{name: "padded base64url", url: true, padded: true, enc: base64.URLEncoding.Strict()}
	// RawStd is standard base64 without padding.
	RawStd = &Encoding{name: "unpadded standard base64", enc: base64.RawStdEncoding.Strict()}
)

// DecodeString decodes s, the value of field (a name for messages; "" for none).
func (e *Encoding) DecodeString(field, s string) ([]byte, error) {
	if err := check(e, field, s); err != nil {
		return nil, err
	}
	b, err := e.enc.DecodeString(s)
	if err != nil {
		// With the alphabet, padding and length checked, only non-zero trailing bits remain.
		return nil, e.fail(field, "is not canonical (non-zero trailing bits): re-encode the bytes")
	}
	return b, nil
}

// Decode decodes s, the value of field, into a new slice.
func (e *Encoding) Decode(field string, s []byte) ([]byte, error) {
	if err := check(e, field, s); err != nil {
		return nil, err
	}
	out := make([]byte, e.enc.DecodedLen(len(s)))
	n, err := e.enc.Decode(out, s)
	if err != nil {
		return nil, e.fail(field, "is not canonical (non-zero trailing bits): re-encode the bytes")
	}
	return out[:n], nil
}

// DecodeJSON decodes a raw JSON string token (quotes included) holding e's format; a JSON
// escape is refused like any other character outside the alphabet.
func (e *Encoding) DecodeJSON(field string, data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return nil, e.fail(field, "must be a JSON string")
	}
	return e.Decode(field, data[1:len(data)-1])
}

// check applies the rule to s without decoding it.
func check[T string | []byte](e *Encoding, field string, s T) error {
	firstPad := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case e.url && (c == '-' || c == '_'), !e.url && (c == '+' || c == '/'):
		case c == '=':
			if firstPad < 0 {
				firstPad = i
			}
		case e.url && (c == '+' || c == '/'):
			return e.fail(field, "uses the standard alphabet: use '-' and '_' instead of '+' and '/'")
		case !e.url && (c == '-' || c == '_'):
			return e.fail(field, "uses the base64url alphabet: use '+' and '/' instead of '-' and '_'")
		default:
			return e.fail(field, "contains a character outside its alphabet (whitespace, line breaks and escapes are not allowed)")
		}
	}
	body := len(s)
	if firstPad >= 0 {
		if !e.padded {
			return e.fail(field, "is padded: send it without '='")
		}
		for j := firstPad; j < len(s); j++ {
			if s[j] != '=' || len(s)-firstPad > 2 {
				return e.fail(field, "has '=' before its end: padding is only its last one or two characters")
			}
		}
		body = firstPad
	}
	switch {
	case e.padded && len(s)%4 != 0:
		return e.fail(field, "is not padded with '=' to a multiple of 4 characters")
	case body%4 == 1:
		return e.fail(field, "has an impossible length (one character too many or too few)")
	}
	return nil
}

// fail returns the error for field's value.
func (e *Encoding) fail(field, what string) error {
	if field == "" {
		return &Error{e.name + " value " + what}
	}
	return &Error{fmt.Sprintf("%s field %q %s", e.name, field, what)}
}
