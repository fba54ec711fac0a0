package skr

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Decision is the outcome of evaluating a policy for one token.
type Decision struct {
	// Allowed reports whether some authority's conditions held.
	Allowed bool
	// Authority is the policy authority that matched the token's issuer ("" if none did).
	Authority string
	// Reason says why, for the audit log: which claim failed, or that no authority matched.
	// It names claims and operators only, never claim values.
	Reason string
}

// SameAuthority reports whether a policy authority names the issuer iss: the URLs are
// compared case-insensitively, ignoring one trailing slash (Azure's own policies write
// "https://sharedeus.eus.attest.azure.net/" for tokens whose iss has no slash).
func SameAuthority(authority, iss string) bool {
	return iss != "" && strings.EqualFold(strings.TrimSuffix(authority, "/"), strings.TrimSuffix(iss, "/"))
}

// Evaluate decides whether a token issued by iss with claims satisfies p. claims is the
// token's payload as decoded by encoding/json with UseNumber (objects are map[string]any,
// numbers json.Number); float64 numbers are accepted too.
func (p *Policy) Evaluate(iss string, claims map[string]any) Decision {
	reason := "no authority of the policy issued the token"
	for _, a := range p.Authorities {
		if !SameAuthority(a.URL, iss) {
			continue
		}
		ok, why := a.Cond.eval(claims)
		if ok {
			return Decision{Allowed: true, Authority: a.URL, Reason: "conditions of authority " + a.URL + " hold"}
		}
		reason = "authority " + a.URL + ": " + why
	}
	return Decision{Reason: reason}
}

// eval reports whether c holds and, if not, why.
func (c *Condition) eval(claims map[string]any) (bool, string) {
	switch c.Kind {
	case AllOf:
		for i := range c.Children {
			if ok, why := c.Children[i].eval(claims); !ok {
				return false, why
			}
		}
		return true, ""
	case AnyOf:
		var whys []string
		for i := range c.Children {
			ok, why := c.Children[i].eval(claims)
			if ok {
				return true, ""
			}
			whys = append(whys, why)
		}
		return false, "none of: " + strings.Join(whys, "; ")
	case Claim:
		if c.claimHolds(claims) {
			return true, ""
		}
		return false, fmt.Sprintf("claim %q %s: not satisfied", c.Claim, c.Op)
	}
	return false, "unknown condition"
}

func (c *Condition) claimHolds(claims map[string]any) bool {
	got, present := lookup(claims, c.Claim)
	if c.Op == Exists {
		return present == c.Value.(bool)
	}
	if !present {
		return false
	}
	switch want := c.Value.(type) {
	case string:
		s, ok := got.(string)
		if !ok {
			return false
		}
		return (s == want) == (c.Op == Equals)
	case bool:
		b, ok := got.(bool)
		if !ok {
			return false
		}
		return (b == want) == (c.Op == Equals)
	case json.Number:
		w, _ := numberRat(want)
		g, ok := claimRat(got)
		if !ok {
			return false
		}
		cmp := g.Cmp(w)
		switch c.Op {
		case Equals:
			return cmp == 0
		case NotEquals:
			return cmp != 0
		case Less:
			return cmp < 0
		case LessOrEquals:
			return cmp <= 0
		case Greater:
			return cmp > 0
		case GreaterOrEquals:
			return cmp >= 0
		}
	}
	return false
}

// lookup follows a dotted path through nested objects. A top-level claim whose name is the
// whole path (dots included) is found too.
func lookup(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// maxNumberLen bounds the numbers compared, so big.Rat never works on huge exponents.
const maxNumberLen = 64

func numberRat(n json.Number) (*big.Rat, bool) {
	s := string(n)
	if len(s) > maxNumberLen || strings.ContainsAny(s, "eE") {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

func claimRat(v any) (*big.Rat, bool) {
	switch n := v.(type) {
	case json.Number:
		return numberRat(n)
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(n) == nil {
			return nil, false
		}
		return r, true
	case int64:
		return new(big.Rat).SetInt64(n), true
	case int:
		return new(big.Rat).SetInt64(int64(n)), true
	}
	return nil, false
}
