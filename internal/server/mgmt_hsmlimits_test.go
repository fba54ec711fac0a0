package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/mgmt"
)

// TestManagementHSMRoleLimits drives /v1 role assignments and custom roles into a managed
// HSM pool: Managed HSM's limits hold there as on the pool's own RBAC API (the two share one
// count), a refusal writes nothing, freeing one makes room for one more, and vault scopes
// have no such limits.
func TestManagementHSMRoleLimits(t *testing.T) {
	ts := startDev(t)
	tc, tok := newTenant(t, ts, "Limits")
	T := "/v1/tenants/" + tc.Tenant.ID
	scope := "/tenants/" + tc.Tenant.ID
	pool, vault := scope+"/managedHsms/limhsm", scope+"/vaults/limkv"
	ts.mjson(t, "PUT", T+"/managedHsms/limhsm", tok, map[string]any{}, 201, nil)
	ts.mjson(t, "PUT", T+"/vaults/limkv", tok, map[string]any{}, 201, nil)
	var app mgmt.PrincipalCreated
	ts.mjson(t, "POST", T+"/principals", tok, map[string]string{"displayName": "app"}, 201, &app)
	cryptoUser, secretsUser := mustRole("Managed HSM Crypto User"), mustRole("Key Vault Secrets User")
	guid := func(group, i int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", group, i) }
	assign := func(id, role, principal, at string) (int, []byte) {
		t.Helper()
		return ts.mcall(t, "PUT", T+"/roleAssignments/"+id, tok, map[string]string{"principalId": principal, "roleDefinitionId": role, "scope": at})
	}
	mustAssign := func(id, role, principal, at string, want int) {
		t.Helper()
		if st, raw := assign(id, role, principal, at); st != want {
			t.Fatalf("PUT roleAssignments/%s at %s = %d %s; want %d", id, at, st, raw, want)
		}
	}
	wantRefused := func(what string, st int, raw []byte, code string) {
		t.Helper()
		if got, msg := kvError(t, raw); st != 400 || got != code || msg == "" {
			t.Errorf("%s = %d %s; want 400 %s with a message", what, st, raw, code)
		}
	}
	assignments := func() map[string]bool {
		t.Helper()
		var l mgmt.List[mgmt.AssignmentDTO]
		ts.mjson(t, "GET", T+"/roleAssignments", tok, nil, 200, &l)
		ids := map[string]bool{}
		for _, a := range l.Value {
			ids[a.ID] = true
		}
		return ids
	}

	// The pool's scope: the administrator's own Managed HSM Administrator assignment (for the
	// pool's RBAC API below) is the first of 50.
	mustAssign(guid(0, 0), mustRole("Managed HSM Administrator"), tc.Administrator.ObjectID, pool, 201)
	for i := 1; i < authz.MaxHSMScopeAssignments; i++ {
		mustAssign(guid(0, i), cryptoUser, app.ObjectID, pool, 201)
	}
	before := assignments()
	st, raw := assign(guid(9, 0), cryptoUser, app.ObjectID, pool)
	wantRefused("the 51st assignment at the pool's scope", st, raw, "RoleAssignmentLimitExceeded")
	if after := assignments(); len(after) != len(before) || after[guid(9, 0)] {
		t.Errorf("after the refusal %d assignments (the refused one listed: %v); want %d, nothing written", len(after), after[guid(9, 0)], len(before))
	}
	ts.mjson(t, "GET", T+"/roleAssignments/"+guid(9, 0), tok, nil, 404, nil)
	mustAssign(guid(0, 1), cryptoUser, app.ObjectID, pool, 200) // the same PUT again is not one more

	// The pool's own RBAC API sees the same 50 (its "/keys" is the pool's scope too).
	hc := loopbackClient(t, ts.caFile)
	_, hsmTok := rawToken(t, ts, hc, tc.Tenant.ID, tc.Administrator.ClientID, tc.Administrator.ClientSecret, "https://managedhsm.localhost:"+ts.resources().port)
	local := mhsmRBAC{t, hc, "https://limhsm.managedhsm.localhost:" + ts.resources().port, hsmTok}
	if st, body := local.assign("/keys", guid(9, 1), cryptoUser, app.ObjectID); st != 400 || errorCode(t, body) != "RoleAssignmentLimitExceeded" {
		t.Errorf("the pool's RBAC API at /keys with 50 made through /v1 = %d %v; want 400 RoleAssignmentLimitExceeded", st, body)
	}

	// Deleting one makes room for exactly one.
	ts.mjson(t, "DELETE", T+"/roleAssignments/"+guid(0, 49), tok, nil, 200, nil)
	mustAssign(guid(9, 0), cryptoUser, app.ObjectID, pool, 201)
	st, raw = assign(guid(9, 2), cryptoUser, app.ObjectID, pool)
	wantRefused("one more after the freed place is taken", st, raw, "RoleAssignmentLimitExceeded")

	// A key's scope: 10, however the key name is spelt; another key has its own 10.
	for i := range authz.MaxHSMKeyAssignments {
		mustAssign(guid(1, i), cryptoUser, app.ObjectID, pool+"/keys/k1", 201)
	}
	st, raw = assign(guid(9, 3), cryptoUser, app.ObjectID, pool+"/keys/K1")
	wantRefused("the 11th assignment at key k1", st, raw, "RoleAssignmentLimitExceeded")
	ts.mjson(t, "GET", T+"/roleAssignments/"+guid(9, 3), tok, nil, 404, nil)
	mustAssign(guid(1, 10), cryptoUser, app.ObjectID, pool+"/keys/k2", 201)

	// Vault scopes have no such limits.
	for i := range authz.MaxHSMScopeAssignments + 1 {
		mustAssign(guid(3, i), secretsUser, app.ObjectID, vault, 201)
	}
	for i := range authz.MaxHSMKeyAssignments + 1 {
		mustAssign(guid(4, i), secretsUser, app.ObjectID, vault+"/secrets/s1", 201)
	}

	// Custom roles: 50 assignable in the pool, whether at the tenant (the default) or at the
	// pool itself; one only assignable at the vault does not count.
	role := func(name string, scopes ...string) map[string]any {
		r := map[string]any{"roleName": name, "permissions": []map[string]any{{"dataActions": []string{string(authz.HSMKeysSign)}}}}
		if scopes != nil {
			r["assignableScopes"] = scopes
		}
		return r
	}
	putRole := func(id string, body map[string]any) (int, []byte) {
		t.Helper()
		return ts.mcall(t, "PUT", T+"/roleDefinitions/"+id, tok, body)
	}
	for i := range authz.MaxHSMCustomRoles {
		var scopes []string
		if i%2 == 1 {
			scopes = []string{pool}
		}
		if st, raw := putRole(guid(2, i), role(fmt.Sprintf("Signer %02d", i), scopes...)); st != 201 {
			t.Fatalf("custom role %d = %d %s; want 201", i, st, raw)
		}
	}
	st, raw = putRole(guid(9, 4), role("Pool signer 51", pool))
	wantRefused("the 51st custom role assignable at the pool", st, raw, "RoleDefinitionLimitExceeded")
	st, raw = putRole(guid(9, 5), role("Tenant signer 51"))
	wantRefused("the 51st custom role assignable at the tenant", st, raw, "RoleDefinitionLimitExceeded")
	var defs mgmt.List[mgmt.RoleDefinitionDTO]
	ts.mjson(t, "GET", T+"/roleDefinitions", tok, nil, 200, &defs)
	for _, d := range defs.Value {
		if d.ID == guid(9, 4) || d.ID == guid(9, 5) {
			t.Errorf("refused custom role %s (%s) was written", d.ID, d.RoleName)
		}
	}
	if st, raw := putRole(guid(2, 50), role("Vault signer", vault)); st != 201 {
		t.Errorf("a custom role assignable only at a vault = %d %s; want 201", st, raw)
	}
	if st, body := local.do("PUT", "/", "/providers/Microsoft.Authorization/roleDefinitions/"+guid(9, 6),
		map[string]any{"properties": map[string]any{"roleName": "Local signer", "permissions": []map[string]any{{"dataActions": []string{string(authz.HSMKeysSign)}}}}}); st != 400 || errorCode(t, body) != "RoleDefinitionLimitExceeded" {
		t.Errorf("a custom role through the pool's RBAC API with 50 made through /v1 = %d %v; want 400 RoleDefinitionLimitExceeded", st, body)
	}
	if st, body := local.do("DELETE", "/", "/providers/Microsoft.Authorization/roleDefinitions/"+guid(2, 0), nil); st != 200 {
		t.Fatalf("delete a custom role through the pool's RBAC API = %d %v; want 200", st, body)
	}
	if st, raw := putRole(guid(9, 4), role("Pool signer 51", pool)); st != 201 {
		t.Errorf("a custom role after one was deleted = %d %s; want 201", st, raw)
	}
	st, raw = putRole(guid(9, 7), role("Pool signer 52", pool))
	wantRefused("one more custom role after the freed place is taken", st, raw, "RoleDefinitionLimitExceeded")
	if !strings.Contains(string(raw), "limhsm") {
		t.Errorf("the refusal %s does not name the pool", raw)
	}
}
