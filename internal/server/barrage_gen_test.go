package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
)

// The barrage's generators: the rows of SECURITY-NOTES §2 × mutations. Each family builds
// its operations as data (dpOp for the data plane) and the generic mutations below apply to
// all of them; op-specific invalid bodies (the I7–I10 rows) come with each operation.
//
// Left out on purpose, because Key Vault (or HTTP) accepts them and a 2xx is right:
//   - unknown query parameters, and X-Forwarded-Host/X-Forwarded-For (ignored, T2);
//   - a trailing slash or an empty segment in a data-plane path (routed canonically, I2);
//   - names and versions that differ only in letter case (Key Vault names are
//     case-insensitive), "+5" or "05" as maxresults (strconv reads them as 5);
//   - member names in another letter case ({"KTY":"EC"}): Key Vault's JSON binding, like
//     encoding/json, matches member names case-insensitively; and tags whose names differ
//     only in case ({"env":"b","ENV":"c"}): a map's keys, two tags to encoding/json;
//   - null for an optional member (it means "absent"), 0 for key_size and public_exponent
//     (the defaults), {} for the bodies whose members are all optional;
//   - a body on an operation that takes none (rotate, backup, recover, purge, delete, get):
//     Key Vault does not read it;
//   - the auth scheme in another case ("bearer"), more than one space after it, or
//     whitespace after the token: RFC 7235 allows them (1*SP, case-insensitive scheme),
//     RFC 9110 strips a header value's outer whitespace, and the operator token is
//     compared trimmed;
//   - HEAD, which net/http answers as GET without a body;
//   - verify with a signature that is well-formed but wrong: {"value":false} is the answer;
//   - AES-CBC (without padding) decrypt of any whole number of blocks: there is no
//     integrity check to fail;
//   - an explicit empty value to encrypt (the member is there; empty plaintexts encrypt);
//   - nbf and exp in a certificate's attributes (create, update, policy): they are its
//     X.509 validity and are not taken from the request; their types are still checked;
//     likewise an issuer's cty with Self, and an empty issuer name (Self, the default);
//   - an empty body, {} or {"types":[]} for an attestation provider: the documented default
//     policy (docs/ATTESTATION.md); an empty provider in an issuer PATCH: "unchanged";
//   - {} as a key rotation policy: lifetimeActions is optional in keys.json;
//   - the nil UUID as an id: it is a well-formed UUID, so PUT may create it;
//   - an audit query whose since is after its until: an empty page;
//   - POST /v1/sys/unseal with a well-formed share while unsealed: like Vault, the seal
//     status is the answer (nothing is unsealed twice); a malformed share is refused;
//   - obsolete line folding in a raw HTTP/1.1 header: RFC 9112 lets a server replace it
//     with a space, which net/http does; HTTP/9.9 in a raw request line: net/http answers
//     505, as RFC 9110 asks.

const apiV = "api-version=7.6"

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
func jstr(s string) string { j, _ := json.Marshal(s); return string(j) }

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ---- JSON body templates and their mutations ----

type jkind int

const (
	jStr  jkind = iota // free text
	jEnum              // a string from a fixed set (alg, kty, crv, …)
	jB64               // base64url bytes
	jInt
	jBool
	jObj
	jArr
	jMap // map[string]string (tags)
)

// jfield is one member of a body template: its raw JSON value and kind. req marks the
// members the operation cannot do without; alt is another valid value (for duplicates).
type jfield struct {
	name, raw string
	kind      jkind
	req       bool
	alt       string
}

type jtmpl []jfield

func (t jtmpl) render(f func(i int, fl jfield) string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	first := true
	for i, fl := range t {
		m := f(i, fl)
		if m == "" {
			continue
		}
		if !first {
			sb.WriteByte(',')
		}
		first = false
		sb.WriteString(m)
	}
	sb.WriteByte('}')
	return sb.String()
}

func member(name, raw string) string { return jstr(name) + ":" + raw }

func (t jtmpl) json() string {
	return t.render(func(_ int, f jfield) string { return member(f.name, f.raw) })
}

// with replaces member i's value.
func (t jtmpl) with(i int, raw string) string {
	return t.render(func(j int, f jfield) string {
		if j == i {
			return member(f.name, raw)
		}
		return member(f.name, f.raw)
	})
}

func (t jtmpl) without(i int) string {
	return t.render(func(j int, f jfield) string {
		if j == i {
			return ""
		}
		return member(f.name, f.raw)
	})
}

func (t jtmpl) plus(name, raw string) string {
	j := t.json()
	if j == "{}" {
		return "{" + member(name, raw) + "}"
	}
	return j[:len(j)-1] + "," + member(name, raw) + "}"
}

// dup writes member i twice, the second time with raw.
func (t jtmpl) dup(i int, raw string) string {
	return t.render(func(j int, f jfield) string {
		if j == i {
			return member(f.name, f.raw) + "," + member(f.name, raw)
		}
		return member(f.name, f.raw)
	})
}

func (t jtmpl) hasRequired() bool {
	for _, f := range t {
		if f.req {
			return true
		}
	}
	return false
}

// wrongValues are values of another JSON type than kind, or not JSON at all for it.
func wrongValues(k jkind) []string {
	switch k {
	case jStr:
		return []string{`1`, `true`, `[]`, `{}`, `1.5`, `["x"]`}
	case jEnum:
		return []string{`1`, `true`, `[]`, `{}`, `1.5`, `["x"]`, `"x"`, `""`, `"\u0000"`, "\"\xff\xfe\"", `"` + strings.Repeat("A", 300) + `"`}
	case jB64:
		return []string{`1`, `true`, `[]`, `{}`, `"+/+/"`, `"AA=="`, `"A"`, `"a b"`, `"!!!!"`, `"AB"`, `"\u0000"`, `"AAAA\n"`, "\"\xff\"", `"%41"`}
	case jInt:
		return []string{`"1"`, `true`, `[]`, `{}`, `1.5`, `1e400`, `-1e400`, `9223372036854775808`, `-9223372036854775809`, `1e3`, `"NaN"`, `[1]`}
	case jBool:
		return []string{`"true"`, `1`, `0`, `[]`, `{}`, `"yes"`}
	case jObj:
		return []string{`"x"`, `1`, `[]`, `true`, `[{}]`, `1e400`}
	case jArr:
		return []string{`"x"`, `1`, `{}`, `true`, `[1]`, `[[]]`, `[{}]`}
	case jMap:
		return []string{`"x"`, `1`, `[]`, `true`, `{"a":1}`, `{"a":{}}`, `{"a":[]}`, `{"a":true}`}
	}
	return nil
}

// structural are bodies that are not one JSON object, or not JSON.
var structural = []string{
	"", " ", "{", "}", "[", "]", "[]", "[{}]", "null", "true", "0", `"x"`, "{,}", `{"a"}`, `{"a":}`, `{:1}`,
	`{'a':1}`, `{a:1}`, "\xef\xbb\xbf{}", "{}{}", "{}x", `{"a":1,}`, `{"a":1 "b":2}`, "/*c*/{}", `{"a":NaN}`,
	`{"a":Infinity}`, `{"a":-Infinity}`, `{"a":01}`, `{"a":.5}`, `{"a":1.}`, `{"a":"\x41"}`, `{"a":"\u12"}`,
	`{"a":"unterminated}`, "{\"a\":\"\t\"}", "{\"\xff\":1}", "\x00", "{\x00}", "\u3000{}",
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
}

// bodyMutations returns the invalid bodies derived from t, each with its class.
func bodyMutations(t jtmpl) [][2]string {
	var out [][2]string
	add := func(class, body string) { out = append(out, [2]string{class, body}) }
	valid := t.json()
	for _, s := range structural {
		add("json/malformed", s)
	}
	if t.hasRequired() {
		add("json/missing", "{}")
	}
	// Every prefix is invalid JSON: at most 40 of them, evenly spread.
	n := len(valid) - 1
	step := max(1, n/40)
	for i := 1; i <= n; i += step {
		add("json/truncated", valid[:i])
	}
	add("json/truncated", valid[:n])
	for _, s := range []string{"x", "}", "{}", " {}", ",", "\x00", "]", "\n{}", "null"} {
		add("json/trailing", valid+s)
	}
	add("json/bom", "\xef\xbb\xbf"+valid)
	for i, f := range t {
		for _, w := range wrongValues(f.kind) {
			add("json/wrong-type", t.with(i, w))
		}
		// Duplicate member names are refused outright (SECURITY-NOTES A12, I5): the same
		// value twice, another valid value second (the smuggling case), and the name in
		// another case (encoding/json would match it to the same field).
		add("json/duplicate", t.dup(i, f.raw))
		if f.alt != "" {
			add("json/duplicate", t.dup(i, f.alt))
			add("json/duplicate", t.render(func(j int, g jfield) string {
				if j == i {
					return member(g.name, g.raw) + "," + member(strings.ToUpper(g.name), f.alt)
				}
				return member(g.name, g.raw)
			}))
		}
		if f.kind == jStr || f.kind == jEnum {
			// I5: invalid UTF-8 inside a string.
			add("json/invalid-utf8", t.with(i, "\"a\xc3\x28b\""))
		}
		if f.req {
			add("json/missing", t.without(i))
		}
	}
	for _, u := range []string{`"zzz":1`, `"__proto__":{}`, `"constructor":{"prototype":{}}`, `"":1`, `"x-ms-unknown":"a"`} {
		name, raw, _ := strings.Cut(u, ":")
		var nm string
		json.Unmarshal([]byte(name), &nm)
		add("json/unknown-member", t.plus(nm, raw))
	}
	return out
}

// Attributes and tags that Key Vault refuses (SECURITY-NOTES I10).
var badAttributes = append(append([]string(nil), badAttributeRanges...), badAttributeTypes...)

// badAttributeRanges are well-typed nbf and exp values outside Key Vault's rules.
var badAttributeRanges = []string{
	`{"exp":1000,"nbf":2000}`, `{"exp":1000,"nbf":1000}`, `{"nbf":-1}`, `{"exp":-5}`, `{"exp":253402300800}`, `{"nbf":null,"exp":-1}`,
}

// badAttributeTypes are attributes of the wrong type, or unknown.
var badAttributeTypes = []string{
	`{"exp":1e20}`, `{"exp":9223372036854775808}`, `{"exp":"tomorrow"}`, `{"enabled":"true"}`, `{"enabled":1}`,
	`{"exp":1.5}`, `{"created":"x"}`, `{"recoveryLevel":1}`, `{"fly":true}`,
}

func badTags() []string {
	var many []string
	for i := 0; i < 16; i++ {
		many = append(many, fmt.Sprintf(`"t%d":"v"`, i))
	}
	return []string{
		"{" + strings.Join(many, ",") + "}",
		`{"a":` + jstr(strings.Repeat("v", 257)) + `}`,
		`{` + jstr(strings.Repeat("n", 513)) + `:"v"}`,
		`{"":"v"}`,
		`{"a":"b","a":"c"}`,
		"{\"a\":\"\xff\"}",
	}
}

// ---- the data-plane operations ----

type dpOp struct {
	family, op string
	method     string
	host       string
	tok        string // a valid token
	noRole     string // a token of the dev tenant without any role (403)
	wrongRole  string // a token whose role lacks the action (403)
	other      string // a valid token for the other kind of store (401: wrong audience)
	tmpl       string // the path, with {name} and {version}
	name       string
	version    string
	query      string // extra query (after api-version)
	body       jtmpl  // nil: the operation takes no body
	semantic   []string
	list       bool
	certList   bool
	maxBody    int // the route's body cap
	// otherKind marks an operation sent to the kind of store that has no such route
	// (secrets on a pool, /rng on a vault): 404 comes before authorisation there.
	otherKind bool
}

func (o *dpOp) path(name, version string) string {
	return strings.ReplaceAll(strings.ReplaceAll(o.tmpl, "{name}", name), "{version}", version)
}

func (o *dpOp) q(extra string) string {
	q := apiV
	if o.query != "" {
		q += "&" + o.query
	}
	if extra != "" {
		q += "&" + extra
	}
	return q
}

// dpBase is the operation's valid request; every case changes one thing in it.
func (b *barrage) dpBase(o *dpOp, class string) *bcase {
	c := &bcase{family: o.family, op: o.op, class: class, method: o.method, host: o.host,
		path: o.path(o.name, o.version), query: o.q("")}
	c.hdr = []hdrKV{{"Authorization", "Bearer " + o.tok}}
	if o.body != nil {
		c.body = []byte(o.body.json())
		c.hdr = append(c.hdr, hdrKV{"Content-Type", "application/json"})
	}
	return c
}

func (c *bcase) setHeader(k string, vs ...string) *bcase {
	var h []hdrKV
	for _, kv := range c.hdr {
		if !strings.EqualFold(kv.k, k) {
			h = append(h, kv)
		}
	}
	for _, v := range vs {
		h = append(h, hdrKV{k, v})
	}
	c.hdr = h
	return c
}

// badAPIVersions are api-version queries Key Vault refuses (I2); the first five go to every
// operation.
var badAPIVersions = []string{
	"", "api-version=", "api-version=7.7", "api-version=7.6&api-version=7.5", "api-version=2016-10-01",
	"api-version=8.0", "api-version=7.3-preview", "api-version=2026-04-02", "api-version=2025-07-01-preview",
	"api-version=latest", "api-version=7.6%20", "api-version=%207.6", "api-version=7.6&api-version=7.6", "API-VERSION=7.6",
	"api_version=7.6", "api-version%5B%5D=7.6", "api-version=7.6%00", "api-version=" + strings.Repeat("7", 1000),
	"api-version=7", "api-version=07.6", "api-version=7.60", "api-version=-1", "api-version=7.6;x", "api-version",
	"apiversion=7.6", "api-version=7%2E6%2E0", "api-version=7.5-preview.1", "api-version=2019-09-01", "api-version=9999-99-99",
	"api-version=7.6.0", "api-version=v7.6", "api-version=7.6.1", "api-version=%E2%80%8B7.6", "api-version=7,6", "api-version=7.6,7.5",
	"api-version=2026-01-01", "api-version=2026-04-01-preview", "api-version=null", "api-version=%00", "api-version=7.6&API-Version=7.6&api-version=",
	"api-version=" + strings.Repeat("%41", 300),
}

// nameCore is how many of badNames (the last ones) every operation gets.
const nameCore = 8

// badNames are object names outside ^[0-9a-zA-Z-]{1,127}$, escaped for the path (I1); the
// last nameCore are sent to every operation, the others in turn.
func badNames(existing string) []string {
	return []string{
		"a.b", "a%20b", "a%2fb", "..%2f", "%2e%2e%2f", "%252e%252e", "%00", "a%00b", "%5C", "a%5Cb",
		"%c0%af", "%EF%BD%8B%EF%BD%85%EF%BD%99", "k%D0%B5y", strings.Repeat("b", 1000),
		"a;b", "a%3Bb", "a@b", "a:b", "a*b", "a$b", "a'b", "a%22b", "%3Cscript%3E", "a%0D%0Ab", "a%09b", "~a", "a+b",
		"a=b", "a,b", "a!b", "a(b)", "%FF", "a%7Cb", "a%60b", "a%5Bb%5D", "a%7Bb%7D", "a%25b", "%2E", "a%2e",
		"%E2%80%8Bk", "k%CC%81", "%F0%9F%94%91", "%C0%80", "%ED%A0%80", "a%2F..%2F..%2Fetc%2Fpasswd", "..%5C..%5C",
		existing + "%2frotationpolicy", existing + "%2Fpolicy", existing + "%2Fpending",
		existing + "%00", existing + "%20", existing + "%2E%2E", existing + strings.Repeat("a", 128-len(existing)), existing + "%E2%80%8B",
		"%20" + existing, existing + "%3Bx=1", existing + "%0A",
		// nameCore: every operation.
		"a_b", "%2e%2e", "a%2Fb", strings.Repeat("a", 128), existing + "%2Fversions", existing + "%2F..%2F" + existing, existing + "_", "%2E%2E%2F" + existing,
	}
}

// badVersions are object versions that are not 32 lower-case hexadecimal digits (I1).
func badVersions(v string) []string {
	return []string{
		"xyz", v[:31], v + "a", strings.Repeat("g", 32), "%2e%2e", v + "%00", "-1", "latest", strings.Repeat("a", 1000),
		v + "%2Fsign", v[:16] + "%2F" + v[16:], "%20" + v[1:], v + "%2e", "current", v[:16] + "-" + v[16:31],
		"%7B" + v[:30] + "%7D", strings.Repeat("0", 32),
	}
}

// hostile methods; HEAD is left out (net/http answers it as GET).
var methods = []string{"GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO", "MKCOL"}

// routed reports whether (method, path) is a route of a router (after the data plane's
// canonicalisation): such a request is another operation, not a bad method.
func routed(muxHandler func(method, path string) string, method, path string) bool {
	p := muxHandler(method, path)
	return p != "" && p != "/"
}

func (b *barrage) dataRoute(method, path string) string {
	if p := strings.TrimPrefix(path, "/certificates/issuers"); p != path {
		path = "/certificateissuers" + p
	}
	r := httptest.NewRequest(method, "https://dev.localhost"+path, nil)
	_, pat := b.dataMux.Handler(r)
	return pat
}

func (b *barrage) bareRoute(method, path string) string {
	r := httptest.NewRequest(method, "https://localhost"+path, nil)
	_, pat := b.bareMux.Handler(r)
	return pat
}

// opTarget is the number of cases genOp aims at per operation (at least 100 must be
// distinct): every operation gets its own mutations (versions, methods, hosts, paging,
// bodies) and a core of the shared ones (credentials, api-versions, names); the rest of the
// shared ones are spread over the operations in turn, as many as each needs to reach it.
const opTarget = 115

// rotating returns n items of list starting at the operation's turn, wrapping around.
func rotating[T any](list []T, n, turn int) []T {
	n = min(n, len(list))
	out := make([]T, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, list[(turn*7+i)%len(list)])
	}
	return out
}

// genOp applies the generic mutations to one data-plane operation.
func (b *barrage) genOp(o *dpOp) {
	b.turn++
	var own []*bcase
	mk := func(class string) *bcase {
		c := b.dpBase(o, class)
		own = append(own, c)
		return c
	}
	// I1: versions.
	if strings.Contains(o.tmpl, "{version}") {
		for _, v := range badVersions(o.version) {
			mk("version").path = o.path(o.name, v)
		}
	}
	// Methods the route does not serve (and that name no other route).
	for _, m := range methods {
		if p := o.path(o.name, o.version); m != o.method && !routed(b.dataRoute, m, p) {
			mk("method").method = m
		}
	}
	// T2: hosts. SNI ≠ Host is 421; a store that does not exist, another tenant's vault, the
	// other kind of store and another port are 401.
	for _, h := range []string{"evil.example", "127.0.0.1:" + b.port, "bkv.localhost:" + b.port, "localhost:" + b.port, "dev.localhost:1"} {
		mk("host").setHeader("Host", h)
	}
	for _, h := range []string{"nosuch.localhost:" + b.port, "bkv.localhost:" + b.port, "nosuch.managedhsm.localhost:" + b.port} {
		mk("host").host = h
	}
	if o.list {
		for _, q := range badListQueries(o.certList, o.op == "versions") {
			mk("query").query = o.q(q)
		}
	}
	if o.body != nil {
		// I5, I6: bodies.
		for _, m := range bodyMutations(o.body) {
			mk(m[0]).body = []byte(m[1])
		}
		// I7–I10: valid JSON, invalid meaning.
		for _, sem := range o.semantic {
			mk("semantic").body = []byte(sem)
		}
		// I3: content types and sizes.
		for _, ct := range [][]string{{"text/plain"}, {"application/x-www-form-urlencoded"}, {"multipart/form-data; boundary=x"},
			{"application/xml"}, {"application/octet-stream"}, {}, {"application/json; charset=utf-16"}, {"application/jsonx"},
			{"json"}, {"*/*"}, {"application/json", "text/plain"}, {"text/html; charset=utf-8"}, {"application/json, text/plain"}} {
			mk("content-type").setHeader("Content-Type", ct...)
		}
		limit := o.maxBody
		if limit == 0 {
			limit = 1 << 20
		}
		for _, n := range []int{limit + 1, limit + 64<<10} {
			pad := n - len(`{"zzz":""}`)
			mk("size").body = []byte(`{"zzz":"` + strings.Repeat("A", pad) + `"}`)
		}
	}

	// The shared mutations: a core for every operation, the rest in turn up to opTarget.
	var coreAuth, extraAuth []authVar
	for _, a := range b.authVariants(o) {
		if a.core {
			coreAuth = append(coreAuth, a)
		} else {
			extraAuth = append(extraAuth, a)
		}
	}
	coreAPI, extraAPI := badAPIVersions[:5], badAPIVersions[5:]
	hasName := strings.Contains(o.tmpl, "{name}")
	var coreNames, extraNames []string
	if hasName {
		all := badNames(o.name)
		coreNames, extraNames = all[len(all)-nameCore:], all[:len(all)-nameCore]
	}
	fill := max(0, opTarget-len(own)-len(coreAuth)-len(coreAPI)-len(coreNames))
	nNames, nAuth := 0, min(len(extraAuth), fill*6/10)
	if hasName {
		nNames, nAuth = min(len(extraNames), fill/2), min(len(extraAuth), fill*3/10)
	}
	nAPI := min(len(extraAPI), fill-nNames-nAuth)
	if short := fill - nNames - nAuth - nAPI; short > 0 { // a list ran out: the others give more
		nAuth = min(len(extraAuth), nAuth+short)
	}
	// A1–A13, T1, T5, T8: credentials.
	for _, a := range append(coreAuth, rotating(extraAuth, nAuth, b.turn)...) {
		c := mk(a.class)
		c.setHeader("Authorization", a.values...)
		switch {
		case a.class == "auth/none":
			c.want = 401
		case (a.class == "auth/no-role" || a.class == "auth/wrong-role") && !o.otherKind:
			c.want = 403
		}
	}
	// I2: api-version.
	for _, q := range append(append([]string(nil), coreAPI...), rotating(extraAPI, nAPI, b.turn)...) {
		c := mk("api-version")
		c.query = strings.TrimPrefix(strings.TrimPrefix(o.q(""), apiV), "&")
		if q != "" {
			if c.query != "" {
				c.query = q + "&" + c.query
			} else {
				c.query = q
			}
		}
	}
	// I1: names.
	for _, n := range append(append([]string(nil), coreNames...), rotating(extraNames, nNames, b.turn)...) {
		mk("name").path = o.path(n, o.version)
	}
	for _, c := range own {
		b.add(c)
	}
}

// badListQueries are paging parameters Key Vault refuses (maxresults 1–25; skip tokens
// are names, or versions in a version listing).
func badListQueries(cert, versions bool) []string {
	qs := []string{}
	for _, m := range []string{"0", "26", "-1", "abc", "1.5", "1e1", "0x10", "99999999999999999999", "25abc", "%205",
		"5%00", "-0", "%E2%88%9E", "2147483648", "1,2", "%5B1%5D", "NaN", "true", "-2147483649", "100", "5%205", "5x",
		"0.0", "%2B-5", "1e400"} {
		qs = append(qs, "maxresults="+m)
	}
	qs = append(qs, "maxresults=abc&maxresults=5", "maxresults=26&maxresults=1", "maxresults=0&maxresults=0")
	skips := []string{"Garbage!", "x%00", "..%2F..%2Fetc", "%27%20OR%201=1", "eyJ9fQ==", "UPPER", "a_b",
		strings.Repeat("z", 128), "%E2%80%8B", "a%2Fb", "a.b", "%3Cx%3E", strings.Repeat("q", 5000)}
	if versions {
		skips = append(skips, "abc", strings.Repeat("g", 32), strings.Repeat("a", 31))
	}
	for _, s := range skips {
		qs = append(qs, "$skiptoken="+s)
		qs = append(qs, "maxresults=5&$skiptoken="+s)
	}
	if cert {
		for _, v := range []string{"yes", "1", "TRUE", "False", "%20true", "true%00", "null"} {
			qs = append(qs, "includePending="+v)
		}
	}
	return qs
}

// ---- credentials (A and T rows) ----

type authVar struct {
	class  string
	values []string // Authorization header values (none: no header)
	core   bool     // sent to every operation (the others are spread over them)
}

// jwtParts splits a compact JWS and decodes its header.
func jwtParts(tok string) (map[string]any, []string) {
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	json.Unmarshal(hb, &h)
	return h, parts
}

// reheader swaps a token's header for h (the signature stays: it no longer matches).
func reheader(tok string, h map[string]any) string {
	_, parts := jwtParts(tok)
	hb, _ := json.Marshal(h)
	return b64u(hb) + "." + parts[1] + "." + parts[2]
}

// forgedTokens are tokens derived from a valid one (A2–A13).
func forgedTokens(tok string, signingKeyBytes []byte) map[string]string {
	h, parts := jwtParts(tok)
	with := func(k string, v any) string {
		c := map[string]any{}
		for kk, vv := range h {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return reheader(tok, c)
	}
	noneHeader := func(alg string) string {
		hb, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
		return b64u(hb) + "." + parts[1] + "."
	}
	// A3: HS256 keyed with the issuer's public key bytes.
	hsHeader := map[string]any{"alg": "HS256", "typ": "JWT", "kid": h["kid"]}
	hb, _ := json.Marshal(hsHeader)
	mac := hmac.New(sha256.New, signingKeyBytes)
	mac.Write([]byte(b64u(hb) + "." + parts[1]))
	hs := b64u(hb) + "." + parts[1] + "." + b64u(mac.Sum(nil))
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	flipped := append([]byte(nil), sig...)
	if len(flipped) > 0 {
		flipped[0] ^= 1
	}
	return map[string]string{
		"alg-none":         noneHeader("none"),
		"alg-None":         noneHeader("None"),
		"alg-NONE":         noneHeader("NONE"),
		"alg-nOnE":         noneHeader("nOnE"),
		"alg-none-sig":     noneHeader("none") + parts[2],
		"sig-stripped":     parts[0] + "." + parts[1] + ".",
		"sig-flipped":      parts[0] + "." + parts[1] + "." + b64u(flipped),
		"hs256-pubkey":     hs,
		"alg-RS256":        with("alg", "RS256"),
		"alg-ES384":        with("alg", "ES384"),
		"kid-traversal":    with("kid", "../../etc/passwd"),
		"kid-sql":          with("kid", "' OR 1=1 --"),
		"kid-10KB":         with("kid", strings.Repeat("k", 10<<10)),
		"kid-nul":          with("kid", "a\x00b"),
		"kid-unknown":      with("kid", "no-such-kid"),
		"kid-missing":      with("kid", nil),
		"jku":              with("jku", "https://attacker.example/jwks"),
		"x5u":              with("x5u", "https://attacker.example/cert.pem"),
		"jwk-embedded":     with("jwk", map[string]string{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
		"x5c-embedded":     with("x5c", []string{"MIIB"}),
		"crit":             with("crit", []string{"exp-ext"}),
		"b64-false":        with("b64", false),
		"zip":              with("zip", "DEF"),
		"header-array":     "WzFd." + parts[1] + "." + parts[2],
		"header-dup-alg":   b64u([]byte(`{"alg":"ES256","alg":"none"}`)) + "." + parts[1] + ".",
		"header-non-utf8":  b64u([]byte("{\"alg\":\"ES256\xff\"}")) + "." + parts[1] + "." + parts[2],
		"padded":           tok + "==",
		"std-alphabet":     strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
		"whitespace":       parts[0] + ". " + parts[1] + "." + parts[2],
		"trailing-data":    tok + "x",
		"four-segments":    tok + ".e30",
		"jwe-five":         parts[0] + ".." + b64u(randBytes(12)) + "." + parts[1] + "." + b64u(randBytes(16)),
		"json-serialized":  `{"payload":"` + parts[1] + `","signatures":[]}`,
		"10k-dots":         strings.Repeat(".", 10000),
		"5k-segments":      strings.Repeat("a.", 5000) + "a",
		"deep-header":      b64u([]byte(strings.Repeat(`{"a":`, 500)+"1"+strings.Repeat("}", 500))) + "." + parts[1] + "." + parts[2],
		"payload-tampered": tamper(nil, tok),
		"truncated":        tok[:len(tok)-10],
	}
}

func (b *barrage) authVariants(o *dpOp) []authVar {
	tok := o.tok
	vs := []authVar{
		{"auth/none", nil, true},                                               // A1: 401 with the challenge
		{"auth/empty-bearer", []string{"Bearer "}, true},                       // A1
		{"auth/basic", []string{"Basic dXNlcjpwYXNz"}, true},                   // A1
		{"auth/two-headers", []string{"Bearer " + tok, "Bearer " + tok}, true}, // A1
		{"auth/operator-token", []string{"Bearer " + b.op}, true},              // T8: the platform token is no data-plane token
		{"auth/other-audience", []string{"Bearer " + o.other}, true},           // A5
		{"auth/other-tenant", []string{"Bearer " + b.tokB}, true},              // A6, T1
		{"auth/no-role", []string{"Bearer " + o.noRole}, true},                 // T5: 403
		{"auth/bare-scheme", []string{"Bearer"}, false},
		{"auth/pop", []string{"PoP " + tok}, false},
		{"auth/two-headers-mixed", []string{"Bearer " + tok, "Bearer x"}, false},
		{"auth/garbage", []string{"Bearer abc"}, false},
		{"auth/dots", []string{"Bearer a.b.c"}, false},
		{"auth/20KB", []string{"Bearer " + strings.Repeat("a", 20<<10)}, false},
		{"auth/client-secret", []string{"Bearer " + b.secret}, false}, // a client secret is not a token
		{"auth/other-tenant-tampered", []string{"Bearer " + b.tokB + "x"}, false},
	}
	if o.wrongRole != "" {
		vs = append(vs, authVar{"auth/wrong-role", []string{"Bearer " + o.wrongRole}, true}) // T5: 403
	}
	forged := forgedTokens(tok, b.signingKey)
	var names []string
	for n := range forged {
		names = append(names, n)
	}
	slices.Sort(names)
	core := map[string]bool{"alg-none": true, "sig-flipped": true, "hs256-pubkey": true, "payload-tampered": true}
	for _, n := range names {
		vs = append(vs, authVar{"auth/" + n, []string{"Bearer " + forged[n]}, core[n]})
	}
	return vs
}

// ---- keys ----

func (b *barrage) genKeys() {
	V, H := b.vault, b.hsm
	s := b.seeded
	rsaV, ecV, octV := s.rsaVer, s.ecVer, s.octVer
	vault := func(op, method, tmpl, name, version string, body jtmpl) *dpOp {
		return &dpOp{family: "keys", op: op, method: method, host: V, tok: b.tokV, noRole: b.tokNoRole, wrongRole: b.tokSecretsOff,
			other: b.tokH, tmpl: tmpl, name: name, version: version, body: body, maxBody: 64 << 10}
	}
	pool := func(op, method, tmpl, name, version string, body jtmpl) *dpOp {
		return &dpOp{family: "keys", op: op, method: method, host: H, tok: b.tokH, noRole: b.tokNoRoleH,
			other: b.tokV, tmpl: tmpl, name: name, version: version, body: body, maxBody: 64 << 10}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	tags := `{"env":"test"}`
	attrs := `{"enabled":true}`

	// create
	create := vault("create", "POST", "/keys/{name}/create", "bk-new", "", jtmpl{
		{name: "kty", raw: `"RSA"`, kind: jEnum, req: true, alt: `"EC"`},
		{name: "key_size", raw: `2048`, kind: jInt, alt: `3072`},
		{name: "public_exponent", raw: `65537`, kind: jInt},
		{name: "key_ops", raw: `["sign","verify"]`, kind: jArr, alt: `["encrypt"]`},
		{name: "attributes", raw: attrs, kind: jObj},
		{name: "tags", raw: tags, kind: jMap},
	})
	for _, kty := range []string{`"rsa"`, `"DSA"`, `"OKP"`, `"oct"`, `"RSA "`, `" RSA"`, `"RSA\u0000"`, `"EC-P256"`, `"AES"`, `"RSA-HSM-X"`} {
		create.semantic = append(create.semantic, create.body.with(0, kty))
	}
	for _, ks := range []string{`1024`, `1`, `-2048`, `2049`, `8192`, `512`, `65536`, `2047`, `4097`, `16384`} {
		create.semantic = append(create.semantic, create.body.with(1, ks))
	}
	for _, e := range []string{`1`, `3`, `65536`, `-65537`, `4294967297`, `2`, `-1`, `17`} {
		create.semantic = append(create.semantic, create.body.with(2, e))
	}
	for _, ops := range []string{`["fly"]`, `["sign","fly"]`, `[""]`, `["sign\u0000"]`, `["*"]`} {
		create.semantic = append(create.semantic, create.body.with(3, ops))
	}
	for _, a := range badAttributes {
		create.semantic = append(create.semantic, create.body.with(4, a))
	}
	create.semantic = append(create.semantic, create.body.with(4, `{"exportable":true}`)) // exportable needs a release policy
	for _, tg := range badTags() {
		create.semantic = append(create.semantic, create.body.with(5, tg))
	}
	for _, crv := range []string{`"P-224"`, `"secp256r1"`, `"Ed25519"`, `"P-256 "`, `"P256"`, `"X25519"`, `"P-512"`, `1`} {
		create.semantic = append(create.semantic, `{"kty":"EC","crv":`+crv+`}`)
	}
	for _, rp := range []string{`{"data":"!!"}`, `{"data":"` + b64u([]byte("not json")) + `"}`, `{"contentType":"text/plain","data":"` + b64u(skrPolicy("https://a.example", 1)) + `"}`,
		`{"immutable":"yes","data":"e30"}`, `{"data":""}`, `{"data":"e30"}`, `"x"`, `{"data":"` + b64u([]byte(`{"version":"9.9.9","anyOf":[]}`)) + `"}`} {
		create.semantic = append(create.semantic, `{"kty":"EC","attributes":{"exportable":true},"release_policy":`+rp+`}`)
	}

	// import
	rsaJWK := func(k *rsa.PrivateKey, mut func(m map[string]string)) string {
		m := map[string]string{"kty": "RSA", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes()), "d": b64u(k.D.Bytes()),
			"p": b64u(k.Primes[0].Bytes()), "q": b64u(k.Primes[1].Bytes()), "dp": b64u(k.Precomputed.Dp.Bytes()),
			"dq": b64u(k.Precomputed.Dq.Bytes()), "qi": b64u(k.Precomputed.Qinv.Bytes())}
		if mut != nil {
			mut(m)
		}
		j, _ := json.Marshal(m)
		return string(j)
	}
	ecJWK := func(k *ecdsa.PrivateKey, crv string, mut func(m map[string]string)) string {
		size := (k.Curve.Params().BitSize + 7) / 8
		m := map[string]string{"kty": "EC", "crv": crv, "x": b64u(k.X.FillBytes(make([]byte, size))), "y": b64u(k.Y.FillBytes(make([]byte, size))),
			"d": b64u(k.D.FillBytes(make([]byte, size)))}
		if mut != nil {
			mut(m)
		}
		j, _ := json.Marshal(m)
		return string(j)
	}
	imp := vault("import", "PUT", "/keys/{name}", "bk-imp", "", jtmpl{
		{name: "key", raw: rsaJWK(rsaKey, nil), kind: jObj, req: true, alt: ecJWK(ecKey, "P-256", nil)},
		{name: "attributes", raw: attrs, kind: jObj},
		{name: "tags", raw: tags, kind: jMap},
		{name: "Hsm", raw: `false`, kind: jBool},
	})
	imp.maxBody = 256 << 10
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	flip := func(s string) string {
		bs, _ := base64.RawURLEncoding.DecodeString(s)
		bs[len(bs)/2] ^= 0x10
		return b64u(bs)
	}
	p256 := elliptic.P256().Params()
	jwks := []string{
		rsaJWK(rsa1024, nil), // I8: n < 2048
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "AQ" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "Aw" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "AQAA" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "AQAAAAE" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["e"] = "AAEAAQ" }),
		rsaJWK(rsaKey, func(m map[string]string) {
			n := new(big.Int).Set(rsaKey.N)
			n.SetBit(n, 0, 0)
			m["n"] = b64u(n.Bytes())
		}),
		rsaJWK(rsaKey, func(m map[string]string) { m["n"] = b64u(append([]byte{0}, rsaKey.N.Bytes()...)) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["d"] = flip(m["d"]) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["p"] = b64u(other.Primes[0].Bytes()) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["dp"] = flip(m["dp"]) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["dq"] = flip(m["dq"]) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["qi"] = flip(m["qi"]) }),
		rsaJWK(rsaKey, func(m map[string]string) { delete(m, "d") }),
		rsaJWK(rsaKey, func(m map[string]string) { delete(m, "n") }),
		rsaJWK(rsaKey, func(m map[string]string) { m["kty"] = "EC" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["kty"] = "oct" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["kty"] = "RSA-HSM"; m["key_hsm"] = b64u([]byte(`{"garbage":1}`)) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["n"] = "+/+/" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["d"] = m["d"] + "==" }),
		rsaJWK(rsaKey, func(m map[string]string) { m["d"] = b64u([]byte{0}) }),
		rsaJWK(rsaKey, func(m map[string]string) { m["q"] = m["p"] }),
		strings.Replace(rsaJWK(rsaKey, nil), `"kty"`, `"oth":[{"r":"AQ","d":"AQ","t":"AQ"}],"kty"`, 1), // multi-prime
		ecJWK(ecKey, "P-256", func(m map[string]string) {
			y := new(big.Int).Add(ecKey.Y, big.NewInt(1))
			m["y"] = b64u(y.FillBytes(make([]byte, 32)))
		}), // I7: off the curve
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["x"], m["y"] = b64u(make([]byte, 32)), b64u(make([]byte, 32)) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["x"] = b64u(append([]byte{0}, ecKey.X.FillBytes(make([]byte, 32))...)) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["x"] = b64u(p256.P.Bytes()) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["x"] = b64u(ecKey.X.FillBytes(make([]byte, 32))[1:]) }),
		ecJWK(ec384, "P-256", nil), // a P-384 point named P-256
		ecJWK(ecKey, "P-384", nil), // and the other way round
		ecJWK(ecKey, "P-224", nil),
		ecJWK(ecKey, "P-256K", nil), // a P-256 point is not on secp256k1
		ecJWK(ecKey, "secp256k1", nil),
		ecJWK(ecKey, "Ed25519", nil),
		ecJWK(ecKey, "", nil),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["d"] = b64u(make([]byte, 32)) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["d"] = b64u(p256.N.Bytes()) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["d"] = flip(m["d"]) }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { delete(m, "d") }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { delete(m, "y") }),
		ecJWK(ecKey, "P-256", func(m map[string]string) { m["kty"] = "OKP" }),
		`{"kty":"oct","k":"` + b64u(randBytes(16)) + `"}`, // oct into a vault without an HSM (I8)
		`{"kty":"oct","k":"` + b64u(randBytes(17)) + `"}`,
		`{"kty":"oct-HSM","k":"` + b64u(randBytes(33)) + `"}`,
		`{"kty":"RSA"}`, `{"kty":"EC"}`, `{"kty":""}`, `{}`, `{"kty":"RSA","key_ops":["fly"],"n":"AQAB","e":"AQAB"}`,
		`{"kty":"EC-HSM","crv":"P-256","key_hsm":"` + b64u([]byte(`{"schema_version":"1.0.0","header":{"kid":"x","alg":"dir","enc":"CKM_RSA_AES_KEY_WRAP"},"ciphertext":"AAAA"}`)) + `"}`,
	}
	for _, j := range jwks {
		imp.semantic = append(imp.semantic, `{"key":`+j+`}`)
	}
	for _, a := range badAttributes {
		imp.semantic = append(imp.semantic, imp.body.with(1, a))
	}
	for _, tg := range badTags() {
		imp.semantic = append(imp.semantic, imp.body.with(2, tg))
	}
	if !b.hasHSM {
		imp.semantic = append(imp.semantic, imp.body.with(3, `true`)) // an HSM key in a vault without an HSM
	}

	getV := vault("get", "GET", "/keys/{name}/{version}", "bk-rsa", rsaV, nil)
	getL := vault("get", "GET", "/keys/{name}", "bk-ec", "", nil)
	list := vault("list", "GET", "/keys", "", "", nil)
	list.list = true
	versions := vault("versions", "GET", "/keys/{name}/versions", "bk-rsa", "", nil)
	versions.list = true
	update := vault("update", "PATCH", "/keys/{name}/{version}", "bk-ec", ecV, jtmpl{
		{name: "key_ops", raw: `["sign","verify"]`, kind: jArr, alt: `["sign"]`},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj, alt: `{"enabled":false}`},
		{name: "tags", raw: tags, kind: jMap, alt: `{"env":"prod"}`},
	})
	for _, a := range badAttributes {
		update.semantic = append(update.semantic, update.body.with(1, a))
	}
	for _, tg := range badTags() {
		update.semantic = append(update.semantic, update.body.with(2, tg))
	}
	for _, ops := range []string{`["fly"]`, `["sign",1]`, `["encrypt","fly"]`, `[""]`} {
		update.semantic = append(update.semantic, update.body.with(0, ops))
	}
	update.semantic = append(update.semantic, `{"attributes":{"exportable":true}}`, // exportable cannot be switched on (T7)
		`{"release_policy":{"data":"!!"}}`, `{"release_policy":{"data":""}}`, `{"release_policy":"x"}`, `{"kty":"RSA"}`, `{"key":{}}`)
	updateLatest := vault("update", "PATCH", "/keys/{name}", "bk-rsa", "", update.body)
	updateLatest.semantic = update.semantic
	del := vault("delete", "DELETE", "/keys/{name}", "bk-ec", "", nil)
	delList := vault("deleted-list", "GET", "/deletedkeys", "", "", nil)
	delList.list = true
	delGet := vault("deleted-get", "GET", "/deletedkeys/{name}", "bk-del", "", nil)
	recover := vault("recover", "POST", "/deletedkeys/{name}/recover", "bk-del", "", nil)
	purge := vault("purge", "DELETE", "/deletedkeys/{name}", "bk-del", "", nil)
	backup := vault("backup", "POST", "/keys/{name}/backup", "bk-ec", "", nil)
	restore := vault("restore", "POST", "/keys/restore", "", "", jtmpl{{name: "value", raw: jstr(s.keyBackup), kind: jB64, req: true, alt: jstr(s.secretBackup)}})
	restore.maxBody = 1 << 20
	restore.semantic = b.restoreBodies(s.keyBackup, s.secretBackup, s.certBackup)
	rotate := vault("rotate", "POST", "/keys/{name}/rotate", "bk-ec", "", nil)
	polGet := vault("rotationpolicy-get", "GET", "/keys/{name}/rotationpolicy", "bk-rsa", "", nil)
	polPut := vault("rotationpolicy-put", "PUT", "/keys/{name}/rotationpolicy", "bk-ec", "", jtmpl{
		{name: "lifetimeActions", raw: `[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}]`, kind: jArr,
			alt: `[{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}}]`},
		{name: "attributes", raw: `{"expiryTime":"P1Y"}`, kind: jObj, alt: `{"expiryTime":"P2Y"}`},
	})
	la := func(trigger, action string) string {
		return `{"lifetimeActions":[{"trigger":` + trigger + `,"action":{"type":"` + action + `"}}],"attributes":{"expiryTime":"P1Y"}}`
	}
	for _, d := range []string{"P1D", "P6D", "P", "PT", "1D", "P-1D", "P0D", "P1000000000Y", "PT1H", "P1W2", "P1Y2M3DT", "x", "", "P90D ", "p90d", "P90.5D"} {
		polPut.semantic = append(polPut.semantic, la(`{"timeAfterCreate":"`+d+`"}`, "Rotate"))
	}
	polPut.semantic = append(polPut.semantic,
		la(`{"timeAfterCreate":"P90D","timeBeforeExpiry":"P30D"}`, "Rotate"),
		la(`{}`, "Rotate"), la(`{"timeAfterCreate":"P90D"}`, "Explode"), la(`{"timeAfterCreate":"P90D"}`, "Notify"),
		la(`{"timeAfterCreate":"P90D"}`, ""), la(`{"timeBeforeExpiry":"P400D"}`, "Rotate"),
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}},{"trigger":{"timeAfterCreate":"P80D"},"action":{"type":"Rotate"}}]}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}},{"trigger":{"timeBeforeExpiry":"P30D"},"action":{"type":"Notify"}},{"trigger":{"timeBeforeExpiry":"P20D"},"action":{"type":"Notify"}}]}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P27D"}}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"x"}}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P60D"}}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":"Rotate"}]}`,
		`{"lifetimeActions":[{"trigger":"P90D","action":{"type":"Rotate"}}]}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":90},"action":{"type":"Rotate"}}]}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"},"extra":1}]}`,
		`{"lifetimeActions":[{}]}`, `{"lifetimeActions":[null]}`,
	)

	// Key operations on bk-rsa (RSA-2048), bk-ec (P-256) and the pool's hk-oct (AES-256).
	rsaOp := func(op, suffix string, body jtmpl) *dpOp {
		return vault(op, "POST", "/keys/{name}/{version}/"+suffix, "bk-rsa", rsaV, body)
	}
	sign := func(alg string, digest []byte) string {
		return `{"alg":"` + alg + `","value":"` + b64u(digest) + `"}`
	}
	d32, d48, d64 := randBytes(32), randBytes(48), randBytes(64)
	signOp := vault("sign", "POST", "/keys/{name}/{version}/sign", "bk-ec", ecV, jtmpl{
		{name: "alg", raw: `"ES256"`, kind: jEnum, req: true, alt: `"ES384"`},
		{name: "value", raw: jstr(b64u(d32)), kind: jB64, req: true, alt: jstr(b64u(d48))},
	})
	for _, c := range []struct {
		alg string
		d   []byte
	}{{"ES256", randBytes(31)}, {"ES256", randBytes(33)}, {"ES256", nil}, {"ES256", d64}, {"ES256", randBytes(1000)}, {"ES384", d48},
		{"ES384", d32}, {"ES512", d64}, {"ES256K", d32}, {"RS256", d32}, {"PS256", d32}, {"HS256", d32}, {"EdDSA", d32}, {"none", d32},
		{"", d32}, {"RS1", d32}, {"ES256 ", d32}, {"RSNULL", d32}, {"A256GCM", d32}, {"RSA-OAEP", d32}} {
		signOp.semantic = append(signOp.semantic, sign(c.alg, c.d))
	}
	signRSA := rsaOp("sign", "sign", signOp.body)
	for _, c := range []struct {
		alg string
		d   []byte
	}{{"RS256", randBytes(20)}, {"RS256", randBytes(31)}, {"RS256", d48}, {"RS384", d32}, {"RS512", d48}, {"PS256", randBytes(33)},
		{"PS384", d64}, {"PS512", d32}, {"ES256", d32}, {"RS256", nil}, {"RSNULL", randBytes(300)}, {"PS256", randBytes(4096)}} {
		signRSA.semantic = append(signRSA.semantic, sign(c.alg, c.d))
	}
	verifyOp := vault("verify", "POST", "/keys/{name}/{version}/verify", "bk-ec", ecV, jtmpl{
		{name: "alg", raw: `"ES256"`, kind: jEnum, req: true, alt: `"ES384"`},
		{name: "digest", raw: jstr(b64u(d32)), kind: jB64, req: true, alt: jstr(b64u(d48))},
		{name: "value", raw: jstr(b64u(randBytes(64))), kind: jB64, req: true, alt: jstr(b64u(randBytes(64)))},
	})
	ver := func(alg string, d, sig []byte) string {
		return `{"alg":"` + alg + `","digest":"` + b64u(d) + `","value":"` + b64u(sig) + `"}`
	}
	for _, c := range []struct {
		alg    string
		d, sig []byte
	}{{"ES256", randBytes(31), randBytes(64)}, {"ES256", randBytes(33), randBytes(64)}, {"ES256", nil, randBytes(64)},
		{"ES384", d48, randBytes(96)}, {"ES256K", d32, randBytes(64)}, {"RS256", d32, randBytes(256)}, {"none", d32, randBytes(64)},
		{"", d32, randBytes(64)}, {"HS256", d32, randBytes(32)}, {"ES512", d64, randBytes(132)}, {"ES256", d64, randBytes(64)}} {
		verifyOp.semantic = append(verifyOp.semantic, ver(c.alg, c.d, c.sig))
	}
	opBody := func(alg string, value []byte) jtmpl {
		return jtmpl{{name: "alg", raw: jstr(alg), kind: jEnum, req: true, alt: `"RSA1_5"`}, {name: "value", raw: jstr(b64u(value)), kind: jB64, req: true, alt: jstr(b64u(randBytes(16)))}}
	}
	enc := rsaOp("encrypt", "encrypt", opBody("RSA-OAEP", randBytes(32)))
	dec := rsaOp("decrypt", "decrypt", opBody("RSA-OAEP", randBytes(256)))
	wrap := rsaOp("wrap", "wrapkey", opBody("RSA-OAEP-256", randBytes(32)))
	unwrap := rsaOp("unwrap", "unwrapkey", opBody("RSA-OAEP-256", randBytes(256)))
	op := func(alg string, value []byte, extra ...string) string {
		s := `{"alg":"` + alg + `","value":"` + b64u(value) + `"`
		for i := 0; i+1 < len(extra); i += 2 {
			s += `,"` + extra[i] + `":"` + extra[i+1] + `"`
		}
		return s + "}"
	}
	for _, c := range [][]string{{"RSA-OAEP", "215"}, {"RSA-OAEP", "256"}, {"RSA-OAEP", "1000"}, {"RSA-OAEP-256", "191"}, {"RSA1_5", "246"},
		{"A256GCM", "32"}, {"A128CBC", "32"}, {"RSA-OAEP-512", "32"}, {"", "32"}, {"RSA_OAEP", "32"}, {"ES256", "32"}, {"A256KW", "32"}, {"dir", "32"}} {
		n, _ := strconv.Atoi(c[1])
		enc.semantic = append(enc.semantic, op(c[0], randBytes(n)))
		wrap.semantic = append(wrap.semantic, op(c[0], randBytes(n)))
	}
	wrap.semantic = append(wrap.semantic, op("RSA-OAEP", nil)) // wrapKey needs a key to wrap
	for _, c := range [][]string{{"RSA-OAEP", "255"}, {"RSA-OAEP", "257"}, {"RSA-OAEP", "0"}, {"RSA-OAEP", "1"}, {"RSA-OAEP-256", "256"},
		{"RSA1_5", "256"}, {"RSA1_5", "128"}, {"A256GCM", "256"}, {"", "256"}, {"RSA-OAEP", "512"}, {"ES256", "64"}} {
		n, _ := strconv.Atoi(c[1])
		dec.semantic = append(dec.semantic, op(c[0], randBytes(n)))
		unwrap.semantic = append(unwrap.semantic, op(c[0], randBytes(n)))
	}
	// encrypt with an EC key: the key type does not do it.
	ecEnc := vault("encrypt", "POST", "/keys/{name}/{version}/encrypt", "bk-ec", ecV, opBody("RSA-OAEP", randBytes(16)))
	ecEnc.semantic = []string{op("ECDH-ES", randBytes(16)), op("A256GCM", randBytes(16)), op("ES256", randBytes(32))}
	// AES on the pool (with a PKCS#11 token only).
	aes := func(name, suffix string, body jtmpl) *dpOp {
		return pool(name, "POST", "/keys/{name}/{version}/"+suffix, "hk-oct", octV, body)
	}
	gcmEnc := aes("encrypt", "encrypt", opBody("A256GCM", randBytes(40)))
	gcmEnc.semantic = []string{
		op("A128GCM", randBytes(16)), op("A192GCM", randBytes(16)), op("A256GCM", randBytes(16), "iv", b64u(randBytes(11))),
		op("A256CBC", randBytes(17), "iv", b64u(randBytes(16))), op("A256CBC", randBytes(32), "iv", b64u(randBytes(15))),
		op("A256CBC", randBytes(32)), op("A256CBCPAD", randBytes(32)), op("A256KW", randBytes(32)), op("RSA-OAEP", randBytes(16)),
		op("A256GCM", randBytes(16), "aad", "!!"), op("A256GCM", randBytes(16), "tag", b64u(randBytes(16))),
		op("CKM_AES_KEY_WRAP", randBytes(16)),
	}
	gcmDec := aes("decrypt", "decrypt", jtmpl{{name: "alg", raw: `"A256GCM"`, kind: jEnum, req: true, alt: `"A128GCM"`},
		{name: "value", raw: jstr(b64u(randBytes(32))), kind: jB64, req: true},
		{name: "iv", raw: jstr(b64u(randBytes(12))), kind: jB64, req: true},
		{name: "tag", raw: jstr(b64u(randBytes(16))), kind: jB64, req: true, alt: jstr(b64u(randBytes(16)))}})
	gcmDec.semantic = []string{
		op("A256GCM", randBytes(32), "iv", b64u(randBytes(12))), op("A256GCM", randBytes(32), "iv", b64u(randBytes(11)), "tag", b64u(randBytes(16))),
		op("A256GCM", randBytes(32), "iv", b64u(randBytes(12)), "tag", b64u(randBytes(15))), op("A256CBC", randBytes(33), "iv", b64u(randBytes(16))),
		op("A256CBCPAD", randBytes(32), "iv", b64u(randBytes(16))),
		op("A256CBC", randBytes(32)), op("A128GCM", randBytes(32), "iv", b64u(randBytes(12)), "tag", b64u(randBytes(16))),
	}
	kwWrap := aes("wrap", "wrapkey", opBody("A256KW", randBytes(32)))
	kwWrap.semantic = []string{op("A256KW", randBytes(15)), op("A256KW", randBytes(8)), op("A256KW", nil), op("A128KW", randBytes(32)),
		op("A256GCM", randBytes(32)), op("CKM_AES_KEY_WRAP", randBytes(12)), op("A256KWPAD", randBytes(32)), op("RSA-OAEP", randBytes(32))}
	kwUnwrap := aes("unwrap", "unwrapkey", opBody("A256KW", randBytes(40)))
	kwUnwrap.semantic = []string{op("A256KW", randBytes(23)), op("A256KW", randBytes(8)), op("A256KW", randBytes(16)), op("A256KW", nil),
		op("A128KW", randBytes(40)), op("CKM_AES_KEY_WRAP_PAD", randBytes(33)), op("CKM_AES_KEY_WRAP", randBytes(40))}

	release := vault("release", "POST", "/keys/{name}/release", "bk-exp", "", jtmpl{
		{name: "target", raw: jstr("eyJhbGciOiJub25lIn0.e30."), kind: jStr, req: true, alt: jstr("a.b.c")},
		{name: "nonce", raw: `"abc"`, kind: jStr},
		{name: "enc", raw: `"CKM_RSA_AES_KEY_WRAP"`, kind: jEnum, alt: `"RSA_AES_KEY_WRAP_256"`},
	})
	for _, tgt := range []string{"", "garbage", "a.b.c", b.tokV, forgeNone(nil, b.tokV), strings.Repeat("a", 10000), "a.b.c.d.e", "..", "e30.e30.e30"} {
		release.semantic = append(release.semantic, `{"target":`+jstr(tgt)+`}`)
	}
	for _, e := range []string{`"RSA_AES_KEY_WRAP_512"`, `1`, `""`, `"A256KW"`, `"rsa_aes_key_wrap_256"`} {
		release.semantic = append(release.semantic, `{"target":"a.b.c","enc":`+e+`}`)
	}
	releaseEC := vault("release", "POST", "/keys/{name}/{version}/release", "bk-ec", ecV, release.body) // not exportable
	releaseEC.semantic = []string{`{"target":` + jstr(b.tokV) + `}`}

	rng := pool("random", "POST", "/rng", "", "", jtmpl{{name: "count", raw: `16`, kind: jInt, req: true, alt: `32`}})
	rng.maxBody = 4 << 10
	for _, n := range []string{`0`, `-1`, `129`, `1000`, `4.0`, `null`, `2147483648`, `-2147483649`, `1e2`, `0.5`, `-0`} {
		rng.semantic = append(rng.semantic, `{"count":`+n+`}`)
	}
	rngVault := vault("random", "POST", "/rng", "", "", rng.body) // a vault has no /rng: 404 after authentication
	rngVault.maxBody, rngVault.otherKind = 4<<10, true

	all := []*dpOp{create, imp, getV, getL, list, versions, update, updateLatest, del, delList, delGet, recover, purge, backup,
		restore, rotate, polGet, polPut, signOp, signRSA, verifyOp, enc, dec, wrap, unwrap, ecEnc, release, releaseEC, rng, rngVault}
	if b.hasHSM {
		all = append(all, gcmEnc, gcmDec, kwWrap, kwUnwrap)
	}
	for _, o := range all {
		b.genOp(o)
	}
}

// restoreBodies are backup blobs that must not restore (T4, D8, S4).
func (b *barrage) restoreBodies(own, other1, other2 string) []string {
	raw, _ := base64.RawURLEncoding.DecodeString(own)
	mut := func(f func([]byte) []byte) string {
		c := append([]byte(nil), raw...)
		return `{"value":"` + b64u(f(c)) + `"}`
	}
	return []string{
		`{"value":"` + own + `"}`,                                  // the object exists: 409 (S4: restore does not overwrite)
		`{"value":"` + other1 + `"}`, `{"value":"` + other2 + `"}`, // another kind's blob
		mut(func(c []byte) []byte { c[len(c)/2] ^= 1; return c }),
		mut(func(c []byte) []byte { c[0] ^= 0x80; return c }),
		mut(func(c []byte) []byte { c[len(c)-1] ^= 1; return c }),
		mut(func(c []byte) []byte { return c[:len(c)/2] }),
		mut(func(c []byte) []byte { return c[:len(c)-1] }),
		mut(func(c []byte) []byte { return append(c, 0) }),
		mut(func(c []byte) []byte { return c[1:] }),
		`{"value":"` + b64u(randBytes(100)) + `"}`, `{"value":"` + b64u(randBytes(4096)) + `"}`,
		`{"value":""}`, `{"value":"AA"}`, `{"value":"` + b64u([]byte("{}")) + `"}`, `{"value":"` + b64u([]byte(`{"name":"x"}`)) + `"}`,
	}
}

// ---- secrets ----

func (b *barrage) genSecrets() {
	V := b.vault
	s := b.seeded
	sec := func(op, method, tmpl, name, version string, body jtmpl) *dpOp {
		return &dpOp{family: "secrets", op: op, method: method, host: V, tok: b.tokV, noRole: b.tokNoRole, wrongRole: b.tokCryptoOff,
			other: b.tokH, tmpl: tmpl, name: name, version: version, body: body, maxBody: 256 << 10}
	}
	set := sec("set", "PUT", "/secrets/{name}", "bs-new", "", jtmpl{
		{name: "value", raw: `"hunter2"`, kind: jStr, req: true, alt: `"other"`},
		{name: "contentType", raw: `"text/plain"`, kind: jStr, alt: `"application/json"`},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj, alt: `{"enabled":false}`},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap, alt: `{"env":"prod"}`},
	})
	for _, a := range badAttributes {
		set.semantic = append(set.semantic, set.body.with(2, a))
	}
	for _, tg := range badTags() {
		set.semantic = append(set.semantic, set.body.with(3, tg))
	}
	set.semantic = append(set.semantic,
		set.body.with(0, jstr(strings.Repeat("v", 25*1024+1))), // I3: over 25 KiB
		set.body.with(1, jstr(strings.Repeat("c", 256))),
		set.body.with(0, `null`),
		`{"value":"x","id":1}`, `{"value":"x","kid":"k"}`, `{"value":{"nested":"x"}}`,
	)
	getV := sec("get", "GET", "/secrets/{name}/{version}", "bs-1", s.secretVer, nil)
	getL := sec("get", "GET", "/secrets/{name}", "bs-1", "", nil)
	for _, oct := range []string{"text/plain", "application/x-pkcs12%20", "APPLICATION/X-PKCS12", "application/json", "x", "%00"} {
		for _, o := range []*dpOp{getL, getV} {
			c := b.dpBase(o, "query")
			c.query = apiV + "&outContentType=" + oct
			b.add(c)
		}
	}
	update := sec("update", "PATCH", "/secrets/{name}/{version}", "bs-1", s.secretVer, jtmpl{
		{name: "contentType", raw: `"text/plain"`, kind: jStr, alt: `"text/csv"`},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj, alt: `{"enabled":false}`},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap, alt: `{"env":"prod"}`},
	})
	update.maxBody = 128 << 10
	for _, a := range badAttributes {
		update.semantic = append(update.semantic, update.body.with(1, a))
	}
	for _, tg := range badTags() {
		update.semantic = append(update.semantic, update.body.with(2, tg))
	}
	update.semantic = append(update.semantic, update.body.with(0, jstr(strings.Repeat("c", 256))), `{"value":"new"}`, `{"id":"x"}`)
	updateL := sec("update", "PATCH", "/secrets/{name}", "bs-1", "", update.body)
	updateL.maxBody = 128 << 10
	updateL.semantic = update.semantic
	list := sec("list", "GET", "/secrets", "", "", nil)
	list.list = true
	versions := sec("versions", "GET", "/secrets/{name}/versions", "bs-1", "", nil)
	versions.list = true
	del := sec("delete", "DELETE", "/secrets/{name}", "bs-1", "", nil)
	delList := sec("deleted-list", "GET", "/deletedsecrets", "", "", nil)
	delList.list = true
	delGet := sec("deleted-get", "GET", "/deletedsecrets/{name}", "bs-del", "", nil)
	purge := sec("purge", "DELETE", "/deletedsecrets/{name}", "bs-del", "", nil)
	recover := sec("recover", "POST", "/deletedsecrets/{name}/recover", "bs-del", "", nil)
	backup := sec("backup", "POST", "/secrets/{name}/backup", "bs-1", "", nil)
	restore := sec("restore", "POST", "/secrets/restore", "", "", jtmpl{{name: "value", raw: jstr(s.secretBackup), kind: jB64, req: true, alt: jstr(s.keyBackup)}})
	restore.maxBody = 1 << 20
	restore.semantic = b.restoreBodies(s.secretBackup, s.keyBackup, s.certBackup)
	// Secrets exist in vaults only: the pool answers 404 after authentication.
	poolSet := sec("set", "PUT", "/secrets/{name}", "bs-new", "", set.body)
	poolSet.host, poolSet.tok, poolSet.other, poolSet.noRole, poolSet.wrongRole, poolSet.otherKind = b.hsm, b.tokH, b.tokV, b.tokNoRoleH, "", true
	for _, o := range []*dpOp{set, getV, getL, update, updateL, list, versions, del, delList, delGet, purge, recover, backup, restore, poolSet} {
		b.genOp(o)
	}
}

// ---- certificates ----

func (b *barrage) genCerts() {
	V := b.vault
	s := b.seeded
	cert := func(op, method, tmpl, name, version string, body jtmpl) *dpOp {
		return &dpOp{family: "certificates", op: op, method: method, host: V, tok: b.tokV, noRole: b.tokNoRole, wrongRole: b.tokCryptoOff,
			other: b.tokH, tmpl: tmpl, name: name, version: version, body: body, maxBody: 64 << 10}
	}
	pol := func(keyProps, x509, issuer, extra string) string {
		p := `{"key_props":` + keyProps + `,"secret_props":{"contentType":"application/x-pem-file"},"x509_props":` + x509 + `,"issuer":` + issuer
		if extra != "" {
			p += "," + extra
		}
		return p + "}"
	}
	okKey, okX509, okIssuer := `{"kty":"EC","crv":"P-256","exportable":true,"reuse_key":false}`, `{"subject":"CN=barrage","validity_months":12}`, `{"name":"Self"}`
	okPolicy := pol(okKey, okX509, okIssuer, "")
	var badPolicies []string
	for _, kp := range []string{`{"kty":"DSA"}`, `{"kty":"RSA","key_size":1024}`, `{"kty":"RSA","key_size":2049}`, `{"kty":"EC","crv":"P-224"}`,
		`{"kty":"EC","crv":"secp256r1"}`, `{"kty":"oct","key_size":256}`, `{"kty":"EC","crv":"P-256","exportable":"yes"}`, `{"kty":1}`,
		`{"kty":"RSA","key_size":-2048}`, `{"kty":"EC-HSM","crv":"P-256K","exportable":true}`} {
		badPolicies = append(badPolicies, pol(kp, okX509, okIssuer, ""))
	}
	for _, x := range []string{`{"subject":""}`, `{"subject":"not a DN"}`, `{"subject":"CN=x","validity_months":0}`, `{"subject":"CN=x","validity_months":-1}`,
		`{"subject":"CN=x","validity_months":1201}`, `{"subject":"CN=x","ekus":["1.2.x"]}`, `{"subject":"CN=x","ekus":[""]}`, `{"subject":"CN=x","key_usage":["fly"]}`,
		`{"subject":"CN=x","sans":{"emails":["not-an-email"]}}`, `{"subject":"CN=x","sans":{"ipAddresses":["999.1.1.1"]}}`,
		`{"subject":"CN=x","sans":{"uris":["::not a uri"]}}`, `{"subject":"CN=x","sans":{"dns_names":["a b"]}}`, `{"subject":"CN=` + strings.Repeat("x", 5000) + `"}`,
		`{"subject":"CN=x\u0000y"}`, `{"subject":"CN=x","sans":"x"}`, `{"subject":"CN=a\nO=b"}`} {
		badPolicies = append(badPolicies, pol(okKey, x, okIssuer, ""))
	}
	for _, is := range []string{`{"name":"DigiCert"}`, `{"name":1}`, `"Self"`, `{"name":"nosuch-issuer"}`, `{"name":"a_b"}`, `{"name":"Self","cert_transparency":"yes"}`} {
		badPolicies = append(badPolicies, pol(okKey, okX509, is, ""))
	}
	for _, la := range []string{`"lifetime_actions":[{"trigger":{"lifetime_percentage":0},"action":{"action_type":"AutoRenew"}}]`,
		`"lifetime_actions":[{"trigger":{"lifetime_percentage":100},"action":{"action_type":"AutoRenew"}}]`,
		`"lifetime_actions":[{"trigger":{"days_before_expiry":-1},"action":{"action_type":"AutoRenew"}}]`,
		`"lifetime_actions":[{"trigger":{"lifetime_percentage":50,"days_before_expiry":10},"action":{"action_type":"AutoRenew"}}]`,
		`"lifetime_actions":[{"trigger":{},"action":{"action_type":"AutoRenew"}}]`,
		`"lifetime_actions":[{"trigger":{"lifetime_percentage":50},"action":{"action_type":"Explode"}}]`,
		`"lifetime_actions":"x"`, `"secret_props":{"contentType":"text/plain"}`, `"attributes":{"enabled":"no"}`} {
		badPolicies = append(badPolicies, pol(okKey, okX509, okIssuer, la))
	}
	create := cert("create", "POST", "/certificates/{name}/create", "bc-new", "", jtmpl{
		{name: "policy", raw: okPolicy, kind: jObj, req: true, alt: pol(okKey, `{"subject":"CN=other","validity_months":6}`, okIssuer, "")},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap},
	})
	for _, p := range badPolicies {
		create.semantic = append(create.semantic, `{"policy":`+p+`}`)
	}
	for _, a := range badAttributeTypes { // nbf and exp are the certificate's validity
		create.semantic = append(create.semantic, create.body.with(1, a))
	}
	for _, tg := range badTags() {
		create.semantic = append(create.semantic, create.body.with(2, tg))
	}
	pemCert, _ := ecPEM(b.t, elliptic.P256())
	imp := cert("import", "POST", "/certificates/{name}/import", "bc-imp", "", jtmpl{
		{name: "value", raw: jstr(pemCert), kind: jStr, req: true, alt: jstr(pemCert)},
		{name: "policy", raw: `{"secret_props":{"contentType":"application/x-pem-file"}}`, kind: jObj},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap},
	})
	imp.maxBody = 512 << 10
	certOnly := pemCert[strings.Index(pemCert, "-----BEGIN CERTIFICATE"):]
	keyOnly := pemCert[:strings.Index(pemCert, "-----BEGIN CERTIFICATE")]
	for _, v := range []string{"", "not base64 !!", b64s(randBytes(300)), b64s([]byte("hello")), certOnly, keyOnly,
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", strings.Replace(pemCert, "A", "B", 5),
		b64s([]byte{0x30, 0x82, 0x01, 0x00})} {
		imp.semantic = append(imp.semantic, `{"value":`+jstr(v)+`}`)
	}
	imp.semantic = append(imp.semantic,
		`{"value":`+jstr(b64s(randBytes(500)))+`,"pwd":"x","policy":{"secret_props":{"contentType":"application/x-pkcs12"}}}`,
		`{"value":`+jstr(pemCert)+`,"pwd":1}`,
		`{"value":`+jstr(pemCert)+`,"policy":{"key_props":{"kty":"DSA"}}}`,
		`{"value":`+jstr(pemCert)+`,"policy":{"x509_props":{"subject":"CN=x\u0000y"}}}`,

		`{"value":`+jstr(pemCert)+`,"policy":{"secret_props":{"contentType":"application/x-pkcs12"}}}`,
		`{"value":`+jstr(pemCert)+`,"policy":{"key_props":{"kty":"RSA"}}}`,
	)
	getV := cert("get", "GET", "/certificates/{name}/{version}", "bc-self", s.certVer, nil)
	getL := cert("get", "GET", "/certificates/{name}", "bc-self", "", nil)
	update := cert("update", "PATCH", "/certificates/{name}/{version}", "bc-self", s.certVer, jtmpl{
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj, alt: `{"enabled":false}`},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap, alt: `{"env":"prod"}`},
	})
	for _, a := range badAttributeTypes {
		update.semantic = append(update.semantic, update.body.with(0, a))
	}
	for _, tg := range badTags() {
		update.semantic = append(update.semantic, update.body.with(1, tg))
	}
	for _, p := range badPolicies[:10] {
		update.semantic = append(update.semantic, `{"policy":`+p+`}`)
	}
	updateL := cert("update", "PATCH", "/certificates/{name}", "bc-self", "", update.body)
	updateL.semantic = update.semantic
	list := cert("list", "GET", "/certificates", "", "", nil)
	list.list, list.certList = true, true
	versions := cert("versions", "GET", "/certificates/{name}/versions", "bc-self", "", nil)
	versions.list = true
	polGet := cert("policy-get", "GET", "/certificates/{name}/policy", "bc-self", "", nil)
	polUpd := cert("policy-update", "PATCH", "/certificates/{name}/policy", "bc-self", "", jtmpl{
		{name: "key_props", raw: okKey, kind: jObj, alt: `{"kty":"EC","crv":"P-384"}`},
		{name: "x509_props", raw: okX509, kind: jObj, alt: `{"subject":"CN=other"}`},
		{name: "issuer", raw: okIssuer, kind: jObj},
	})
	polUpd.semantic = badPolicies
	pendGet := cert("pending-get", "GET", "/certificates/{name}/pending", "bc-pending", "", nil)
	pendUpd := cert("pending-update", "PATCH", "/certificates/{name}/pending", "bc-pending", "", jtmpl{
		{name: "cancellation_requested", raw: `true`, kind: jBool, req: true, alt: `false`},
	})
	pendUpd.maxBody = 4 << 10
	pendUpd.semantic = []string{`{"cancellation_requested":null}`, `{"status":"completed"}`, `{"cancellation_requested":true,"status":"x"}`}
	pendDel := cert("pending-delete", "DELETE", "/certificates/{name}/pending", "bc-pending", "", nil)
	merge := cert("merge", "POST", "/certificates/{name}/pending/merge", "bc-pending", "", jtmpl{
		{name: "x5c", raw: `["` + b64s(randBytes(200)) + `"]`, kind: jArr, req: true, alt: `["` + b64s(randBytes(100)) + `"]`},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj},
		{name: "tags", raw: `{"env":"test"}`, kind: jMap},
	})
	merge.maxBody = 512 << 10
	selfDER := pemToDER(certOnly)
	merge.semantic = []string{`{"x5c":[]}`, `{"x5c":["not base64!"]}`, `{"x5c":["` + b64s(selfDER) + `"]}`, `{"x5c":["` + b64u(selfDER) + `"]}`,
		`{"x5c":["` + b64s(selfDER) + `","` + b64s(randBytes(50)) + `"]}`, `{"x5c":[""]}`, `{"x5c":"` + b64s(selfDER) + `"}`, `{"x5c":[null]}`,
		`{"x5c":["` + b64s([]byte(s.pendingCSR)) + `"]}`}
	mergeSelf := cert("merge", "POST", "/certificates/{name}/pending/merge", "bc-self", "", merge.body) // nothing pending
	mergeSelf.maxBody = 512 << 10
	del := cert("delete", "DELETE", "/certificates/{name}", "bc-self", "", nil)
	delList := cert("deleted-list", "GET", "/deletedcertificates", "", "", nil)
	delList.list, delList.certList = true, true
	delGet := cert("deleted-get", "GET", "/deletedcertificates/{name}", "bc-del", "", nil)
	purge := cert("purge", "DELETE", "/deletedcertificates/{name}", "bc-del", "", nil)
	recover := cert("recover", "POST", "/deletedcertificates/{name}/recover", "bc-del", "", nil)
	backup := cert("backup", "POST", "/certificates/{name}/backup", "bc-self", "", nil)
	restore := cert("restore", "POST", "/certificates/restore", "", "", jtmpl{{name: "value", raw: jstr(s.certBackup), kind: jB64, req: true, alt: jstr(s.keyBackup)}})
	restore.maxBody = 2 << 20
	restore.semantic = b.restoreBodies(s.certBackup, s.keyBackup, s.secretBackup)
	contactsGet := cert("contacts-get", "GET", "/certificates/contacts", "", "", nil)
	contactsSet := cert("contacts-set", "PUT", "/certificates/contacts", "", "", jtmpl{
		{name: "contacts", raw: `[{"email":"a@example.com","name":"A","phone":"1"}]`, kind: jArr, req: true, alt: `[{"email":"b@example.com"}]`},
	})
	contactsSet.semantic = []string{`{"contacts":[{"email":1}]}`, `{"contacts":[1]}`, `{"contacts":[{"email":"a@example.com","fly":1}]}`,
		`{"contacts":[{"email":"` + strings.Repeat("a", 70000) + `@example.com"}]}`, `{"contacts":[{"email":"a@example.com"}],"id":1}`, `{"contacts":null}`,
		`{"contacts":[{"email":"a@example.com","name":"a\u0000b"}]}`}
	contactsDel := cert("contacts-delete", "DELETE", "/certificates/contacts", "", "", nil)
	issList := cert("issuers-list", "GET", "/certificates/issuers", "", "", nil)
	issList.list = true
	issGet := cert("issuer-get", "GET", "/certificates/issuers/{name}", "bi-1", "", nil)
	issBody := jtmpl{
		{name: "provider", raw: `"Test"`, kind: jStr, req: true, alt: `"Other"`},
		{name: "credentials", raw: `{"account_id":"acct","pwd":"pw"}`, kind: jObj},
		{name: "org_details", raw: `{"id":"org","admin_details":[{"first_name":"A","email":"a@example.com"}]}`, kind: jObj},
		{name: "attributes", raw: `{"enabled":true}`, kind: jObj},
	}
	issSet := cert("issuer-set", "PUT", "/certificates/issuers/{name}", "bi-new", "", issBody)
	issSemantic := []string{`{"provider":""}`, `{"provider":"` + strings.Repeat("p", 5000) + `"}`, `{"provider":"a\u0000b"}`,
		`{"provider":"Test","credentials":{"account_id":1}}`, `{"provider":"Test","org_details":{"admin_details":"x"}}`,
		`{"provider":"Test","attributes":{"enabled":"yes"}}`, `{"provider":"Test","attributes":{"created":"x"}}`, `{"provider":"Test","id":1}`,
		`{"provider":"Test","org_details":{"id":"a\nb"}}`}
	issSet.semantic = issSemantic
	// In a PATCH every member is optional, and an empty provider means "unchanged".
	issUpd := cert("issuer-update", "PATCH", "/certificates/issuers/{name}", "bi-1", "",
		append(jtmpl{{name: "provider", raw: `"Test"`, kind: jStr, alt: `"Other"`}}, issBody[1:]...))
	issUpd.semantic = issSemantic[1:]
	issDel := cert("issuer-delete", "DELETE", "/certificates/issuers/{name}", "bi-1", "", nil)
	for _, o := range []*dpOp{create, imp, getV, getL, update, updateL, list, versions, polGet, polUpd, pendGet, pendUpd, pendDel, merge, mergeSelf,
		del, delList, delGet, purge, recover, backup, restore, contactsGet, contactsSet, contactsDel, issList, issGet, issSet, issUpd, issDel} {
		b.genOp(o)
	}
}
