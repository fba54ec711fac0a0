package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// jsonRequest is a POST of body labelled application/json.
func jsonRequest(body string) *http.Request {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestDecodeJSONContentType: a body is read as JSON only when it says it is JSON; an empty
// body needs no label (it is refused for being empty, or taken as "no options").
func TestDecodeJSONContentType(t *testing.T) {
	var v struct {
		Kty string `json:"kty"`
	}
	for _, tc := range []struct {
		name string
		ct   []string
		body string
		ok   bool
	}{
		{"ok/json", []string{"application/json"}, `{"kty":"EC"}`, true},
		{"ok/charset", []string{"application/json; charset=utf-8"}, `{"kty":"EC"}`, true},
		{"ok/charset-case", []string{"Application/JSON;charset=UTF-8"}, `{"kty":"EC"}`, true},
		{"fail/missing", nil, `{"kty":"EC"}`, false},
		{"fail/form", []string{"application/x-www-form-urlencoded"}, `{"kty":"EC"}`, false},
		{"fail/text", []string{"text/plain"}, `{"kty":"EC"}`, false},
		{"fail/utf-16", []string{"application/json; charset=utf-16"}, `{"kty":"EC"}`, false},
		{"fail/two-headers", []string{"application/json", "text/plain"}, `{"kty":"EC"}`, false},
		{"fail/list", []string{"application/json, text/plain"}, `{"kty":"EC"}`, false},
		{"fail/json-suffix", []string{"application/jsonx"}, `{"kty":"EC"}`, false},
		{"fail/empty-body-still-empty", nil, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			for _, ct := range tc.ct {
				r.Header.Add("Content-Type", ct)
			}
			err := DecodeJSON(r, &v)
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeJSON with Content-Type %q = %v; want ok=%v", tc.ct, err, tc.ok)
			}
			if err != nil {
				if e := Resolve(err); e.Status != 400 || e.Code != "BadParameter" {
					t.Errorf("DecodeJSON = %d %s; want 400 BadParameter", e.Status, e.Code)
				}
			}
		})
	}
}

// TestDecodeJSONStrict pins what DecodeJSON refuses beyond encoding/json: anything but one
// object, invalid UTF-8, data after the object, and a member name twice in one object
// (compared case-insensitively, as encoding/json matches names to fields).
func TestDecodeJSONStrict(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string `json:"b"`
	}
	type body struct {
		Kty  string            `json:"kty"`
		Tags map[string]string `json:"tags"`
		In   *inner            `json:"in"`
		List []inner           `json:"list"`
	}
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"ok/object", `{"kty":"EC","tags":{"a":"1","b":"2"},"in":{"a":"x","b":"y"}}`, true},
		{"ok/same-name-in-other-objects", `{"kty":"EC","in":{"a":"x"},"list":[{"a":"1"},{"a":"2","b":"3"}],"tags":{"kty":"a"}}`, true},
		{"ok/whitespace-around", " \n{\"kty\":\"EC\"}\r\n\t", true},
		{"ok/case-insensitive-match", `{"KTY":"EC"}`, true},
		{"fail/duplicate", `{"kty":"RSA","kty":"EC"}`, false},
		{"fail/duplicate-same-value", `{"kty":"EC","kty":"EC"}`, false},
		{"fail/duplicate-case-folded", `{"kty":"RSA","KTY":"EC"}`, false},
		{"fail/duplicate-kelvin-sign", "{\"kty\":\"RSA\",\"\u212aty\":\"EC\"}", false},
		{"fail/duplicate-nested", `{"in":{"a":"x","a":"y"}}`, false},
		{"fail/duplicate-in-array", `{"list":[{"a":"1"},{"b":"1","b":"2"}]}`, false},
		{"fail/duplicate-tag", `{"tags":{"env":"test","env":"prod"}}`, false},
		{"ok/tags-differing-in-case", `{"tags":{"Env":"test","env":"prod"}}`, true},
		{"fail/tags-member-twice-in-case", `{"tags":{"a":"1"},"Tags":{"b":"2"}}`, false},
		{"fail/case-duplicate-inside-tag-less-object", `{"in":{"Env":"test","env":"prod"}}`, false},
		{"fail/duplicate-after-nested-value", `{"in":{"a":"x"},"list":[],"in":null}`, false},
		{"fail/null", `null`, false},
		{"fail/array", `[{"kty":"EC"}]`, false},
		{"fail/string", `"x"`, false},
		{"fail/empty", ``, false},
		{"fail/blank", "  \n", false},
		{"fail/trailing-brace", `{"kty":"EC"}}`, false},
		{"fail/trailing-bracket", `{"kty":"EC"}]`, false},
		{"fail/trailing-object", `{"kty":"EC"} {}`, false},
		{"fail/trailing-nul", "{\"kty\":\"EC\"}\x00", false},
		{"fail/bom", "\xef\xbb\xbf{\"kty\":\"EC\"}", false},
		{"fail/invalid-utf8-value", "{\"kty\":\"EC\",\"tags\":{\"a\":\"\xff\"}}", false},
		{"fail/invalid-utf8-name", "{\"tags\":{\"\xc3\":\"a\"}}", false},
		{"fail/unknown-member", `{"kty":"EC","crv":"P-256"}`, false},
		{"fail/deep", strings.Repeat(`{"in":`, 20000) + "null" + strings.Repeat("}", 20000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			err := DecodeJSON(jsonRequest(tc.body), &v)
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeJSON(%.80q) = %v; want ok=%v", tc.body, err, tc.ok)
			}
			if err != nil {
				if e := Resolve(err); e.Status != 400 || e.Code != "BadParameter" {
					t.Errorf("DecodeJSON(%.80q) = %d %s; want 400 BadParameter", tc.body, e.Status, e.Code)
				}
			}
		})
	}
}
