package authz

import (
	"fmt"
	"slices"
)

// Azure's Managed HSM role-based access control limits (Key Vault service limits, "Resource
// type: Managed HSM"). Coffer holds every way a role assignment or a custom role reaches a
// pool to them: the pool's own RBAC API and the management API alike. The callers run these
// checks inside the transaction that writes (tenancy's CreateRoleAssignmentIf,
// PutRoleDefinition and CreateRoleDefinitionIf), so concurrent writes cannot overshoot.
const (
	// MaxHSMScopeAssignments is the most role assignments at a pool's own scope (Managed
	// HSM's local "/" and "/keys" together: both are the pool's scope).
	MaxHSMScopeAssignments = 50
	// MaxHSMKeyAssignments is the most role assignments at the scope of one key of a pool.
	MaxHSMKeyAssignments = 10
	// MaxHSMCustomRoles is the most custom roles assignable in one pool.
	MaxHSMCustomRoles = 50
)

// Codes of a LimitError, as Managed HSM names them.
const (
	CodeRoleAssignmentLimit = "RoleAssignmentLimitExceeded"
	CodeRoleDefinitionLimit = "RoleDefinitionLimitExceeded"
)

// LimitError is one more role assignment or custom role than a Managed HSM pool allows. The
// wire layers answer it as 400 with Code and Message.
type LimitError struct {
	Code    string // CodeRoleAssignmentLimit or CodeRoleDefinitionLimit
	Message string // which limit, where, and what to do
}

// Error implements error.
func (e *LimitError) Error() string { return e.Code + ": " + e.Message }

// CheckHSMAssignmentLimit returns a *LimitError if existing (the tenant's role assignments)
// already holds as many assignments at scope as Managed HSM allows: MaxHSMScopeAssignments at
// a pool's scope, MaxHSMKeyAssignments at one of its keys'. Scopes outside managed HSM pools
// (the tenant, vaults) have no limit, and neither does a scope that does not parse (the
// snapshot refuses it): both are nil.
func CheckHSMAssignmentLimit(existing []Assignment, scope string) error {
	sc, err := ParseScope(scope)
	if err != nil || sc.ManagedHSM() == "" {
		return nil
	}
	n := 0
	for _, a := range existing {
		if o, err := ParseScope(a.Scope); err == nil && o == sc {
			n++
		}
	}
	limit, where := MaxHSMScopeAssignments, fmt.Sprintf("at HSM scope (/ and /keys together, %s) and pool %s has", sc, sc.ManagedHSM())
	if sc.kind == kindHSMKey {
		_, key := sc.Object()
		limit, where = MaxHSMKeyAssignments, fmt.Sprintf("at the scope of each key and key %s of pool %s has", key, sc.ManagedHSM())
	}
	if n < limit {
		return nil
	}
	return &LimitError{Code: CodeRoleAssignmentLimit, Message: fmt.Sprintf(
		"No more role assignments can be created: a managed HSM allows %d %s %d. Delete one first, or assign at another scope.", limit, where, n)}
}

// AssignableAt reports whether r may be assigned at s: one of its assignable scopes contains
// s. A tenant-wide custom role is assignable in every pool of the tenant.
func (r RoleDefinition) AssignableAt(s Scope) bool {
	return slices.ContainsFunc(r.AssignableScopes, func(as string) bool {
		sc, err := ParseScope(as)
		return err == nil && sc.Contains(s)
	})
}

// CheckHSMRoleLimit returns a *LimitError if the new custom role r would be assignable in one
// of pools (managed HSM pool scopes) in which existing (the tenant's custom roles) already has
// MaxHSMCustomRoles assignable; nil if r is assignable in none of them.
func CheckHSMRoleLimit(existing []RoleDefinition, r RoleDefinition, pools []Scope) error {
	for _, pool := range pools {
		if pool.kind != kindHSM || !r.AssignableAt(pool) {
			continue
		}
		if n := assignableIn(existing, pool); n >= MaxHSMCustomRoles {
			return &LimitError{Code: CodeRoleDefinitionLimit, Message: fmt.Sprintf(
				"No more custom role definitions can be created: a managed HSM allows %d assignable in it and pool %s has %d (custom roles assignable at the tenant count in every pool). Delete an unused one first, or make the role assignable only outside the pool.",
				MaxHSMCustomRoles, pool.ManagedHSM(), n)}
		}
	}
	return nil
}

// CheckHSMPoolRoles returns a *LimitError if existing (the tenant's custom roles) holds more
// roles assignable in the new pool than a pool allows: custom roles assignable at the tenant
// count in every pool, so such a pool would start over its limit.
func CheckHSMPoolRoles(existing []RoleDefinition, pool Scope) error {
	if n := assignableIn(existing, pool); n > MaxHSMCustomRoles {
		return &LimitError{Code: CodeRoleDefinitionLimit, Message: fmt.Sprintf(
			"Managed HSM pool %s cannot be created: a managed HSM allows %d custom roles assignable in it, and the tenant has %d assignable in every pool (assignable at the tenant). Delete unused custom roles, or make them assignable only at vaults, first.",
			pool.ManagedHSM(), MaxHSMCustomRoles, n)}
	}
	return nil
}

// assignableIn counts the roles of existing assignable in pool.
func assignableIn(existing []RoleDefinition, pool Scope) int {
	n := 0
	for _, e := range existing {
		if e.AssignableAt(pool) {
			n++
		}
	}
	return n
}
