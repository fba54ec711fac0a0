package authz

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidScope is returned (wrapped) by ParseScope for a string that is not a scope.
var ErrInvalidScope = errors.New("invalid scope")

// maxNameLen is the longest vault, HSM, object or tenant name a scope may carry: Key
// Vault's object name limit (^[0-9a-zA-Z-]{1,127}$).
const maxNameLen = 127

// scopeKind is the level a Scope names.
type scopeKind uint8

const (
	kindInvalid     scopeKind = iota // the zero Scope: contains nothing, is contained by nothing
	kindPlatform                     // "/"
	kindTenant                       // "/tenants/{t}"
	kindVault                        // "/tenants/{t}/vaults/{v}"
	kindVaultObject                  // "/tenants/{t}/vaults/{v}/{keys|secrets|certificates}/{name}"
	kindHSM                          // "/tenants/{t}/managedHsms/{p}"
	kindHSMKey                       // "/tenants/{t}/managedHsms/{p}/keys/{name}"
)

// Collections of objects inside a vault, as they appear in a scope path.
const (
	CollectionKeys         = "keys"
	CollectionSecrets      = "secrets"
	CollectionCertificates = "certificates"
)

// Scope is a parsed scope path: the platform ("/"), a tenant ("/tenants/{t}"), a vault
// ("/tenants/{t}/vaults/{v}"), one key, secret or certificate of a vault
// ("/tenants/{t}/vaults/{v}/keys/{name}"), a Managed HSM pool
// ("/tenants/{t}/managedHsms/{p}") or one of its keys
// ("/tenants/{t}/managedHsms/{p}/keys/{name}"). The zero Scope is invalid: it contains
// nothing and nothing contains it. Scopes are values and compare with ==.
type Scope struct {
	path       string // canonical form
	kind       scopeKind
	tenant     string // exact, case-sensitive
	container  string // vault or HSM name, lower case
	collection string // keys, secrets or certificates
	name       string // object name, lower case
}

// PlatformScope returns the platform scope "/".
func PlatformScope() Scope { return Scope{path: "/", kind: kindPlatform} }

// ParseScope parses a scope path. Every segment is checked: keywords must be spelled
// exactly ("tenants", "vaults", "managedHsms", "keys", "secrets", "certificates"),
// and tenant ids and names must match ^[0-9a-zA-Z-]{1,127}$. Vault, HSM and object names
// are case-insensitive in Key Vault, so they are lowered; tenant ids are kept as given
// and compared exactly. Errors wrap ErrInvalidScope.
func ParseScope(s string) (Scope, error) {
	if s == "/" {
		return PlatformScope(), nil
	}
	if s == "" || s[0] != '/' {
		return Scope{}, fmt.Errorf("%w %q: must start with /", ErrInvalidScope, s)
	}
	if len(s) > 1024 {
		return Scope{}, fmt.Errorf("%w: longer than 1024 bytes", ErrInvalidScope)
	}
	seg := strings.Split(s[1:], "/")
	for i, g := range seg {
		if g == "" {
			return Scope{}, fmt.Errorf("%w %q: empty segment %d", ErrInvalidScope, s, i+1)
		}
	}
	if seg[0] != "tenants" {
		return Scope{}, fmt.Errorf("%w %q: must be / or start with /tenants/", ErrInvalidScope, s)
	}
	if len(seg) == 1 {
		return Scope{}, fmt.Errorf("%w %q: missing tenant id", ErrInvalidScope, s)
	}
	if err := checkName("tenant id", seg[1]); err != nil {
		return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalidScope, s, err)
	}
	sc := Scope{kind: kindTenant, tenant: seg[1]}
	switch len(seg) {
	case 2:
	case 4, 6:
		var kind, objKind scopeKind
		var what string
		switch seg[2] {
		case "vaults":
			kind, objKind, what = kindVault, kindVaultObject, "vault name"
		case "managedHsms":
			kind, objKind, what = kindHSM, kindHSMKey, "managed HSM name"
		default:
			return Scope{}, fmt.Errorf("%w %q: segment 3 must be vaults or managedHsms", ErrInvalidScope, s)
		}
		if err := checkName(what, seg[3]); err != nil {
			return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalidScope, s, err)
		}
		sc.kind, sc.container = kind, strings.ToLower(seg[3])
		if len(seg) == 6 {
			switch {
			case seg[4] == CollectionKeys,
				kind == kindVault && (seg[4] == CollectionSecrets || seg[4] == CollectionCertificates):
			case kind == kindHSM:
				return Scope{}, fmt.Errorf("%w %q: segment 5 must be keys", ErrInvalidScope, s)
			default:
				return Scope{}, fmt.Errorf("%w %q: segment 5 must be keys, secrets or certificates", ErrInvalidScope, s)
			}
			if err := checkName("object name", seg[5]); err != nil {
				return Scope{}, fmt.Errorf("%w %q: %v", ErrInvalidScope, s, err)
			}
			sc.kind, sc.collection, sc.name = objKind, seg[4], strings.ToLower(seg[5])
		}
	default:
		return Scope{}, fmt.Errorf("%w %q: %d segments; want 2, 4 or 6", ErrInvalidScope, s, len(seg))
	}
	sc.path = sc.render()
	return sc, nil
}

// checkName reports whether v is a valid tenant id or name: ^[0-9a-zA-Z-]{1,127}$.
func checkName(what, v string) error {
	if len(v) > maxNameLen {
		return fmt.Errorf("%s is longer than %d characters", what, maxNameLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
			return fmt.Errorf("%s %q has a character outside [0-9a-zA-Z-]", what, v)
		}
	}
	return nil
}

func (s Scope) render() string {
	switch s.kind {
	case kindPlatform:
		return "/"
	case kindTenant:
		return "/tenants/" + s.tenant
	case kindVault:
		return "/tenants/" + s.tenant + "/vaults/" + s.container
	case kindVaultObject:
		return "/tenants/" + s.tenant + "/vaults/" + s.container + "/" + s.collection + "/" + s.name
	case kindHSM:
		return "/tenants/" + s.tenant + "/managedHsms/" + s.container
	case kindHSMKey:
		return "/tenants/" + s.tenant + "/managedHsms/" + s.container + "/keys/" + s.name
	}
	return ""
}

// String returns the canonical path of s ("" for the zero Scope).
func (s Scope) String() string { return s.path }

// IsValid reports whether s was produced by ParseScope or PlatformScope.
func (s Scope) IsValid() bool { return s.kind != kindInvalid }

// IsPlatform reports whether s is the platform scope "/".
func (s Scope) IsPlatform() bool { return s.kind == kindPlatform }

// Tenant returns the tenant id of s, or "" for the platform scope.
func (s Scope) Tenant() string { return s.tenant }

// Vault returns the (lower-case) vault name of a vault or vault-object scope, else "".
func (s Scope) Vault() string {
	if s.kind == kindVault || s.kind == kindVaultObject {
		return s.container
	}
	return ""
}

// ManagedHSM returns the (lower-case) pool name of an HSM or HSM-key scope, else "".
func (s Scope) ManagedHSM() string {
	if s.kind == kindHSM || s.kind == kindHSMKey {
		return s.container
	}
	return ""
}

// Object returns the collection (CollectionKeys, CollectionSecrets or
// CollectionCertificates) and the lower-case name of an object scope, else "", "".
func (s Scope) Object() (collection, name string) { return s.collection, s.name }

// Contains reports whether other lies within s, on whole segments: "/tenants/a" contains
// "/tenants/a/vaults/v" but not "/tenants/ab"; a vault never contains an HSM pool of the
// same name. A scope contains itself. Invalid scopes contain nothing and are contained by
// nothing.
func (s Scope) Contains(other Scope) bool {
	if s.kind == kindInvalid || other.kind == kindInvalid {
		return false
	}
	if s.kind == kindPlatform {
		return true
	}
	if other.kind == kindPlatform || s.tenant != other.tenant {
		return false
	}
	switch s.kind {
	case kindTenant:
		return true
	case kindVault:
		return (other.kind == kindVault || other.kind == kindVaultObject) && s.container == other.container
	case kindHSM:
		return (other.kind == kindHSM || other.kind == kindHSMKey) && s.container == other.container
	case kindVaultObject, kindHSMKey:
		return other.kind == s.kind && s.container == other.container &&
			s.collection == other.collection && s.name == other.name
	}
	return false
}

// allows reports whether an action of family f can be decided on s.
func (f family) allows(s Scope) bool {
	switch f {
	case famVaultKeys:
		return s.kind == kindVault || s.kind == kindVaultObject && s.collection == CollectionKeys
	case famVaultSecrets:
		return s.kind == kindVault || s.kind == kindVaultObject && s.collection == CollectionSecrets
	case famVaultCertificates:
		return s.kind == kindVault || s.kind == kindVaultObject && s.collection == CollectionCertificates
	case famVault:
		return s.kind == kindVault
	case famHSMKeys, famHSMRoles:
		return s.kind == kindHSM || s.kind == kindHSMKey
	case famHSM:
		return s.kind == kindHSM
	case famManagement:
		return s.kind != kindInvalid
	case famPlatform:
		return s.kind == kindPlatform
	}
	return false
}
