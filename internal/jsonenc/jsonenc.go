// Package jsonenc appends JSON exactly as encoding/json writes it (HTML-safe string
// escaping, invalid UTF-8 as U+FFFD, map keys sorted, omitempty as encoding/json reads it)
// without reflection. It serves the few answers and records written on every request (key
// and secret reads, key operations, audit events), where the reflective encoder was a
// visible share of the server's CPU. Each user holds its encoder byte for byte to
// encoding/json's output in a test.
package jsonenc

import (
	"encoding/base64"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Object appends one JSON object's members. Keys are written as given: callers pass
// constant member names that need no escaping.
type Object struct {
	B    []byte
	more bool
}

// Begin starts an object at the end of dst.
func Begin(dst []byte) Object { return Object{B: append(dst, '{')} }

// End closes the object and returns the buffer.
func (o *Object) End() []byte { return append(o.B, '}') }

// Key writes the separator and "name": for a member whose value the caller appends to o.B.
func (o *Object) Key(name string) {
	if o.more {
		o.B = append(o.B, ',')
	}
	o.more = true
	o.B = append(o.B, '"')
	o.B = append(o.B, name...)
	o.B = append(o.B, '"', ':')
}

// String writes "name":"v", or nothing if omitEmpty and v is "".
func (o *Object) String(name, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	o.Key(name)
	o.B = String(o.B, v)
}

// Base64URL writes "name":"<unpadded base64url of v>" unless v is empty (omitempty of a
// []byte type whose MarshalText is base64url).
func (o *Object) Base64URL(name string, v []byte) {
	if len(v) == 0 {
		return
	}
	o.Key(name)
	o.B = append(o.B, '"')
	o.B = base64.RawURLEncoding.AppendEncode(o.B, v)
	o.B = append(o.B, '"')
}

// Int64 writes "name":v unless v is nil (omitempty of a pointer).
func (o *Object) Int64(name string, v *int64) {
	if v != nil {
		o.Key(name)
		o.B = strconv.AppendInt(o.B, *v, 10)
	}
}

// Int writes "name":v unless v is nil (omitempty of a pointer).
func (o *Object) Int(name string, v *int) {
	if v != nil {
		o.Key(name)
		o.B = strconv.AppendInt(o.B, int64(*v), 10)
	}
}

// Bool writes "name":v unless v is nil (omitempty of a pointer).
func (o *Object) Bool(name string, v *bool) {
	if v != nil {
		o.Key(name)
		o.B = strconv.AppendBool(o.B, *v)
	}
}

// True writes "name":true if v (omitempty of a bool).
func (o *Object) True(name string, v bool) {
	if v {
		o.Key(name)
		o.B = append(o.B, "true"...)
	}
}

// Strings writes "name":["a",...] unless v is empty (omitempty of a slice).
func (o *Object) Strings(name string, v []string) {
	if len(v) == 0 {
		return
	}
	o.Key(name)
	o.B = append(o.B, '[')
	for i, s := range v {
		if i > 0 {
			o.B = append(o.B, ',')
		}
		o.B = String(o.B, s)
	}
	o.B = append(o.B, ']')
}

// StringMap writes "name":{...} with the keys sorted, unless m is empty (omitempty of a
// map).
func (o *Object) StringMap(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	o.Key(name)
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o.B = append(o.B, '{')
	for i, k := range keys {
		if i > 0 {
			o.B = append(o.B, ',')
		}
		o.B = String(o.B, k)
		o.B = append(o.B, ':')
		o.B = String(o.B, m[k])
	}
	o.B = append(o.B, '}')
}

// String appends s as a JSON string, escaped as encoding/json escapes by default (HTML
// characters too, invalid UTF-8 as U+FFFD, U+2028 and U+2029 as \u escapes).
func String(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
