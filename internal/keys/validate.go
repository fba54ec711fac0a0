package keys

import (
	"encoding/json"
	"strings"

	"github.com/coffer-kms/coffer/internal/attrs"
	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/skr"
)

// Limits taken from Key Vault (KEYVAULT-NOTES §1.2, SECURITY-NOTES I10).
const (
	maxContentTypeLen = 255
	maxPolicyLen      = 16 << 10
	// defaultReleaseContentType is KeyReleasePolicy.contentType's default.
	defaultReleaseContentType = "application/json; charset=utf-8"
)

// Key Vault's key operation names (JsonWebKeyOperation).
const (
	OpEncrypt   = "encrypt"
	OpDecrypt   = "decrypt"
	OpSign      = "sign"
	OpVerify    = "verify"
	OpWrapKey   = "wrapKey"
	OpUnwrapKey = "unwrapKey"
	OpImport    = "import"
	OpExport    = "export"
)

var knownOps = []string{OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrapKey, OpImport, OpExport}

// checkName validates a key name and returns its lower-cased storage form.
func checkName(name string) (string, error) {
	if !names.Object(name) {
		return "", badParam("key name %.140q is invalid: use 1-127 letters, digits and '-'", name)
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
		return "", badParam("key version %.40q is invalid: a version is 32 hexadecimal characters", version)
	}
	return v, nil
}

// baseType strips -HSM from a key type.
func baseType(kty provider.KeyType) provider.KeyType {
	return provider.KeyType(strings.TrimSuffix(string(kty), "-HSM"))
}

// defaultOps are the key_ops a version gets when none are asked for.
func defaultOps(kty provider.KeyType) []string {
	switch baseType(kty) {
	case provider.RSA:
		return []string{OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrapKey}
	case provider.EC:
		return []string{OpSign, OpVerify}
	case provider.Oct:
		return []string{OpEncrypt, OpDecrypt, OpWrapKey, OpUnwrapKey}
	}
	return nil
}

// checkOps validates key_ops, canonicalizes their case and drops duplicates. nil in gives
// nil out (the caller picks a default).
func checkOps(ops []string) ([]string, error) {
	if ops == nil {
		return nil, nil
	}
	out := make([]string, 0, len(ops))
	for _, op := range ops {
		canon := ""
		for _, k := range knownOps {
			if strings.EqualFold(op, k) {
				canon = k
			}
		}
		if canon == "" {
			return nil, badParam("key operation %.40q is unknown: use encrypt, decrypt, sign, verify, wrapKey, unwrapKey, import or export", op)
		}
		if !contains(out, canon) {
			out = append(out, canon)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkTags enforces Key Vault's tag limits.
func checkTags(tags map[string]string) error {
	if err := attrs.CheckTags("key", tags); err != nil {
		return badParam("%s", err.Error())
	}
	return nil
}

// copyTags returns a copy of tags, nil if empty.
func copyTags(tags map[string]string) map[string]string { return attrs.CopyTags(tags) }

// checkWindow validates nbf and exp and that exp is after nbf.
func checkWindow(nbf, exp *int64) error {
	if err := attrs.CheckWindow(nbf, exp); err != nil {
		return badParam("%s", err.Error())
	}
	return nil
}

// checkReleasePolicy validates a release policy and returns a normalized copy.
func checkReleasePolicy(p *ReleasePolicy) (*ReleasePolicy, error) {
	if p == nil {
		return nil, nil
	}
	out := &ReleasePolicy{ContentType: p.ContentType, Immutable: p.Immutable, Data: append(provider.B64(nil), p.Data...)}
	if out.ContentType == "" {
		out.ContentType = defaultReleaseContentType
	}
	if len(out.ContentType) > maxContentTypeLen {
		return nil, badParam("release_policy.contentType is longer than %d characters", maxContentTypeLen)
	}
	if !strings.HasPrefix(strings.ToLower(out.ContentType), "application/json") {
		return nil, badParam("release_policy.contentType %.60q is not supported: use %q", out.ContentType, defaultReleaseContentType)
	}
	if len(out.Data) == 0 {
		return nil, badParam("release_policy.data is empty: it must hold the policy document")
	}
	if len(out.Data) > maxPolicyLen {
		return nil, badParam("release_policy.data is larger than %d bytes", maxPolicyLen)
	}
	if !json.Valid(out.Data) {
		return nil, badParam("release_policy.data is not a JSON document")
	}
	if _, err := skr.Parse(out.Data); err != nil {
		return nil, badParam("release_policy.data is not a valid release policy: %v", err)
	}
	return out, nil
}

// samePolicy reports whether two release policies are equal.
func samePolicy(a, b *ReleasePolicy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ContentType == b.ContentType && a.Immutable == b.Immutable && string(a.Data) == string(b.Data)
}

// copyPolicy returns a deep copy of p.
func copyPolicy(p *ReleasePolicy) *ReleasePolicy {
	if p == nil {
		return nil
	}
	c := *p
	c.Data = append(provider.B64(nil), p.Data...)
	return &c
}
