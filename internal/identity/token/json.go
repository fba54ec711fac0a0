package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Limits on the JSON of a header, a payload or a JWK.
const (
	maxJSONDepth = 8  // nesting of objects and arrays
	maxMembers   = 64 // members of one object
)

// JSON shape errors, from checkJSONObject. They are plain errors (ParseJWKS reports them
// too); Validate wraps them in ErrInvalidToken.
var (
	errUTF8            = errors.New("JSON is not valid UTF-8")
	errNotObject       = errors.New("JSON is not an object")
	errJSON            = errors.New("malformed JSON")
	errJSONDepth       = errors.New("JSON nested too deeply")
	errJSONMembers     = errors.New("JSON object has too many members")
	errDuplicateMember = errors.New("duplicate JSON member name")
	errCaseVariant     = errors.New("JSON member name differs from a known name only in case")
)

// invalidJSON wraps a JSON shape error in ErrInvalidToken.
func invalidJSON(err error) error { return fmt.Errorf("%w: %w", ErrInvalidToken, err) }

// checkJSONObject reports whether b is one JSON object whose objects have at most
// maxMembers members with pairwise distinct names (compared ignoring ASCII case, after
// unescaping), nest at most maxJSONDepth deep, and whose top-level names that match one of
// known ignoring case match it exactly. encoding/json keeps the last of duplicate names and
// matches struct fields case-insensitively; this closes both gaps. It does not fully
// validate numbers and literals: json.Unmarshal, which always runs next, does.
func checkJSONObject(b []byte, known []string) error {
	if !utf8.Valid(b) {
		return errUTF8
	}
	s := jsonScanner{b: b, known: known}
	s.space()
	if s.i >= len(b) || b[s.i] != '{' {
		return errNotObject
	}
	if err := s.value(0); err != nil {
		return err
	}
	s.space()
	if s.i != len(b) {
		return errJSON
	}
	return nil
}

type jsonScanner struct {
	b     []byte
	i     int
	known []string
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *jsonScanner) value(depth int) error {
	s.space()
	if s.i >= len(s.b) {
		return errJSON
	}
	switch s.b[s.i] {
	case '{':
		return s.object(depth + 1)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, err := s.str()
		return err
	}
	start := s.i
	for s.i < len(s.b) && !isJSONDelim(s.b[s.i]) {
		s.i++
	}
	if s.i == start {
		return errJSON
	}
	return nil
}

func (s *jsonScanner) object(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	s.i++ // '{'
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var buf [16][]byte
	names := buf[:0]
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errJSON
		}
		name, err := s.str()
		if err != nil {
			return err
		}
		if len(names) == maxMembers {
			return errJSONMembers
		}
		for _, n := range names {
			if bytes.EqualFold(n, name) {
				return errDuplicateMember
			}
		}
		if depth == 1 && hasUpper(name) {
			for _, k := range s.known {
				if bytes.EqualFold(name, []byte(k)) {
					return errCaseVariant
				}
			}
		}
		names = append(names, name)
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSON
		}
		s.i++
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errJSON
		}
	}
}

func (s *jsonScanner) array(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	s.i++ // '['
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errJSON
		}
	}
}

// str consumes a JSON string at s.i and returns its value: a sub-slice of the input when it
// has no escapes, else the unescaped bytes.
func (s *jsonScanner) str() ([]byte, error) {
	start := s.i
	s.i++ // opening quote
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			lit := s.b[start:s.i]
			if !escaped {
				return lit[1 : len(lit)-1], nil
			}
			var v string
			if err := json.Unmarshal(lit, &v); err != nil {
				return nil, errJSON
			}
			return []byte(v), nil
		}
		s.i++
	}
	return nil, errJSON
}

// isJSONDelim reports whether c ends a number or literal.
func isJSONDelim(c byte) bool {
	switch c {
	case ',', ':', '{', '}', '[', ']', '"', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}
