package authz

import (
	"errors"
	"fmt"
	"testing"
)

func TestCheckHSMAssignmentLimit(t *testing.T) {
	const tn = "/tenants/t1"
	pool, key := tn+"/managedHsms/p1", tn+"/managedHsms/p1/keys/k1"
	at := func(scope string, n int) []Assignment {
		out := make([]Assignment, n)
		for i := range out {
			out[i] = Assignment{ID: fmt.Sprint(i), Scope: scope}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		existing []Assignment
		scope    string
		refused  bool
	}{
		{"ok/pool-below-limit", at(pool, MaxHSMScopeAssignments-1), pool, false},
		{"fail/pool-at-limit", at(pool, MaxHSMScopeAssignments), pool, true},
		{"ok/keys-do-not-count-at-pool", append(at(pool, MaxHSMScopeAssignments-1), at(key, 5)...), pool, false},
		{"ok/key-below-limit", at(key, MaxHSMKeyAssignments-1), key, false},
		{"fail/key-at-limit", at(key, MaxHSMKeyAssignments), key, true},
		{"fail/key-name-case", at(key, MaxHSMKeyAssignments), tn + "/managedHsms/P1/keys/K1", true},
		{"ok/other-key", at(key, MaxHSMKeyAssignments), pool + "/keys/k2", false},
		{"ok/other-pool", at(pool, MaxHSMScopeAssignments), tn + "/managedHsms/p2", false},
		{"ok/pool-pays-no-heed-to-tenant", at(tn, 100), pool, false},
		{"ok/tenant-unlimited", at(tn, 100), tn, false},
		{"ok/vault-unlimited", at(tn+"/vaults/p1", 100), tn + "/vaults/p1", false},
		{"ok/vault-key-unlimited", at(tn+"/vaults/v/keys/k1", 100), tn + "/vaults/v/keys/k1", false},
		{"ok/unparsable", at("nope", 100), "nope", false},
	} {
		err := CheckHSMAssignmentLimit(tc.existing, tc.scope)
		var le *LimitError
		if got := errors.As(err, &le); got != tc.refused || got && le.Code != CodeRoleAssignmentLimit {
			t.Errorf("%s: CheckHSMAssignmentLimit(%d at %s) = %v; want refused %v", tc.name, len(tc.existing), tc.scope, err, tc.refused)
		}
	}
}

func TestCheckHSMRoleLimit(t *testing.T) {
	const tn = "/tenants/t1"
	p1, p2 := mustScope(t, tn+"/managedHsms/p1"), mustScope(t, tn+"/managedHsms/p2")
	roles := func(n int, scopes ...string) []RoleDefinition {
		out := make([]RoleDefinition, n)
		for i := range out {
			out[i] = RoleDefinition{ID: fmt.Sprint(i), AssignableScopes: scopes}
		}
		return out
	}
	role := func(scopes ...string) RoleDefinition { return RoleDefinition{AssignableScopes: scopes} }
	half := MaxHSMCustomRoles / 2
	for _, tc := range []struct {
		name     string
		existing []RoleDefinition
		r        RoleDefinition
		pools    []Scope
		refused  bool
	}{
		{"ok/below-limit", roles(MaxHSMCustomRoles-1, p1.String()), role(p1.String()), []Scope{p1}, false},
		{"fail/at-limit", roles(MaxHSMCustomRoles, p1.String()), role(p1.String()), []Scope{p1}, true},
		{"fail/tenant-roles-count", append(roles(half, tn), roles(MaxHSMCustomRoles-half, p1.String())...), role(p1.String()), []Scope{p1}, true},
		{"fail/new-tenant-role", roles(MaxHSMCustomRoles, p1.String()), role(tn), []Scope{p2, p1}, true},
		{"ok/other-pool", roles(MaxHSMCustomRoles, p1.String()), role(p2.String()), []Scope{p1, p2}, false},
		{"ok/vault-role", roles(MaxHSMCustomRoles, tn), role(tn + "/vaults/v"), []Scope{p1}, false},
		{"ok/vault-roles-do-not-count", roles(MaxHSMCustomRoles, tn+"/vaults/v"), role(tn), []Scope{p1}, false},
		{"ok/no-pools", roles(MaxHSMCustomRoles, tn), role(tn), nil, false},
	} {
		err := CheckHSMRoleLimit(tc.existing, tc.r, tc.pools)
		var le *LimitError
		if got := errors.As(err, &le); got != tc.refused || got && le.Code != CodeRoleDefinitionLimit {
			t.Errorf("%s: CheckHSMRoleLimit = %v; want refused %v", tc.name, err, tc.refused)
		}
	}
}
