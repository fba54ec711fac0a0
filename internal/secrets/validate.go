package secrets

import (
	"strings"
	"unicode/utf8"

	"github.com/coffer-kms/coffer/internal/attrs"
	"github.com/coffer-kms/coffer/internal/names"
)

// Limits taken from Key Vault (KEYVAULT-NOTES §1.2, SECURITY-NOTES I3 and I10).
const (
	// MaxValueBytes is the largest secret value, in bytes of its UTF-8 encoding: Key
	// Vault's 25 KB (about-secrets.md), read as 25 KiB.
	MaxValueBytes = 25 << 10
	// MaxContentTypeLen is the longest contentType, in characters.
	MaxContentTypeLen = 255
)

// checkName validates a secret name and returns its lower-cased storage form.
func checkName(name string) (string, error) {
	if !names.Object(name) {
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
	if !names.Version(v) {
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
	if err := attrs.CheckTags("secret", tags); err != nil {
		return badParam("%s", sentence(err))
	}
	return nil
}

// copyTags returns a copy of tags, nil if empty.
func copyTags(tags map[string]string) map[string]string { return attrs.CopyTags(tags) }

// checkWindow validates nbf and exp and that exp is after nbf.
func checkWindow(nbf, exp *int64) error {
	if err := attrs.CheckWindow(nbf, exp); err != nil {
		return badParam("%s", sentence(err))
	}
	return nil
}

// validVersion accepts a version id (a page token of ListVersions).
func validVersion(s string) bool { return names.Version(s) }

// sentence renders a shared attrs error in this package's message style: capitalised, with a
// full stop.
func sentence(err error) string {
	m := err.Error()
	return strings.ToUpper(m[:1]) + m[1:] + "."
}
