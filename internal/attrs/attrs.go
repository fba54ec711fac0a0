// Package attrs owns the attribute rules that every Key Vault object kind shares (keys,
// secrets, and certificates later): tag limits and the nbf/exp validity window. Domains wrap
// its errors in their own BadParameter error. It imports only the standard library.
package attrs

import (
	"fmt"
	"unicode/utf8"
)

// Key Vault's limits on tags and times.
const (
	MaxTags        = 15
	MaxTagNameLen  = 512
	MaxTagValueLen = 256
	// MaxUnixTime is 9999-12-31T23:59:59Z.
	MaxUnixTime = 253402300799
)

// CheckTags validates tags of an object of the given kind ("key", "secret"). Lengths count
// characters, as Key Vault does.
func CheckTags(kind string, tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%d tags given: a %s has at most %d", len(tags), kind, MaxTags)
	}
	for k, v := range tags {
		if k == "" {
			return fmt.Errorf("a tag name is empty")
		}
		if n := utf8.RuneCountInString(k); n > MaxTagNameLen {
			return fmt.Errorf("a tag name is %d characters long: the limit is %d", n, MaxTagNameLen)
		}
		if n := utf8.RuneCountInString(v); n > MaxTagValueLen {
			return fmt.Errorf("the value of tag %.40q is %d characters long: the limit is %d", k, n, MaxTagValueLen)
		}
	}
	return nil
}

// CopyTags returns a copy of tags, nil if empty.
func CopyTags(tags map[string]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = v
	}
	return out
}

// CheckWindow validates the nbf and exp attributes (unix seconds, 1970 to 9999) and that exp
// is after nbf.
func CheckWindow(nbf, exp *int64) error {
	for _, t := range []struct {
		field string
		v     *int64
	}{{"nbf", nbf}, {"exp", exp}} {
		if t.v != nil && (*t.v < 0 || *t.v > MaxUnixTime) {
			return fmt.Errorf("attribute %s (%d) is outside 1970-01-01 to 9999-12-31", t.field, *t.v)
		}
	}
	if nbf != nil && exp != nil && *exp <= *nbf {
		return fmt.Errorf("attribute exp (%d) must be after nbf (%d)", *exp, *nbf)
	}
	return nil
}
