package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request bodies are read whole (the server caps their size first) and decoded strictly:
// exactly one JSON object, valid UTF-8, nothing but whitespace after it, no unknown members,
// and no member name twice in any object (SECURITY-NOTES A12, I5). encoding/json alone keeps
// the last of two members of the same name, so {"kty":"RSA","kty":"EC"} would be an EC key
// to Coffer and perhaps an RSA key to a proxy or log that reads the first; and it matches
// member names to fields case-insensitively, so {"kty":"RSA","KTY":"EC"} is the same
// smuggling. Names are therefore compared as encoding/json matches them: case-folded.

// readBody reads r's body; an over-cap body is ErrRequestTooLarge.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, ErrRequestTooLarge
		}
		return nil, Errorf(http.StatusBadRequest, "BadParameter", "the request body could not be read")
	}
	return b, nil
}

// jsonMediaType is what a JSON body's Content-Type must say (Key Vault's specs consume
// application/json only).
const jsonMediaType = "application/json"

// checkContentType requires a body to be labelled as JSON: one Content-Type header of
// application/json, whose charset, if given, is utf-8 (SECURITY-NOTES I3). A body sent as a
// form, as text or unlabelled is not read as JSON: what a browser form or a proxy's rewrite
// can send is not an API call.
func checkContentType(r *http.Request) error {
	cts := r.Header.Values("Content-Type")
	if len(cts) == 1 {
		if cts[0] == jsonMediaType { // what the SDKs send: no parsing
			return nil
		}
		mt, params, err := mime.ParseMediaType(cts[0])
		if cs, ok := params["charset"]; err == nil && mt == jsonMediaType && (!ok || strings.EqualFold(cs, "utf-8")) {
			return nil
		}
	}
	return Errorf(http.StatusBadRequest, "BadParameter", "the request body must be JSON sent with the header Content-Type: application/json")
}

// readJSONBody reads r's body and, if it is not empty, checks its Content-Type.
func readJSONBody(r *http.Request) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if skipSpace(body, 0) < len(body) {
		if err := checkContentType(r); err != nil {
			return nil, err
		}
	}
	return body, nil
}

func badBody(problem string) error {
	return Errorf(http.StatusBadRequest, "BadParameter", "the request body is not a valid JSON object of the expected shape: "+problem)
}

// decodeJSONBytes decodes body, which must be one JSON object, into v (see above).
func decodeJSONBytes(body []byte, v any) error {
	i := skipSpace(body, 0)
	switch {
	case i == len(body):
		return badBody("the body is empty")
	case body[i] != '{':
		return badBody("the body is not a JSON object")
	case !utf8.Valid(body):
		return badBody("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badBody(jsonProblem(err))
	}
	if skipSpace(body, int(dec.InputOffset())) != len(body) {
		return Errorf(http.StatusBadRequest, "BadParameter", "the request body has data after the JSON object")
	}
	if duplicateMember(body) {
		return badBody("a member name appears twice in one object (names are compared without regard to case)")
	}
	return nil
}

// duplicateMember reports whether an object in body — valid JSON — has two members whose
// names are equal after case folding. The keys of a tags object are a map's, not fields:
// encoding/json keeps them as they are, so "Env" and "env" are two tags and only an exact
// repeat is a duplicate.
func duplicateMember(body []byte) bool {
	type frame struct {
		obj, wantKey bool
		exact        bool   // a map's keys (tags): compared as they are
		member       string // the member whose value is being read
		names        map[string]struct{}
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // io.EOF: the end; anything else cannot happen on valid JSON
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				exact := false
				if top >= 0 && stack[top].obj {
					stack[top].wantKey = true // this value ends the member
					exact = d == '{' && stack[top].member == foldedMapMember
				}
				stack = append(stack, frame{obj: d == '{', wantKey: d == '{', exact: exact})
			default:
				stack = stack[:top]
			}
			continue
		}
		if top < 0 || !stack[top].obj {
			continue
		}
		f := &stack[top]
		if !f.wantKey {
			f.wantKey = true
			continue
		}
		f.wantKey = false
		name := tok.(string)
		if !f.exact {
			name = strings.Map(foldRune, name)
		}
		f.member = name
		if f.names == nil {
			f.names = map[string]struct{}{}
		}
		if _, dup := f.names[name]; dup {
			return true
		}
		f.names[name] = struct{}{}
	}
}

// foldedMapMember is "tags" case-folded: the member whose object is a map (of tags).
var foldedMapMember = strings.Map(foldRune, "tags")

// foldRune maps r to the smallest rune of its case-folding orbit, so that two names map to
// the same string exactly when encoding/json would match them to the same field.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}
