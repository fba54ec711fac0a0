package secrets

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits taken from Key Vault (KEYVAULT-NOTES §1.2, SECURITY-NOTES I3 and I10).
const (
	// MaxValueBytes is the largest secret value, in bytes of its UTF-8 encoding: Key
	// Vault's 25 KB (about-secrets.md), read as 25 KiB.
	MaxValueBytes = 25 << 10
	// MaxContentTypeLen is the longest contentType, in characters.
	MaxContentTypeLen = 255
	maxTags           = 15
	maxTagNameLen     = 512
	maxTagValueLen    = 256
	// maxUnixTime is 9999-12-31T23:59:59Z: later nbf/exp values are refused.
	maxUnixTime = 253402300799
)

var (
	nameRE    = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	versionRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// checkName validates a secret name and returns its lower-cased storage form.
func checkName(name string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", badParam("The secret name %.140q is invalid: use 1-127 letters, digits and '-'.", name)
	}
	return strings.ToLower(name), nil
}

// checkVersion validates a version ("" means latest) and returns it lower-cased.
func checkVersion(version string) (string, error) {
	if version == "" {
		return "", nil
	}
	v := strings.ToLower(version)
	if !versionRE.MatchString(v) {
		return "", badParam("The secret version %.40q is invalid: a version is 32 hexadecimal characters.", version)
	}
	return v, nil
}

// checkValue enforces the value size limit. The message gives the size, never the content.
func checkValue(v string) error {
	if len(v) > MaxValueBytes {
		return badParam("The secret value is %d bytes long: the limit is %d bytes (25 KiB). Store a larger secret as a reference, or split it.", len(v), MaxValueBytes)
	}
	return nil
}

// checkContentType enforces the contentType length and refuses control characters (a
// content type may be reflected into a header by a client).
func checkContentType(ct string) error {
	if n := utf8.RuneCountInString(ct); n > MaxContentTypeLen {
		return badParam("contentType is %d characters long: the limit is %d.", n, MaxContentTypeLen)
	}
	if strings.ContainsFunc(ct, isControl) {
		return badParam("contentType contains a control character.")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkTags enforces Key Vault's tag limits.
func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return badParam("%d tags given: a secret has at most %d.", len(tags), maxTags)
	}
	for k, v := range tags {
		if k == "" {
			return badParam("A tag name is empty.")
		}
		if n := utf8.RuneCountInString(k); n > maxTagNameLen {
			return badParam("A tag name is %d characters long: the limit is %d.", n, maxTagNameLen)
		}
		if n := utf8.RuneCountInString(v); n > maxTagValueLen {
			return badParam("The value of tag %.40q is %d characters long: the limit is %d.", k, n, maxTagValueLen)
		}
	}
	return nil
}

// copyTags returns a copy of tags, nil if empty.
func copyTags(tags map[string]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = v
	}
	return out
}

// checkTime validates one unix-seconds attribute.
func checkTime(field string, t *int64) error {
	if t != nil && (*t < 0 || *t > maxUnixTime) {
		return badParam("Attribute %s (%d) is outside 1970-01-01 to 9999-12-31.", field, *t)
	}
	return nil
}

// checkWindow validates nbf and exp and that exp is after nbf.
func checkWindow(nbf, exp *int64) error {
	if err := checkTime("nbf", nbf); err != nil {
		return err
	}
	if err := checkTime("exp", exp); err != nil {
		return err
	}
	if nbf != nil && exp != nil && *exp <= *nbf {
		return badParam("Attribute exp (%d) must be after nbf (%d).", *exp, *nbf)
	}
	return nil
}

// validLC accepts a lower-cased secret name (a page token of List and ListDeleted).
func validLC(s string) bool { return nameRE.MatchString(s) && strings.ToLower(s) == s }

// validVersion accepts a version id (a page token of ListVersions).
func validVersion(s string) bool { return versionRE.MatchString(s) }
