package skr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits Parse enforces before and while it reads a policy.
const (
	// MaxPolicySize is the largest policy document, in bytes.
	MaxPolicySize = 16 << 10
	// MaxDepth is the deepest nesting of anyOf/allOf under an authority.
	MaxDepth = 8
	// MaxConditions is the most conditions (claim, anyOf and allOf nodes) in one policy.
	MaxConditions = 256
	// MaxClaimLen is the longest claim path, in bytes.
	MaxClaimLen = 256
	// MaxAuthorityLen is the longest authority URL, in bytes.
	MaxAuthorityLen = 2048
	// MaxStringValue is the longest string a condition compares with, in bytes.
	MaxStringValue = 4096
)

// ErrInvalidPolicy is wrapped by every Parse error; the wrapped text says what is wrong.
var ErrInvalidPolicy = errors.New("invalid release policy")

// Versions are the policy versions Parse accepts.
var Versions = []string{"1.0.0", "1.0.2"}

// Kind tells the kinds of condition apart.
type Kind uint8

// The kinds of condition.
const (
	// AnyOf holds when at least one child holds.
	AnyOf Kind = iota + 1
	// AllOf holds when every child holds.
	AllOf
	// Claim compares one claim with a value.
	Claim
)

// Operator is a claim comparison, named as on the wire.
type Operator string

// The claim operators of the grammar.
const (
	Equals          Operator = "equals"
	NotEquals       Operator = "notEquals"
	Less            Operator = "less"
	LessOrEquals    Operator = "lessOrEquals"
	Greater         Operator = "greater"
	GreaterOrEquals Operator = "greaterOrEquals"
	Exists          Operator = "exists"
)

var operators = []Operator{Equals, NotEquals, Less, LessOrEquals, Greater, GreaterOrEquals, Exists}

// Policy is a parsed release policy: the key may be released if any authority's conditions
// hold for a token that authority issued.
type Policy struct {
	Version     string
	Authorities []Authority
}

// Authority is one issuer and the conditions its tokens must satisfy.
type Authority struct {
	// URL is the issuer as written in the policy (an https URL).
	URL string
	// Cond is an AnyOf or AllOf condition.
	Cond Condition
}

// Condition is a node of the condition tree.
type Condition struct {
	Kind Kind
	// Children are the conditions of an AnyOf or AllOf node (at least one).
	Children []Condition
	// Claim is the dotted claim path of a Claim node ("x-ms-isolation-tee.x-ms-attestation-type").
	Claim string
	// Op is the comparison of a Claim node.
	Op Operator
	// Value is what the claim is compared with: a string, a bool or a json.Number (for
	// Exists, a bool).
	Value any
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}

// Parse reads a release policy document. It accepts only the grammar of the package
// documentation, within the package's limits; every error wraps ErrInvalidPolicy.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxPolicySize {
		return nil, invalid("the policy is %d bytes; at most %d are allowed", len(doc), MaxPolicySize)
	}
	if !utf8.Valid(doc) {
		return nil, invalid("the policy is not valid UTF-8")
	}
	v, err := decodeStrict(doc)
	if err != nil {
		return nil, err
	}
	top, ok := v.(object)
	if !ok {
		return nil, invalid("the policy must be a JSON object")
	}
	m, err := top.members("policy", "version", "anyOf")
	if err != nil {
		return nil, err
	}
	ver, ok := m["version"].(string)
	if !ok || !validVersion(ver) {
		return nil, invalid("\"version\" must be one of %q", Versions)
	}
	list, ok := m["anyOf"].([]any)
	if !ok || len(list) == 0 {
		return nil, invalid("\"anyOf\" must be a non-empty array of authorities")
	}
	p := &Policy{Version: ver}
	count := 0
	for i, a := range list {
		auth, err := parseAuthority(a, &count)
		if err != nil {
			return nil, fmt.Errorf("%w (in anyOf[%d])", err, i)
		}
		p.Authorities = append(p.Authorities, auth)
	}
	return p, nil
}

func validVersion(v string) bool {
	for _, s := range Versions {
		if v == s {
			return true
		}
	}
	return false
}

func parseAuthority(v any, count *int) (Authority, error) {
	o, ok := v.(object)
	if !ok {
		return Authority{}, invalid("an authority must be a JSON object")
	}
	m, err := o.members("authority", "authority", "anyOf", "allOf")
	if err != nil {
		return Authority{}, err
	}
	u, ok := m["authority"].(string)
	if !ok {
		return Authority{}, invalid("\"authority\" must be a string naming the attestation service")
	}
	if err := checkAuthority(u); err != nil {
		return Authority{}, err
	}
	delete(m, "authority")
	cond, err := parseGroup(m, 1, count)
	if err != nil {
		return Authority{}, err
	}
	return Authority{URL: u, Cond: cond}, nil
}

// checkAuthority requires an absolute https URL with a host and nothing after the path.
func checkAuthority(s string) error {
	if len(s) > MaxAuthorityLen {
		return invalid("\"authority\" is longer than %d bytes", MaxAuthorityLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return invalid("\"authority\" must be an https URL such as https://myattestation.attest.example (no user, query or fragment)")
	}
	return nil
}

// parseGroup reads the anyOf or allOf member of m (exactly one of them, and nothing else).
func parseGroup(m map[string]any, depth int, count *int) (Condition, error) {
	if depth > MaxDepth {
		return Condition{}, invalid("conditions are nested deeper than %d levels", MaxDepth)
	}
	anyOf, hasAny := m["anyOf"]
	allOf, hasAll := m["allOf"]
	if hasAny == hasAll || len(m) != 1 {
		return Condition{}, invalid("expected exactly one of \"anyOf\" or \"allOf\"")
	}
	c := Condition{Kind: AnyOf}
	list := anyOf
	if hasAll {
		c.Kind, list = AllOf, allOf
	}
	items, ok := list.([]any)
	if !ok || len(items) == 0 {
		return Condition{}, invalid("\"anyOf\" and \"allOf\" must be non-empty arrays of conditions")
	}
	if *count++; *count > MaxConditions {
		return Condition{}, invalid("more than %d conditions", MaxConditions)
	}
	for _, it := range items {
		child, err := parseCondition(it, depth+1, count)
		if err != nil {
			return Condition{}, err
		}
		c.Children = append(c.Children, child)
	}
	return c, nil
}

func parseCondition(v any, depth int, count *int) (Condition, error) {
	o, ok := v.(object)
	if !ok {
		return Condition{}, invalid("a condition must be a JSON object")
	}
	names := []string{"claim", "anyOf", "allOf"}
	for _, op := range operators {
		names = append(names, string(op))
	}
	m, err := o.members("condition", names...)
	if err != nil {
		return Condition{}, err
	}
	claim, isClaim := m["claim"]
	if !isClaim {
		return parseGroup(m, depth, count)
	}
	if *count++; *count > MaxConditions {
		return Condition{}, invalid("more than %d conditions", MaxConditions)
	}
	path, ok := claim.(string)
	if !ok || path == "" || len(path) > MaxClaimLen {
		return Condition{}, invalid("\"claim\" must be a claim name of 1 to %d bytes", MaxClaimLen)
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			return Condition{}, invalid("claim %q has an empty segment", path)
		}
	}
	if len(m) != 2 {
		return Condition{}, invalid("claim %q needs exactly one operator (one of %q)", path, operators)
	}
	c := Condition{Kind: Claim, Claim: path}
	for _, op := range operators {
		if val, ok := m[string(op)]; ok {
			c.Op, c.Value = op, val
		}
	}
	if c.Op == "" {
		return Condition{}, invalid("claim %q needs an operator (one of %q), not anyOf/allOf", path, operators)
	}
	switch val := c.Value.(type) {
	case bool:
		if isOrdering(c.Op) {
			return Condition{}, invalid("claim %q: %s needs a number", path, c.Op)
		}
	case string:
		if c.Op == Exists || isOrdering(c.Op) {
			return Condition{}, invalid("claim %q: %s needs %s", path, c.Op, opWants(c.Op))
		}
		if len(val) > MaxStringValue {
			return Condition{}, invalid("claim %q: the value is longer than %d bytes", path, MaxStringValue)
		}
	case json.Number:
		if c.Op == Exists {
			return Condition{}, invalid("claim %q: exists needs true or false", path)
		}
		if _, ok := numberRat(val); !ok {
			return Condition{}, invalid("claim %q: numbers must be plain decimals of at most %d characters (no exponent)", path, maxNumberLen)
		}
	default:
		return Condition{}, invalid("claim %q: %s needs %s", path, c.Op, opWants(c.Op))
	}
	return c, nil
}

func isOrdering(op Operator) bool {
	return op == Less || op == LessOrEquals || op == Greater || op == GreaterOrEquals
}

func opWants(op Operator) string {
	switch {
	case op == Exists:
		return "true or false"
	case isOrdering(op):
		return "a number"
	}
	return "a string, number or boolean"
}

// object is a decoded JSON object: its members in document order.
type object []member

type member struct {
	name  string
	value any
}

// members maps o's members onto the canonical names allowed (matched case-insensitively).
// Unknown names and a name given twice in any spelling are errors.
func (o object) members(what string, allowed ...string) (map[string]any, error) {
	out := make(map[string]any, len(o))
	for _, mb := range o {
		canon := ""
		for _, a := range allowed {
			if strings.EqualFold(mb.name, a) {
				canon = a
			}
		}
		if canon == "" {
			return nil, invalid("unknown member %q in a %s (allowed: %q)", truncate(mb.name), what, allowed)
		}
		if _, dup := out[canon]; dup {
			return nil, invalid("member %q appears twice in a %s", canon, what)
		}
		out[canon] = mb.value
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// decodeStrict decodes one JSON value, keeping object members in order (so duplicates can be
// seen) and numbers as json.Number. Trailing data is an error.
func decodeStrict(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("unexpected data after the policy object")
	}
	return v, nil
}

// maxJSONDepth bounds the raw JSON nesting (each condition level is two JSON levels).
const maxJSONDepth = 2*MaxDepth + 4

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, invalid("the policy is nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, invalid("the policy is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o object
			for dec.More() {
				nt, err := dec.Token()
				if err != nil {
					return nil, invalid("the policy is not valid JSON")
				}
				name, _ := nt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o = append(o, member{name, v})
			}
			if _, err := dec.Token(); err != nil {
				return nil, invalid("the policy is not valid JSON")
			}
			return o, nil
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, invalid("the policy is not valid JSON")
			}
			return list, nil
		}
		return nil, invalid("the policy is not valid JSON")
	case nil:
		return nil, invalid("null is not allowed in a policy")
	}
	return tok, nil
}
