package authz

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	cryptoUserID    = "12338af0-0e69-4776-bea7-57ae8d297424"
	secretsUserID   = "4633458b-17de-408a-b874-0445c86b69e6"
	kvAdminID       = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
	customRoleID    = "9a1e3c52-0d4b-4c8e-9f0e-2f1d6f0b7a11"
	customRoleID2   = "5b6f7e1c-3a2d-4e9f-8c7b-1d0e9f8a7b6c"
	cryptoOfficerID = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
)

func req(principal, tenant string, a Action, scope Scope) Request {
	return Request{PrincipalID: principal, PrincipalTenant: tenant, Action: a, Scope: scope, Now: testNow}
}

func TestDecideObjectScope(t *testing.T) {
	snap, err := NewSnapshot(nil, []Assignment{
		{ID: "a1", PrincipalID: "app", TenantID: "t1", RoleDefinitionID: cryptoUserID, Scope: "/tenants/t1/vaults/v1/keys/k1"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	tests := []struct {
		name   string
		action Action
		scope  string
		want   bool
		reason string
	}{
		{"ok/sign-k1", KeysSign, "/tenants/t1/vaults/v1/keys/k1", true, ReasonGranted},
		{"ok/sign-k1-other-case", KeysSign, "/tenants/t1/vaults/V1/keys/K1", true, ReasonGranted},
		{"ok/read-k1", KeysRead, "/tenants/t1/vaults/v1/keys/k1", true, ReasonGranted},
		{"fail/sign-k2", KeysSign, "/tenants/t1/vaults/v1/keys/k2", false, ReasonNoAssignment},
		{"fail/sign-k10", KeysSign, "/tenants/t1/vaults/v1/keys/k10", false, ReasonNoAssignment},
		{"fail/list-vault", KeysRead, "/tenants/t1/vaults/v1", false, ReasonNoAssignment},
		{"fail/k1-other-vault", KeysSign, "/tenants/t1/vaults/v2/keys/k1", false, ReasonNoAssignment},
		{"fail/delete-k1", KeysDelete, "/tenants/t1/vaults/v1/keys/k1", false, ReasonNoAssignment},
		{"fail/secret-named-k1", SecretsGetSecret, "/tenants/t1/vaults/v1/secrets/k1", false, ReasonNoAssignment},
		{"fail/key-action-on-secret-scope", KeysSign, "/tenants/t1/vaults/v1/secrets/k1", false, ReasonActionScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := snap.Decide(req("app", "t1", tt.action, mustScope(t, tt.scope)))
			if d.Allowed != tt.want || d.Reason != tt.reason {
				t.Errorf("Decide(%s at %s) = %v (%q); want %v (%q)", tt.action, tt.scope, d.Allowed, d.Reason, tt.want, tt.reason)
			}
			if tt.want && (d.AssignmentID != "a1" || d.RoleDefinitionID != cryptoUserID) {
				t.Errorf("Decide(%s at %s) granted by %q/%q; want a1/%s", tt.action, tt.scope, d.AssignmentID, d.RoleDefinitionID, cryptoUserID)
			}
		})
	}
}

func TestMatchAction(t *testing.T) {
	tests := []struct {
		name, pattern, action string
		want                  bool
	}{
		{"ok/exact", "Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/read", true},
		{"ok/case", "microsoft.keyvault/VAULTS/keys/READ", "Microsoft.KeyVault/vaults/keys/read", true},
		{"ok/star", "*", "Microsoft.KeyVault/vaults/keys/read", true},
		{"ok/suffix-star", "Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keys/sign/action", true},
		{"ok/suffix-star-deep", "Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/vaults/secrets/getSecret/action", true},
		{"ok/middle-star", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/certificatecas/read", true},
		{"ok/two-stars", "Microsoft.KeyVault/*/keys/*", "Microsoft.KeyVault/managedHsm/keys/sign/action", true},
		{"ok/partial-segment", "Microsoft.KeyVault/vaults/key*", "Microsoft.KeyVault/vaults/keyrotationpolicies/read", true},
		{"fail/no-implicit-prefix", "Microsoft.KeyVault/vaults/keys", "Microsoft.KeyVault/vaults/keys/read", false},
		{"fail/suffix-star-other-type", "Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/read", false},
		{"fail/middle-star-action", "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", false},
		{"fail/vaults-star-hsm", "Microsoft.KeyVault/vaults/*", "Microsoft.KeyVault/managedHsm/keys/sign/action", false},
		{"fail/longer-pattern", "Microsoft.KeyVault/vaults/keys/read/x", "Microsoft.KeyVault/vaults/keys/read", false},
		{"fail/empty-pattern", "", "Microsoft.KeyVault/vaults/keys/read", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchAction(tt.pattern, tt.action); got != tt.want {
				t.Errorf("matchAction(%q, %q) = %v; want %v", tt.pattern, tt.action, got, tt.want)
			}
		})
	}
}

func TestDecideWildcardAndNotDataActions(t *testing.T) {
	custom := []RoleDefinition{
		{
			ID: customRoleID, Name: "Key operator without purge", Type: RoleTypeCustom,
			Permissions: []Permission{{
				DataActions:    []string{"Microsoft.KeyVault/vaults/keys/*"},
				NotDataActions: []string{"Microsoft.KeyVault/vaults/keys/purge/action", "microsoft.keyvault/vaults/keys/DELETE"},
			}},
			AssignableScopes: []string{"/tenants/t1"},
		},
		{
			// NotDataActions only subtract within their own block: block 2 grants sign back.
			ID: customRoleID2, Name: "Two blocks", Type: RoleTypeCustom,
			Permissions: []Permission{
				{DataActions: []string{"Microsoft.KeyVault/vaults/keys/*"}, NotDataActions: []string{"*/sign/action", "*/verify/action"}},
				{DataActions: []string{"Microsoft.KeyVault/vaults/keys/sign/action"}},
			},
			AssignableScopes: []string{"/"},
		},
	}
	snap, err := NewSnapshot(custom, []Assignment{
		{ID: "a1", PrincipalID: "p1", TenantID: "t1", RoleDefinitionID: customRoleID, Scope: "/tenants/t1/vaults/v1"},
		{ID: "a2", PrincipalID: "p2", TenantID: "t1", RoleDefinitionID: customRoleID2, Scope: "/tenants/t1"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	v1 := mustScope(t, "/tenants/t1/vaults/v1")
	tests := []struct {
		name      string
		principal string
		action    Action
		want      bool
	}{
		{"ok/sign", "p1", KeysSign, true},
		{"ok/create", "p1", KeysCreate, true},
		{"ok/recover", "p1", KeysRecover, true},
		{"fail/purge-excluded", "p1", KeysPurge, false},
		{"fail/delete-excluded-other-case", "p1", KeysDelete, false},
		{"fail/rotation-policy-not-keys", "p1", KeyRotationPolicyWrite, false},
		{"fail/secret", "p1", SecretsGetSecret, false},
		{"fail/management", "p1", VaultsRead, false},
		{"ok/two-blocks-sign", "p2", KeysSign, true},
		{"ok/two-blocks-decrypt", "p2", KeysDecrypt, true},
		{"fail/two-blocks-verify", "p2", KeysVerify, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := snap.Decide(req(tt.principal, "t1", tt.action, v1)); d.Allowed != tt.want {
				t.Errorf("Decide(%s, %s) = %v (%s); want %v", tt.principal, tt.action, d.Allowed, d.Reason, tt.want)
			}
		})
	}
}

func TestDecideTimeBounds(t *testing.T) {
	start := testNow
	end := start.Add(time.Hour)
	snap, err := NewSnapshot(nil, []Assignment{
		{ID: "jit", PrincipalID: "eng", TenantID: "t1", RoleDefinitionID: secretsUserID, Scope: "/tenants/t1/vaults/v1", NotBefore: start, ExpiresAt: end},
		{ID: "open-start", PrincipalID: "eng2", TenantID: "t1", RoleDefinitionID: secretsUserID, Scope: "/tenants/t1/vaults/v1", ExpiresAt: end},
		{ID: "open-end", PrincipalID: "eng3", TenantID: "t1", RoleDefinitionID: secretsUserID, Scope: "/tenants/t1/vaults/v1", NotBefore: start},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	v1 := mustScope(t, "/tenants/t1/vaults/v1")
	tests := []struct {
		name      string
		principal string
		now       time.Time
		want      bool
		reason    string
	}{
		{"fail/before-start", "eng", start.Add(-time.Nanosecond), false, ReasonNotActive},
		{"ok/at-start", "eng", start, true, ReasonGranted},
		{"ok/just-before-end", "eng", end.Add(-time.Nanosecond), true, ReasonGranted},
		{"fail/at-end", "eng", end, false, ReasonNotActive},
		{"fail/after-end", "eng", end.Add(24 * time.Hour), false, ReasonNotActive},
		{"fail/no-time", "eng", time.Time{}, false, ReasonNoTime},
		{"ok/open-start-long-ago", "eng2", start.Add(-24 * 365 * time.Hour), true, ReasonGranted},
		{"fail/open-start-expired", "eng2", end, false, ReasonNotActive},
		{"ok/open-end-far-future", "eng3", start.Add(24 * 365 * time.Hour), true, ReasonGranted},
		{"fail/open-end-not-yet", "eng3", start.Add(-time.Second), false, ReasonNotActive},
		{"ok/other-zone-same-instant", "eng", start.In(time.FixedZone("x", -7*3600)), true, ReasonGranted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(tt.principal, "t1", SecretsGetSecret, v1)
			r.Now = tt.now
			if d := snap.Decide(r); d.Allowed != tt.want || d.Reason != tt.reason {
				t.Errorf("Decide at %v = %v (%q); want %v (%q)", tt.now, d.Allowed, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestCrossTenant(t *testing.T) {
	// NewSnapshot rejects an assignment of a tenant-B principal at a tenant-A scope.
	_, err := NewSnapshot(nil, []Assignment{
		{ID: "x", PrincipalID: "mallory", TenantID: "tB", RoleDefinitionID: kvAdminID, Scope: "/tenants/tA/vaults/v1"},
	})
	if !errors.Is(err, ErrCrossTenant) {
		t.Fatalf("NewSnapshot(cross-tenant assignment) = %v; want ErrCrossTenant", err)
	}

	// A Snapshot built by hand with such grants still refuses them.
	var all actionSet
	for i := range vocabulary {
		all.add(i)
	}
	snap := &Snapshot{byPrincipal: map[principalKey][]grant{
		{"tB", "mallory"}: {{id: "forged", roleID: kvAdminID, tenant: "tB", scope: mustScope(t, "/tenants/tA"), grants: all}},
		// Filed under tenant tA but belonging to tB.
		{"tA", "mallory"}: {{id: "misfiled", roleID: kvAdminID, tenant: "tB", scope: mustScope(t, "/tenants/tA"), grants: all}},
		// Filed under its own tenant, with a scope of another.
		{"tC", "eve"}: {{id: "wrong-scope", roleID: kvAdminID, tenant: "tC", scope: mustScope(t, "/tenants/tA"), grants: all}},
	}}
	tests := []struct {
		name, principal, tenant, scope string
		reason                         string
	}{
		{"fail/forged-grant", "mallory", "tB", "/tenants/tA/vaults/v1", ReasonCrossTenant},
		{"fail/claims-other-tenant", "mallory", "tA", "/tenants/tA/vaults/v1", ReasonNoAssignment},
		{"fail/grant-scope-of-other-tenant", "eve", "tC", "/tenants/tA/vaults/v1", ReasonCrossTenant},
		{"fail/same-names-other-tenant", "eve", "tC", "/tenants/tC/vaults/v1", ReasonNoAssignment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, a := range AllDataActions() {
				sc := mustScope(t, tt.scope)
				if strings.HasPrefix(string(a), hsmPrefix) {
					sc = mustScope(t, strings.Replace(tt.scope, "/vaults/", "/managedHsms/", 1))
				}
				d := snap.Decide(req(tt.principal, tt.tenant, a, sc))
				if d.Allowed || d.Reason != tt.reason {
					t.Fatalf("Decide(%s as %s/%s at %s) = %v (%q); want denied (%q)", a, tt.tenant, tt.principal, sc, d.Allowed, d.Reason, tt.reason)
				}
			}
		})
	}

	// Platform-scope assignments reach only the principal's own tenant.
	snap2, err := NewSnapshot(nil, []Assignment{
		{ID: "root", PrincipalID: "admin", TenantID: "tB", RoleDefinitionID: kvAdminID, Scope: "/"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	if d := snap2.Decide(req("admin", "tB", KeysRead, mustScope(t, "/tenants/tA/vaults/v1"))); d.Allowed {
		t.Errorf("platform-scope assignment of tenant tB allowed a read in tenant tA")
	}
	if d := snap2.Decide(req("admin", "tB", KeysRead, mustScope(t, "/tenants/tB/vaults/v1"))); !d.Allowed {
		t.Errorf("platform-scope assignment of tenant tB denied a read in tenant tB: %s", d.Reason)
	}
}

func TestCustomRoles(t *testing.T) {
	roles := []RoleDefinition{
		{
			ID: customRoleID, Name: "Vault auditor", Description: "reads key metadata and vault settings", Type: RoleTypeCustom,
			Permissions: []Permission{{
				Actions:     []string{"Coffer/vaults/read", "Coffer/audit/read"},
				DataActions: []string{"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"},
			}},
			AssignableScopes: []string{"/tenants/t1"},
		},
		{
			ID: customRoleID2, Name: "Everything", Type: RoleTypeCustom,
			Permissions:      []Permission{{Actions: []string{"*"}}},
			AssignableScopes: []string{"/tenants/t1"},
		},
	}
	snap, err := NewSnapshot(roles, []Assignment{
		{ID: "a1", PrincipalID: "aud", TenantID: "t1", RoleDefinitionID: strings.ToUpper(customRoleID), Scope: "/tenants/t1/vaults/v1"},
		{ID: "a2", PrincipalID: "all", TenantID: "t1", RoleDefinitionID: customRoleID2, Scope: "/tenants/t1"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	// Changing the inputs afterwards changes nothing.
	roles[0].Permissions[0].DataActions[0] = "*"
	v1 := mustScope(t, "/tenants/t1/vaults/v1")
	tests := []struct {
		name      string
		principal string
		action    Action
		scope     Scope
		want      bool
	}{
		{"ok/key-read", "aud", KeysRead, v1, true},
		{"ok/metadata", "aud", SecretsReadMetadata, v1, true},
		{"ok/management", "aud", VaultsRead, v1, true},
		{"fail/secret-value", "aud", SecretsGetSecret, v1, false},
		{"fail/sign", "aud", KeysSign, v1, false},
		{"fail/other-vault", "aud", KeysRead, mustScope(t, "/tenants/t1/vaults/v2"), false},
		{"ok/actions-star-management", "all", RoleAssignmentsWrite, v1, true},
		{"fail/actions-star-no-data", "all", SecretsGetSecret, v1, false},
		{"fail/actions-star-no-sys-below-platform", "all", SysSeal, PlatformScope(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := snap.Decide(req(tt.principal, "t1", tt.action, tt.scope)); d.Allowed != tt.want {
				t.Errorf("Decide(%s, %s at %s) = %v (%s); want %v", tt.principal, tt.action, tt.scope, d.Allowed, d.Reason, tt.want)
			}
		})
	}
	if r, ok := snap.Role(customRoleID); !ok || r.Name != "Vault auditor" || r.Permissions[0].DataActions[0] == "*" {
		t.Errorf("Snapshot.Role(%q) = %+v, %v; want the role as given to NewSnapshot", customRoleID, r, ok)
	}
	if _, ok := snap.Role(kvAdminID); !ok {
		t.Errorf("Snapshot.Role(%q) = false; want the built-in role", kvAdminID)
	}
	if snap.Len() != 2 {
		t.Errorf("Snapshot.Len() = %d; want 2", snap.Len())
	}
}

func TestNewSnapshotInvalid(t *testing.T) {
	good := RoleDefinition{
		ID: customRoleID, Name: "Custom", Type: RoleTypeCustom,
		Permissions:      []Permission{{DataActions: []string{"Microsoft.KeyVault/vaults/keys/read"}}},
		AssignableScopes: []string{"/tenants/t1"},
	}
	with := func(f func(*RoleDefinition)) RoleDefinition {
		r := good.clone()
		f(&r)
		return r
	}
	changedAdmin, _ := RoleByID(kvAdminID)
	changedAdmin.Permissions[0].DataActions = []string{"*"}
	asg := func(f func(*Assignment)) []Assignment {
		a := Assignment{ID: "a1", PrincipalID: "p", TenantID: "t1", RoleDefinitionID: cryptoUserID, Scope: "/tenants/t1/vaults/v1"}
		f(&a)
		return []Assignment{a}
	}
	tests := []struct {
		name        string
		roles       []RoleDefinition
		assignments []Assignment
		want        error // nil means NewSnapshot must succeed
	}{
		{"ok/empty", nil, nil, nil},
		{"ok/builtins-again", BuiltInRoles(), asg(func(*Assignment) {}), nil},
		{"ok/custom", []RoleDefinition{good}, asg(func(a *Assignment) { a.RoleDefinitionID = customRoleID }), nil},
		{"ok/jit", nil, asg(func(a *Assignment) { a.NotBefore, a.ExpiresAt = testNow, testNow.Add(time.Minute) }), nil},
		{"fail/unknown-role", nil, asg(func(a *Assignment) { a.RoleDefinitionID = customRoleID }), ErrUnknownRole},
		{"fail/empty-role", nil, asg(func(a *Assignment) { a.RoleDefinitionID = "" }), ErrUnknownRole},
		{"fail/bad-scope", nil, asg(func(a *Assignment) { a.Scope = "/tenants/t1/vaults/" }), ErrInvalidScope},
		{"fail/empty-scope", nil, asg(func(a *Assignment) { a.Scope = "" }), ErrInvalidScope},
		{"fail/cross-tenant", nil, asg(func(a *Assignment) { a.TenantID = "t2" }), ErrCrossTenant},
		{"fail/empty-id", nil, asg(func(a *Assignment) { a.ID = "" }), ErrInvalidAssignment},
		{"fail/empty-principal", nil, asg(func(a *Assignment) { a.PrincipalID = "" }), ErrInvalidAssignment},
		{"fail/empty-tenant", nil, asg(func(a *Assignment) { a.TenantID = "" }), ErrInvalidAssignment},
		{"fail/expires-before-start", nil, asg(func(a *Assignment) { a.NotBefore, a.ExpiresAt = testNow, testNow.Add(-time.Second) }), ErrInvalidAssignment},
		{"fail/expires-at-start", nil, asg(func(a *Assignment) { a.NotBefore, a.ExpiresAt = testNow, testNow }), ErrInvalidAssignment},
		{"fail/duplicate-assignment-id", nil, append(asg(func(*Assignment) {}), asg(func(a *Assignment) { a.PrincipalID = "q" })...), ErrInvalidAssignment},
		{"fail/scope-not-assignable", []RoleDefinition{good}, asg(func(a *Assignment) {
			a.RoleDefinitionID, a.TenantID, a.Scope = customRoleID, "t2", "/tenants/t2/vaults/v1"
		}), ErrScopeNotAllowed},
		{"fail/custom-at-platform", []RoleDefinition{good}, asg(func(a *Assignment) { a.RoleDefinitionID, a.Scope = customRoleID, "/" }), ErrScopeNotAllowed},
		{"fail/role-id-not-uuid", []RoleDefinition{with(func(r *RoleDefinition) { r.ID = "my-role" })}, nil, ErrInvalidRole},
		{"fail/role-no-name", []RoleDefinition{with(func(r *RoleDefinition) { r.Name = " " })}, nil, ErrInvalidRole},
		{"fail/role-bad-type", []RoleDefinition{with(func(r *RoleDefinition) { r.Type = "AKVBuiltInRole" })}, nil, ErrInvalidRole},
		{"fail/role-builtin-type", []RoleDefinition{with(func(r *RoleDefinition) { r.Type = RoleTypeBuiltIn })}, nil, ErrInvalidRole},
		{"fail/role-builtin-name", []RoleDefinition{with(func(r *RoleDefinition) { r.Name = "key vault administrator" })}, nil, ErrInvalidRole},
		{"fail/role-no-permissions", []RoleDefinition{with(func(r *RoleDefinition) { r.Permissions = nil })}, nil, ErrInvalidRole},
		{"fail/role-bad-pattern", []RoleDefinition{with(func(r *RoleDefinition) {
			r.Permissions[0].DataActions = []string{"Microsoft.KeyVault/vaults/keys/read "}
		})}, nil, ErrInvalidRole},
		{"fail/role-empty-pattern", []RoleDefinition{with(func(r *RoleDefinition) { r.Permissions[0].NotActions = []string{""} })}, nil, ErrInvalidRole},
		{"fail/role-no-scopes", []RoleDefinition{with(func(r *RoleDefinition) { r.AssignableScopes = nil })}, nil, ErrInvalidRole},
		{"fail/role-bad-scope", []RoleDefinition{with(func(r *RoleDefinition) { r.AssignableScopes = []string{"/keys"} })}, nil, ErrInvalidRole},
		{"fail/role-duplicate-id", []RoleDefinition{good, with(func(r *RoleDefinition) { r.Name = "Other" })}, nil, ErrDuplicateRole},
		{"fail/builtin-redefined", []RoleDefinition{changedAdmin}, nil, ErrDuplicateRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := NewSnapshot(tt.roles, tt.assignments)
			if tt.want == nil {
				if err != nil || snap == nil {
					t.Fatalf("NewSnapshot() = %v, %v; want a Snapshot", snap, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || snap != nil {
				t.Errorf("NewSnapshot() = %v, %v; want nil, %v", snap, err, tt.want)
			}
		})
	}

	// Every problem is reported, not only the first.
	_, err := NewSnapshot(nil, []Assignment{
		{ID: "one", PrincipalID: "p", TenantID: "t1", RoleDefinitionID: "nope", Scope: "/tenants/t1"},
		{ID: "two", PrincipalID: "p", TenantID: "t2", RoleDefinitionID: kvAdminID, Scope: "/tenants/t1"},
	})
	if !errors.Is(err, ErrUnknownRole) || !errors.Is(err, ErrCrossTenant) || !strings.Contains(err.Error(), `"one"`) || !strings.Contains(err.Error(), `"two"`) {
		t.Errorf("NewSnapshot(two bad assignments) = %v; want both reported", err)
	}
}

func TestDecideRequestChecks(t *testing.T) {
	snap, err := NewSnapshot(nil, []Assignment{
		{ID: "a1", PrincipalID: "p", TenantID: "t1", RoleDefinitionID: cryptoOfficerID, Scope: "/tenants/t1"},
		{ID: "op", PrincipalID: "op", TenantID: "ops", RoleDefinitionID: CofferPlatformOperatorRoleID, Scope: "/"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	v1 := mustScope(t, "/tenants/t1/vaults/v1")
	tests := []struct {
		name   string
		snap   *Snapshot
		req    Request
		want   bool
		reason string
	}{
		{"ok/canonical", snap, req("p", "t1", KeysSign, v1), true, ReasonGranted},
		{"ok/action-other-case", snap, req("p", "t1", "MICROSOFT.KEYVAULT/vaults/keys/sign/action", v1), true, ReasonGranted},
		{"ok/operator-seal", snap, req("op", "ops", SysSeal, PlatformScope()), true, ReasonGranted},
		{"fail/nil-snapshot", nil, req("p", "t1", KeysSign, v1), false, ReasonNoSnapshot},
		{"fail/zero-scope", snap, req("p", "t1", KeysSign, Scope{}), false, ReasonInvalidScope},
		{"fail/unknown-action", snap, req("p", "t1", "Microsoft.KeyVault/vaults/keys/frobnicate/action", v1), false, ReasonUnknownAction},
		{"fail/wildcard-as-action", snap, req("p", "t1", "Microsoft.KeyVault/vaults/keys/*", v1), false, ReasonUnknownAction},
		{"fail/empty-action", snap, req("p", "t1", "", v1), false, ReasonUnknownAction},
		{"fail/vault-action-on-tenant", snap, req("p", "t1", KeysSign, mustScope(t, "/tenants/t1")), false, ReasonActionScope},
		{"fail/vault-action-on-hsm", snap, req("p", "t1", KeysSign, mustScope(t, "/tenants/t1/managedHsms/v1")), false, ReasonActionScope},
		{"fail/hsm-action-on-vault", snap, req("p", "t1", HSMKeysSign, v1), false, ReasonActionScope},
		{"fail/issuer-action-on-certificate", snap, req("p", "t1", CertificateIssuersRead, mustScope(t, "/tenants/t1/vaults/v1/certificates/c")), false, ReasonActionScope},
		{"fail/sys-on-tenant", snap, req("op", "ops", SysSeal, mustScope(t, "/tenants/ops")), false, ReasonActionScope},
		{"fail/no-principal", snap, req("", "t1", KeysSign, v1), false, ReasonNoPrincipal},
		{"fail/no-tenant", snap, req("p", "", KeysSign, v1), false, ReasonNoPrincipal},
		{"fail/other-principal", snap, req("q", "t1", KeysSign, v1), false, ReasonNoAssignment},
		{"fail/operator-in-tenant", snap, req("op", "ops", TenantsRead, mustScope(t, "/tenants/t1")), false, ReasonCrossTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.snap.Decide(tt.req)
			if d.Allowed != tt.want || d.Reason != tt.reason {
				t.Errorf("Decide(%+v) = %v (%q); want %v (%q)", tt.req, d.Allowed, d.Reason, tt.want, tt.reason)
			}
			if !d.Allowed && (d.AssignmentID != "" || d.RoleDefinitionID != "") {
				t.Errorf("denied Decision names assignment %q / role %q", d.AssignmentID, d.RoleDefinitionID)
			}
		})
	}
}

func TestDecisionMessage(t *testing.T) {
	snap, err := NewSnapshot(nil, nil)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	d := snap.Decide(req("4f584d72", "t1", SecretsGetSecret, mustScope(t, "/tenants/t1/vaults/Prod/secrets/db")))
	want := "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: oid=4f584d72;tid=t1\r\n" +
		"Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n" +
		"Resource: '/tenants/t1/vaults/prod/secrets/db'\r\n" +
		"Assignment: (not found)\r\n" +
		"DenyAssignmentId: null\r\n" +
		"DecisionReason: null \r\n" +
		"Vault: prod;location=coffer\r\n"
	if got := d.Message(); got != want {
		t.Errorf("Message() = %q; want %q", got, want)
	}

	r := req("x", "t1", HSMKeysSign, mustScope(t, "/tenants/t1/managedHsms/h1/keys/k"))
	r.Caller = "appid=a;oid=x;iss=https://coffer.test/t1/"
	got := snap.Decide(r).Message()
	if !strings.Contains(got, "Caller: appid=a;oid=x;iss=https://coffer.test/t1/\r\n") || strings.Contains(got, "Vault:") {
		t.Errorf("Message() for an HSM key = %q; want the given caller and no Vault line", got)
	}

	snap2, err := NewSnapshot(nil, []Assignment{{ID: "a", PrincipalID: "p", TenantID: "t1", RoleDefinitionID: secretsUserID, Scope: "/tenants/t1"}})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	if m := snap2.Decide(req("p", "t1", SecretsGetSecret, mustScope(t, "/tenants/t1/vaults/v"))).Message(); m != "" {
		t.Errorf("Message() of an allowed Decision = %q; want \"\"", m)
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	snap, err := NewSnapshot(nil, []Assignment{
		{ID: "a1", PrincipalID: "p", TenantID: "t1", RoleDefinitionID: cryptoUserID, Scope: "/tenants/t1/vaults/v1"},
	})
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	allow := req("p", "t1", KeysSign, mustScope(t, "/tenants/t1/vaults/v1/keys/k1"))
	deny := req("p", "t1", "microsoft.keyvault/vaults/keys/PURGE/action", mustScope(t, "/tenants/t1/vaults/v1/keys/k1"))
	if n := testing.AllocsPerRun(100, func() { snap.Decide(allow); snap.Decide(deny) }); n != 0 {
		t.Errorf("Decide allocates %v times per call pair; want 0", n)
	}
}

// TestDecideIgnoresBuiltInRoleOfOtherContainer: a Managed HSM local role assigned at the
// tenant or at a vault (written before /v1 refused it, or around it) grants nothing, not
// even in the tenant's pools below it; the same role at a pool or one of its keys grants as
// before. (A Key Vault role in a pool grants nothing either: its actions are vault actions.)
func TestDecideIgnoresBuiltInRoleOfOtherContainer(t *testing.T) {
	hsmUser, ok := RoleByName("Managed HSM Crypto User")
	if !ok {
		t.Fatal("no built-in Managed HSM Crypto User")
	}
	pool, key := "/tenants/t1/managedHsms/p1", "/tenants/t1/managedHsms/p1/keys/k1"
	for _, tc := range []struct {
		name, at string
		want     bool
	}{
		{"fail/platform", "/", false},
		{"fail/tenant", "/tenants/t1", false},
		{"fail/vault", "/tenants/t1/vaults/v1", false},
		{"fail/vault-key", "/tenants/t1/vaults/v1/keys/k1", false},
		{"ok/pool", pool, true},
		{"ok/pool-key", key, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := NewSnapshot(nil, []Assignment{{ID: "a1", PrincipalID: "app", TenantID: "t1", RoleDefinitionID: hsmUser.ID, Scope: tc.at}})
			if err != nil {
				t.Fatalf("NewSnapshot with %s at %s = %v; want it built (the assignment is ignored, not refused)", hsmUser.Name, tc.at, err)
			}
			for _, a := range []Action{HSMKeysEncrypt, HSMKeysRead} {
				if d := snap.Decide(req("app", "t1", a, mustScope(t, key))); d.Allowed != tc.want {
					t.Errorf("%s at %s: Decide(%s at %s) = %v (%q); want %v", hsmUser.Name, tc.at, a, key, d.Allowed, d.Reason, tc.want)
				}
			}
		})
	}
}
