package server

import (
	"context"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestManagementRoleScopeKinds: through /v1, a Managed HSM local role is assignable only
// inside a managed HSM pool (the pool or one of its keys) and a Key Vault role only at the
// tenant or inside a vault, as in Azure, where the Managed HSM roles exist only in a pool's
// local RBAC and the Key Vault roles only in Azure RBAC. A refusal is 400 and writes nothing.
func TestManagementRoleScopeKinds(t *testing.T) {
	ts := startDev(t)
	tc, tok := newTenant(t, ts, "RoleScopes")
	T, scope := "/v1/tenants/"+tc.Tenant.ID, "/tenants/"+tc.Tenant.ID
	vault, pool := scope+"/vaults/kindkv", scope+"/managedHsms/kindhsm"
	for _, c := range []string{vault, pool} {
		ts.mjson(t, "PUT", "/v1"+c, tok, map[string]any{}, 201, nil)
	}
	var app mgmt.PrincipalCreated
	ts.mjson(t, "POST", T+"/principals", tok, map[string]string{"displayName": "app"}, 201, &app)
	hsmRoles := []string{"Managed HSM Crypto User", "Managed HSM Administrator", "Managed HSM Crypto Service Release User"}
	vaultRoles := []string{"Key Vault Crypto User", "Key Vault Administrator", "Key Vault Data Access Administrator"}
	type row struct {
		role, at string
		want     int
	}
	var rows []row
	for _, r := range hsmRoles {
		rows = append(rows, row{r, vault, 400}, row{r, vault + "/keys/k1", 400}, row{r, vault + "/secrets/s1", 400}, row{r, scope, 400},
			row{r, pool, 201}, row{r, pool + "/keys/k1", 201})
	}
	for _, r := range vaultRoles {
		rows = append(rows, row{r, pool, 400}, row{r, pool + "/keys/k1", 400},
			row{r, scope, 201}, row{r, vault, 201}, row{r, vault + "/keys/k1", 201}, row{r, vault + "/certificates/c1", 201})
	}
	refused := 0
	for _, r := range rows {
		id := tenancy.NewUUID()
		st, raw := ts.mcall(t, "PUT", T+"/roleAssignments/"+id, tok, map[string]string{"principalId": app.ObjectID, "roleDefinitionId": mustRole(r.role), "scope": r.at})
		if st != r.want {
			t.Errorf("assign %s at %s = %d %s; want %d", r.role, r.at, st, raw, r.want)
			continue
		}
		if r.want == 400 {
			refused++
			if code, msg := kvError(t, raw); code != "BadParameter" || msg == "" {
				t.Errorf("assign %s at %s = %s %q; want BadParameter with a message", r.role, r.at, code, msg)
			}
			ts.mjson(t, "GET", T+"/roleAssignments/"+id, tok, nil, 404, nil) // nothing written
		}
	}
	t.Logf("%d assignments tried, %d refused as the wrong kind of scope", len(rows), refused)
}

// TestStoredHSMRoleOutsidePoolGrantsNothing: a Managed HSM local role assignment stored at
// the tenant or at a vault (before /v1 refused them, or written around /v1, here straight
// into the tenancy store) grants nothing in the tenant's pool: POST /rng, which Managed HSM
// Crypto User allows, is 403 ForbiddenByRbac; the same role stored at the pool allows it.
func TestStoredHSMRoleOutsidePoolGrantsNothing(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	tenantScope := "/tenants/" + c.TenantID
	for _, tc := range []struct {
		at   string
		want int
	}{
		{tenantScope, 403},
		{tenantScope + "/vaults/dev", 403},
		{tenantScope + "/managedHsms/" + devHSMName, 200},
	} {
		p, secret, err := ts.tenants.CreateServicePrincipal(ctx, c.TenantID, "hsm-user")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: p.ObjectID, TenantID: c.TenantID, RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: tc.at}); err != nil {
			t.Fatalf("store Managed HSM Crypto User at %s: %v", tc.at, err)
		}
		st, tok := rawToken(t, ts, hc, c.TenantID, p.AppID, secret, "https://managedhsm.localhost:"+port)
		if st != 200 {
			t.Fatalf("token = %d", st)
		}
		st, _, body := rng(t, hc, devHSMName+".managedhsm.localhost", port, tok)
		if st != tc.want || st == 403 && !strings.Contains(body, "ForbiddenByRbac") {
			t.Errorf("POST /rng with Managed HSM Crypto User stored at %s = %d %s; want %d", tc.at, st, body, tc.want)
		}
	}
}
