package server

import (
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestManagementRoleDefinitionDelete: DELETE /v1/tenants/{t}/roleDefinitions/{id} removes a
// custom role no assignment uses; an assigned role is 409, a built-in or malformed id 400,
// another tenant's role 404 (tenants cannot see each other's roles), and nothing changes on
// a refusal.
func TestManagementRoleDefinitionDelete(t *testing.T) {
	ts := startDev(t)
	a, tokA := newTenant(t, ts, "RoleDelA")
	b, tokB := newTenant(t, ts, "RoleDelB")
	A := "/v1/tenants/" + a.Tenant.ID
	var app mgmt.PrincipalCreated
	ts.mjson(t, "POST", A+"/principals", tokA, map[string]string{"displayName": "app"}, 201, &app)
	roleID := tenancy.NewUUID()
	role := map[string]any{"roleName": "Vault reader", "permissions": []map[string]any{{"actions": []string{"Coffer/vaults/read"}}}}
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+roleID, tokA, role, 201, nil)
	assignmentID := tenancy.NewUUID()
	ts.mjson(t, "PUT", A+"/roleAssignments/"+assignmentID, tokA, map[string]string{"principalId": app.ObjectID, "roleDefinitionId": roleID, "scope": "/tenants/" + a.Tenant.ID}, 201, nil)
	count := func() int {
		t.Helper()
		var roles mgmt.List[mgmt.RoleDefinitionDTO]
		ts.mjson(t, "GET", A+"/roleDefinitions", tokA, nil, 200, &roles)
		return len(roles.Value)
	}
	want := len(authz.BuiltInRoles()) + 1
	for _, tc := range []struct {
		name, path, token, code string
		status                  int
	}{
		{"assigned", A + "/roleDefinitions/" + roleID, tokA, "RoleDefinitionHasAssignments", 409},
		{"another tenant's (its path)", A + "/roleDefinitions/" + roleID, tokB, "TenantNotFound", 404},
		{"another tenant's (own path)", "/v1/tenants/" + b.Tenant.ID + "/roleDefinitions/" + roleID, tokB, "NotFound", 404},
		{"built-in", A + "/roleDefinitions/" + authz.CofferTenantAdministratorRoleID, tokA, "BadParameter", 400},
		{"malformed id", A + "/roleDefinitions/not-a-uuid", tokA, "BadParameter", 400},
		{"unknown", A + "/roleDefinitions/" + tenancy.NewUUID(), tokA, "NotFound", 404},
		// Ids match exactly as stored (lower case, as PUT requires), like GET and DELETE of
		// role assignments: an upper-case spelling names no role.
		{"upper-case id", A + "/roleDefinitions/" + strings.ToUpper(roleID), tokA, "NotFound", 404},
		{"upper-case built-in id", A + "/roleDefinitions/" + strings.ToUpper(authz.CofferTenantAdministratorRoleID), tokA, "NotFound", 404},
	} {
		status, raw := ts.mcall(t, "DELETE", tc.path, tc.token, nil)
		if code, _ := kvError(t, raw); status != tc.status || (tc.code != "" && code != tc.code) {
			t.Errorf("DELETE %s role = %d %s; want %d %s", tc.name, status, raw, tc.status, tc.code)
		}
		if n := count(); n != want {
			t.Fatalf("after DELETE %s role the tenant lists %d roles; want %d (nothing removed)", tc.name, n, want)
		}
	}
	ts.mjson(t, "DELETE", A+"/roleAssignments/"+assignmentID, tokA, nil, 200, nil)
	// Unassigned, the role still cannot be deleted through another spelling of its id.
	ts.mjson(t, "DELETE", A+"/roleDefinitions/"+strings.ToUpper(roleID), tokA, nil, 404, nil)
	if n := count(); n != want {
		t.Fatalf("after DELETE of the upper-case id the tenant lists %d roles; want %d (nothing removed)", n, want)
	}
	var gone mgmt.RoleDefinitionDTO
	ts.mjson(t, "DELETE", A+"/roleDefinitions/"+roleID, tokA, nil, 200, &gone)
	if gone.ID != roleID || gone.RoleName != "Vault reader" {
		t.Errorf("DELETE answered %+v; want the deleted role", gone)
	}
	if n := count(); n != want-1 {
		t.Errorf("after the delete the tenant lists %d roles; want %d", n, want-1)
	}
	ts.mjson(t, "DELETE", A+"/roleDefinitions/"+roleID, tokA, nil, 404, nil)
	// The id is free again: a new role may take it.
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+roleID, tokA, role, 201, nil)
}
