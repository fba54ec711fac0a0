package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// publishedOperations is the data action Key Vault checks for each data-plane operation,
// by the kind of store: for vaults the permission each operation's description names in the
// Key Vault REST spec (keys.json, secrets.json, certificates.json, 2025-07-01: "This
// operation requires the keys/sign permission"), translated to its RBAC data action by
// Azure's access-policy-to-RBAC table (rbac-migration.md: get/list → read, or for secrets
// getSecret/readMetadata; getrotationpolicy/setrotationpolicy → keyrotationpolicies/read,
// write; getissuers/setissuers/deleteissuers → certificatecas/read, write, delete;
// managecontacts → certificatecontacts/write, which the spec also names for GET contacts,
// where Coffer follows the RBAC table's read: certificates/read); for pools the Managed HSM
// data action of the operation in administration.json and the Managed HSM built-in roles
// doc. Actions are relative to Microsoft.KeyVault/vaults/ or Microsoft.KeyVault/managedHsm/.
const publishedOperations = `
vault POST /keys/{name}/create keys/create/action
vault PUT /keys/{name} keys/import/action
vault GET /keys/{name} keys/read
vault GET /keys/{name}/{version} keys/read
vault PATCH /keys/{name} keys/update/action
vault PATCH /keys/{name}/{version} keys/update/action
vault GET /keys keys/read
vault GET /keys/{name}/versions keys/read
vault DELETE /keys/{name} keys/delete
vault GET /deletedkeys keys/read
vault GET /deletedkeys/{name} keys/read
vault DELETE /deletedkeys/{name} keys/purge/action
vault POST /deletedkeys/{name}/recover keys/recover/action
vault POST /keys/{name}/backup keys/backup/action
vault POST /keys/restore keys/restore/action
vault POST /keys/{name}/rotate keys/rotate/action
vault GET /keys/{name}/rotationpolicy keyrotationpolicies/read
vault PUT /keys/{name}/rotationpolicy keyrotationpolicies/write
vault POST /keys/{name}/{version}/sign keys/sign/action
vault POST /keys/{name}/sign keys/sign/action
vault POST /keys/{name}/{version}/verify keys/verify/action
vault POST /keys/{name}/verify keys/verify/action
vault POST /keys/{name}/{version}/encrypt keys/encrypt/action
vault POST /keys/{name}/encrypt keys/encrypt/action
vault POST /keys/{name}/{version}/decrypt keys/decrypt/action
vault POST /keys/{name}/decrypt keys/decrypt/action
vault POST /keys/{name}/{version}/wrapkey keys/wrap/action
vault POST /keys/{name}/wrapkey keys/wrap/action
vault POST /keys/{name}/{version}/unwrapkey keys/unwrap/action
vault POST /keys/{name}/unwrapkey keys/unwrap/action
vault POST /keys/{name}/{version}/release keys/release/action
vault POST /keys/{name}/release keys/release/action
vault PUT /secrets/{name} secrets/setSecret/action
vault GET /secrets/{name} secrets/getSecret/action
vault GET /secrets/{name}/{version} secrets/getSecret/action
vault PATCH /secrets/{name} secrets/update/action
vault PATCH /secrets/{name}/{version} secrets/update/action
vault GET /secrets secrets/readMetadata/action
vault GET /secrets/{name}/versions secrets/readMetadata/action
vault DELETE /secrets/{name} secrets/delete
vault GET /deletedsecrets secrets/readMetadata/action
vault GET /deletedsecrets/{name} secrets/readMetadata/action
vault DELETE /deletedsecrets/{name} secrets/purge/action
vault POST /deletedsecrets/{name}/recover secrets/recover/action
vault POST /secrets/{name}/backup secrets/backup/action
vault POST /secrets/restore secrets/restore/action
vault POST /certificates/{name}/create certificates/create/action
vault POST /certificates/{name}/import certificates/import/action
vault GET /certificates/{name} certificates/read
vault GET /certificates/{name}/{version} certificates/read
vault PATCH /certificates/{name} certificates/update/action
vault PATCH /certificates/{name}/{version} certificates/update/action
vault GET /certificates certificates/read
vault GET /certificates/{name}/versions certificates/read
vault GET /certificates/{name}/policy certificates/read
vault PATCH /certificates/{name}/policy certificates/update/action
vault GET /certificates/{name}/pending certificates/read
vault PATCH /certificates/{name}/pending certificates/update/action
vault DELETE /certificates/{name}/pending certificates/update/action
vault POST /certificates/{name}/pending/merge certificates/create/action
vault DELETE /certificates/{name} certificates/delete
vault GET /deletedcertificates certificates/read
vault GET /deletedcertificates/{name} certificates/read
vault DELETE /deletedcertificates/{name} certificates/purge/action
vault POST /deletedcertificates/{name}/recover certificates/recover/action
vault POST /certificates/{name}/backup certificates/backup/action
vault POST /certificates/restore certificates/restore/action
vault GET /certificates/contacts certificates/read
vault PUT /certificates/contacts certificatecontacts/write
vault DELETE /certificates/contacts certificatecontacts/write
vault GET /certificateissuers certificatecas/read
vault GET /certificateissuers/{name} certificatecas/read
vault PUT /certificateissuers/{name} certificatecas/write
vault PATCH /certificateissuers/{name} certificatecas/write
vault DELETE /certificateissuers/{name} certificatecas/delete
managedHsm POST /rng rng/action
managedHsm POST /keys/{name}/create keys/create
managedHsm PUT /keys/{name} keys/import/action
managedHsm GET /keys/{name} keys/read/action
managedHsm GET /keys/{name}/{version} keys/read/action
managedHsm PATCH /keys/{name} keys/write/action
managedHsm PATCH /keys/{name}/{version} keys/write/action
managedHsm GET /keys keys/read/action
managedHsm GET /keys/{name}/versions keys/read/action
managedHsm DELETE /keys/{name} keys/delete
managedHsm GET /deletedkeys keys/deletedKeys/read/action
managedHsm GET /deletedkeys/{name} keys/deletedKeys/read/action
managedHsm DELETE /deletedkeys/{name} keys/deletedKeys/delete
managedHsm POST /deletedkeys/{name}/recover keys/deletedKeys/recover/action
managedHsm POST /keys/{name}/backup keys/backup/action
managedHsm POST /keys/restore keys/restore/action
managedHsm POST /keys/{name}/rotate keys/rotate/action
managedHsm GET /keys/{name}/rotationpolicy keys/read/action
managedHsm PUT /keys/{name}/rotationpolicy keys/write/action
managedHsm POST /keys/{name}/{version}/sign keys/sign/action
managedHsm POST /keys/{name}/sign keys/sign/action
managedHsm POST /keys/{name}/{version}/verify keys/verify/action
managedHsm POST /keys/{name}/verify keys/verify/action
managedHsm POST /keys/{name}/{version}/encrypt keys/encrypt/action
managedHsm POST /keys/{name}/encrypt keys/encrypt/action
managedHsm POST /keys/{name}/{version}/decrypt keys/decrypt/action
managedHsm POST /keys/{name}/decrypt keys/decrypt/action
managedHsm POST /keys/{name}/{version}/wrapkey keys/wrap/action
managedHsm POST /keys/{name}/wrapkey keys/wrap/action
managedHsm POST /keys/{name}/{version}/unwrapkey keys/unwrap/action
managedHsm POST /keys/{name}/unwrapkey keys/unwrap/action
managedHsm POST /keys/{name}/{version}/release keys/release/action
managedHsm POST /keys/{name}/release keys/release/action
managedHsm POST /securitydomain/download securitydomain/download/action
managedHsm GET /securitydomain/download/pending securitydomain/download/read
managedHsm GET /securitydomain/upload securitydomain/transferkey/read
managedHsm GET /securitydomain/transferkey securitydomain/transferkey/read
managedHsm POST /securitydomain/upload securitydomain/upload/action
managedHsm GET /securitydomain/upload/pending securitydomain/upload/read
managedHsm POST /backup backup/start/action
managedHsm GET /backup/{job}/pending backup/status/action
managedHsm PUT /restore restore/start/action
managedHsm GET /restore/{job}/pending restore/status/action
managedHsm PUT /keys/{name}/restore restore/start/action
managedHsm GET /providers/Microsoft.Authorization/roleAssignments roleAssignments/read/action
managedHsm GET /providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/read/action
managedHsm PUT /providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/write/action
managedHsm DELETE /providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/delete/action
managedHsm GET /keys/providers/Microsoft.Authorization/roleAssignments roleAssignments/read/action
managedHsm GET /keys/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/read/action
managedHsm PUT /keys/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/write/action
managedHsm DELETE /keys/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/delete/action
managedHsm GET /keys/{name}/providers/Microsoft.Authorization/roleAssignments roleAssignments/read/action
managedHsm GET /keys/{name}/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/read/action
managedHsm PUT /keys/{name}/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/write/action
managedHsm DELETE /keys/{name}/providers/Microsoft.Authorization/roleAssignments/{id} roleAssignments/delete/action
managedHsm GET /providers/Microsoft.Authorization/roleDefinitions roleDefinitions/read/action
managedHsm GET /providers/Microsoft.Authorization/roleDefinitions/{id} roleDefinitions/read/action
managedHsm PUT /providers/Microsoft.Authorization/roleDefinitions/{id} roleDefinitions/write/action
managedHsm DELETE /providers/Microsoft.Authorization/roleDefinitions/{id} roleDefinitions/delete/action
`

// TestRBACMatrixOverHTTPS is the wire half of the §4 "RBAC" figure (the decision half is
// TestBuiltInRoleMatrix and TestBuiltInRoleMatrixScopes in internal/authz): every route the
// data plane serves must check the data action the published spec names for it
// (publishedOperations), and every built-in role of the store's kind, plus Coffer's own
// roles, assigned at the vault or pool, must be refused (403 ForbiddenByRbac) on exactly the
// routes whose action the published role table (internal/authz/testdata/published-roles.json)
// does not grant it, through the real server.
func TestRBACMatrixOverHTTPS(t *testing.T) {
	published := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(publishedOperations), "\n") {
		f := strings.Fields(line)
		published[f[0]+" "+f[1]+" "+f[2]] = f[3]
	}
	b, err := os.ReadFile(filepath.Join("..", "authz", "testdata", "published-roles.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Roles map[string]map[string][]string `json:"roles"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}

	ts, _ := startDevSoftHSM(t, "--tenant-rate-limit", "0", "--tenant-max-concurrent", "0", "--auth-failure-limit", "0")
	ctx := context.Background()
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	c := isoClient{t, hc, port}
	tenantA := ts.Dev.Credentials.TenantID
	kinds := []struct {
		kind          tenancy.Kind
		host          string
		scope, res    string
		rolePrefix    string
		actionPrefix  string
		tableCategory string
	}{
		{tenancy.KindVault, "dev.localhost", "/tenants/" + tenantA + "/vaults/dev", ts.resources().Base(), "Key Vault ", "Microsoft.KeyVault/vaults/", "vault"},
		{tenancy.KindManagedHSM, "devhsm.managedhsm.localhost", "/tenants/" + tenantA + "/managedHsms/devhsm", "https://managedhsm.localhost:" + port, "Managed HSM ", "Microsoft.KeyVault/managedHsm/", "managedHsm"},
	}
	var routes, wrongAction, requests, allowed, denied, deviations int
	for _, k := range kinds {
		// Every route of the kind names the published action.
		var patterns []string
		for _, rt := range ts.dataRoutes() {
			if len(rt.Kinds) > 0 && !slices.Contains(rt.Kinds, k.kind) {
				continue
			}
			routes++
			patterns = append(patterns, rt.Pattern)
			want, ok := published[string(k.kind)+" "+rt.Pattern]
			if !ok {
				t.Errorf("%s route %s has no published action in this test: add it from the spec", k.kind, rt.Pattern)
				continue
			}
			if got := rt.Action[k.kind]; got != k.actionPrefix+want {
				wrongAction++
				t.Errorf("%s %s checks %s; the published operation needs %s%s", k.kind, rt.Pattern, got, k.actionPrefix, want)
			}
		}
		// Every role of the kind (and Coffer's), assigned at the store, on every route.
		for _, role := range authz.BuiltInRoles() {
			if !strings.HasPrefix(role.Name, k.rolePrefix) && !strings.HasPrefix(role.Name, "Coffer ") {
				continue
			}
			grants, ok := table.Roles[role.Name]
			if !ok {
				t.Errorf("role %q has no row in published-roles.json", role.Name)
				continue
			}
			p, secret, err := ts.tenants.CreateServicePrincipal(ctx, tenantA, role.Name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: p.ObjectID, TenantID: tenantA, RoleDefinitionID: role.ID, Scope: k.scope}); err != nil {
				t.Fatalf("assign %s at %s: %v", role.Name, k.scope, err)
			}
			st, tok := rawToken(t, ts, hc, tenantA, p.AppID, secret, k.res)
			if st != 200 {
				t.Fatalf("token for %s = %d", role.Name, st)
			}
			for _, pattern := range patterns {
				method, path, _ := strings.Cut(pattern, " ")
				want := slices.Contains(grants[k.tableCategory], published[string(k.kind)+" "+pattern])
				path = strings.NewReplacer("/certificateissuers", "/certificates/issuers", "{name}", "rbac1",
					"{version}", "0123456789abcdef0123456789abcdef", "{id}", "00000000-0000-4000-8000-000000000001", "{job}", "nosuchjob").Replace(path)
				r := c.do(k.host, method, path, tok, `{"kty":"EC","alg":"ES256","value":"AAAA","digest":"AAAA","count":4}`)
				requests++
				var e struct {
					Error struct {
						Inner struct {
							Code string `json:"code"`
						} `json:"innererror"`
					} `json:"error"`
				}
				json.Unmarshal([]byte(r.body), &e)
				refused := r.status == 403 && e.Error.Inner.Code == "ForbiddenByRbac"
				if refused {
					denied++
				} else {
					allowed++
				}
				if refused == want || r.status == 401 {
					deviations++
					t.Errorf("%s on %s %s = %d %.200s; the published table says %s", role.Name, method, path, r.status, r.body, map[bool]string{true: "allowed", false: "refused"}[want])
				}
			}
		}
	}
	t.Logf("RBAC over HTTPS: %d routes, %d checking another action than the published one; %d requests (every role of the store's kind and Coffer's × every route): %d past authorization, %d refused 403 ForbiddenByRbac, %d deviations from the published table",
		routes, wrongAction, requests, allowed, denied, deviations)
}
