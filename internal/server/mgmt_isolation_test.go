package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestManagementCrossTenantEveryRoute is the tenant isolation matrix of the management API:
// every /v1/tenants/{tenant}/… route the server mounts × {tenant B's administrator, a
// principal of A without roles, one of A with the strongest data roles on A's vault and pool
// (which grant no management action)} × {an object that exists in A, one that does not}.
// B gets 404 TenantNotFound, byte for byte the answer for a tenant that does not exist; A's
// principals get 403; and the answers for the existing and the missing object are identical
// but for the name.
func TestManagementCrossTenantEveryRoute(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	a, tokA := newTenant(t, ts, "IsoA")
	_, tokB := newTenant(t, ts, "IsoB")
	A := "/v1/tenants/" + a.Tenant.ID
	ts.mjson(t, "PUT", A+"/vaults/isokv1", tokA, map[string]any{}, 201, nil)
	ts.mjson(t, "PUT", A+"/managedHsms/isohsm1", tokA, map[string]any{}, 201, nil)
	var app mgmt.PrincipalCreated
	ts.mjson(t, "POST", A+"/principals", tokA, map[string]string{"displayName": "iso-app"}, 201, &app)
	assignmentID, roleID := tenancy.NewUUID(), tenancy.NewUUID()
	ts.mjson(t, "PUT", A+"/roleAssignments/"+assignmentID, tokA, map[string]string{"principalId": app.ObjectID, "roleDefinitionId": mustRole("Key Vault Reader"), "scope": "/tenants/" + a.Tenant.ID + "/vaults/isokv1"}, 201, nil)
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+roleID, tokA, map[string]any{"roleName": "iso reader", "permissions": []map[string]any{{"actions": []string{"Coffer/vaults/read"}}}}, 201, nil)
	issuer, err := ts.tenants.CreateIssuer(ctx, a.Tenant.ID, "https://idp.example/iso/v2.0", "api://iso")
	if err != nil {
		t.Fatal(err)
	}
	// exists and missing values of each path parameter, by the collection it names; missing
	// ones have the existing one's length.
	exists := map[string]string{"vaults": "isokv1", "managedHsms": "isohsm1", "principals": app.ObjectID, "roleAssignments": assignmentID,
		"roleDefinitions": roleID, "issuers": issuer.ID, "accessRequests": tenancy.NewUUID(), "attestationProviders": "isoatt1"}
	missing := map[string]string{"vaults": "isokv2", "managedHsms": "isohsm2", "principals": tenancy.NewUUID(), "roleAssignments": tenancy.NewUUID(),
		"roleDefinitions": tenancy.NewUUID(), "issuers": tenancy.NewUUID(), "accessRequests": tenancy.NewUUID(), "attestationProviders": "isoatt2"}

	inTenant := func(name string, roles ...[2]string) string {
		p, secret, err := ts.tenants.CreateServicePrincipal(ctx, a.Tenant.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: p.ObjectID, TenantID: a.Tenant.ID, RoleDefinitionID: mustRole(r[0]), Scope: r[1]}); err != nil {
				t.Fatal(err)
			}
		}
		st, tok := rawToken(t, ts, ts.client, a.Tenant.ID, p.AppID, secret, ts.resources().Base())
		if st != 200 {
			t.Fatalf("token for %s = %d", name, st)
		}
		return tok
	}
	sc := "/tenants/" + a.Tenant.ID
	attackers := []struct {
		name, tok string
		want      int
	}{
		{"other-tenant-admin", tokB, 404},
		{"no-role", inTenant("iso-no-role"), 403},
		{"data-roles-only", inTenant("iso-data", [2]string{"Key Vault Administrator", sc}, [2]string{"Managed HSM Administrator", sc + "/managedHsms/isohsm1"}), 403},
	}
	ghost := "/v1/tenants/" + tenancy.NewUUID()
	var routes, requests, deviations int
	for _, rt := range ts.routes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		if !strings.HasPrefix(pattern, "/v1/tenants/{tenant}") {
			continue
		}
		routes++
		fill := func(tenant string, values map[string]string) (string, string) {
			segs := strings.Split(strings.TrimPrefix(pattern, "/v1/tenants/{tenant}"), "/")
			name := ""
			for i, s := range segs {
				if strings.HasPrefix(s, "{") && i > 0 {
					segs[i], name = values[segs[i-1]], values[segs[i-1]]
				}
			}
			return tenant + strings.Join(segs, "/"), name
		}
		for _, at := range attackers {
			var seen [2]string
			for i, values := range []map[string]string{exists, missing} {
				p, name := fill(A, values)
				st, raw := ts.mcall(t, method, p, at.tok, map[string]any{})
				requests++
				if st != at.want {
					deviations++
					t.Errorf("%s: %s %s = %d %s; want %d", at.name, method, p, st, raw, at.want)
				}
				seen[i] = comparable(isoCall{st, string(raw), http.Header{}}, name)
				if at.want == 404 {
					g, _ := fill(ghost, values)
					sg, rg := ts.mcall(t, method, g, at.tok, map[string]any{})
					requests++
					if sg != st || string(rg) != string(raw) {
						deviations++
						t.Errorf("%s: %s %s = %d %s; on a tenant that does not exist %d %s; want identical", at.name, method, p, st, raw, sg, rg)
					}
				}
			}
			if seen[0] != seen[1] {
				deviations++
				t.Errorf("%s: %s %s: the existing object's answer differs from the missing one's:\n%s\n--- vs ---\n%s", at.name, method, pattern, seen[0], seen[1])
			}
		}
	}
	if _, err := ts.tenants.Vault(ctx, tenancy.KindVault, "isokv2"); err == nil {
		t.Error("an attacker created a vault in tenant A")
	}
	t.Logf("management isolation: %d /v1/tenants/{tenant} routes × %d attackers × {exists, missing} = %d requests (with the other tenant's against a missing tenant), %d deviations",
		routes, len(attackers), requests, deviations)
}
