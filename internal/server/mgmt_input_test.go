package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestManagementRoutesMounted keeps routes() and the management service's routes equal.
func TestManagementRoutesMounted(t *testing.T) {
	var mounted []string
	for _, rt := range (&Server{}).routes() {
		if strings.Contains(rt.Pattern, "/v1/tenants") || strings.Contains(rt.Pattern, "/v1/audit") {
			mounted = append(mounted, rt.Pattern)
		}
	}
	var served []string
	for _, rt := range mgmt.New(mgmt.Config{}).Routes() {
		served = append(served, rt.Pattern)
	}
	slices.Sort(mounted)
	slices.Sort(served)
	if !slices.Equal(mounted, served) {
		t.Errorf("routes() mounts %q;\nmgmt serves %q", mounted, served)
	}
}

func TestManagementBadInputs(t *testing.T) {
	ts := startDev(t)
	op := ts.Dev.Token
	a, tok := newTenant(t, ts, "Contoso")
	A := "/v1/tenants/" + a.Tenant.ID
	ts.mjson(t, "PUT", A+"/vaults/kv1", tok, nil, 201, nil)
	var app mgmt.PrincipalCreated
	ts.mjson(t, "POST", A+"/principals", tok, map[string]string{"displayName": "app"}, 201, &app)
	P := A + "/principals/" + app.ObjectID
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+tenancy.NewUUID(), tok, map[string]any{"roleName": "Taken Role", "permissions": []map[string]any{{"actions": []string{"Coffer/vaults/read"}}}}, 201, nil)
	huge := `{"name":"` + strings.Repeat("a", 2<<20) + `"}`
	overCap := `{"displayName":"` + strings.Repeat("a", mgmt.MaxBody) + `"}`

	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		want                      int
		code                      string
	}{
		{"fail/malformed-json", "POST", "/v1/tenants", op, `{"name":`, 400, "BadParameter"},
		{"fail/empty-body", "POST", "/v1/tenants", op, "", 400, "BadParameter"},
		{"fail/not-an-object", "POST", "/v1/tenants", op, `["x"]`, 400, "BadParameter"},
		{"fail/unknown-field", "POST", "/v1/tenants", op, `{"name":"x","color":"red"}`, 400, "BadParameter"},
		{"fail/trailing-data", "POST", "/v1/tenants", op, `{"name":"x"} {}`, 400, "BadParameter"},
		{"fail/wrong-type", "POST", "/v1/tenants", op, `{"name":7}`, 400, "BadParameter"},
		{"fail/tenant-name-slash", "POST", "/v1/tenants", op, `{"name":"a/b"}`, 400, "BadParameter"},
		{"fail/tenant-name-empty", "POST", "/v1/tenants", op, `{"name":""}`, 400, "BadParameter"},
		{"fail/tenant-name-long", "POST", "/v1/tenants", op, `{"name":"` + strings.Repeat("n", 65) + `"}`, 400, "BadParameter"},
		{"fail/2MB-body", "POST", "/v1/tenants", op, huge, 413, "RequestTooLarge"},
		{"fail/over-management-cap", "POST", A + "/principals", tok, overCap, 413, "RequestTooLarge"},

		{"fail/vault-name-underscore", "PUT", A + "/vaults/kv_1", tok, `{}`, 400, "BadParameter"},
		{"fail/vault-name-digit-first", "PUT", A + "/vaults/1kv", tok, `{}`, 400, "BadParameter"},
		{"fail/vault-name-reserved", "PUT", A + "/vaults/managedhsm", tok, `{}`, 400, "BadParameter"},
		{"fail/vault-name-long", "PUT", A + "/vaults/" + strings.Repeat("v", 25), tok, `{}`, 400, "BadParameter"},
		{"fail/vault-name-slash", "PUT", A + "/vaults/kv1%2Fkeys%2Fk", tok, `{}`, 400, "BadParameter"},
		{"fail/vault-name-dash-last", "PUT", A + "/vaults/kv-", tok, `{}`, 400, "BadParameter"},
		{"fail/retention-low", "PUT", A + "/vaults/kv2", tok, `{"softDeleteRetentionInDays":3}`, 400, "BadParameter"},
		{"fail/retention-zero", "PUT", A + "/vaults/kv2", tok, `{"softDeleteRetentionInDays":0}`, 400, "BadParameter"},
		{"fail/retention-high", "PUT", A + "/managedHsms/hsm2", tok, `{"softDeleteRetentionInDays":91}`, 400, "BadParameter"},
		{"fail/vault-unknown-field", "PUT", A + "/vaults/kv2", tok, `{"sku":"premium"}`, 400, "BadParameter"},
		{"fail/vault-wrong-type", "PUT", A + "/vaults/kv2", tok, `{"enablePurgeProtection":"yes"}`, 400, "BadParameter"},
		{"fail/vault-missing", "GET", A + "/vaults/nope", tok, nil, 404, "NotFound"},

		{"fail/display-name-empty", "POST", A + "/principals", tok, `{"displayName":" "}`, 400, "BadParameter"},
		{"fail/display-name-long", "POST", A + "/principals", tok, `{"displayName":"` + strings.Repeat("d", 121) + `"}`, 400, "BadParameter"},
		{"fail/display-name-control", "POST", A + "/principals", tok, `{"displayName":"a\u0007b"}`, 400, "BadParameter"},
		{"fail/principal-missing", "GET", A + "/principals/" + tenancy.NewUUID(), tok, nil, 404, "NotFound"},
		{"fail/principal-malformed", "POST", A + "/principals/nope/secrets", tok, nil, 404, "NotFound"},
		{"fail/secret-body-field", "POST", P + "/secrets", tok, `{"expires":"never"}`, 400, "BadParameter"},
		{"fail/cert-garbage", "POST", P + "/certificates", tok, `{"certificate":"not base64!"}`, 400, "BadParameter"},
		{"fail/cert-not-x509", "POST", P + "/certificates", tok, `{"certificate":"aGVsbG8="}`, 400, "BadParameter"},
		{"fail/cert-pem-key", "POST", P + "/certificates", tok, `{"certificate":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`, 400, "BadParameter"},
		{"fail/cert-empty", "POST", P + "/certificates", tok, `{"certificate":""}`, 400, "BadParameter"},

		{"fail/assignment-id", "PUT", A + "/roleAssignments/not-a-uuid", tok, `{}`, 400, "BadParameter"},
		{"fail/assignment-id-upper", "PUT", A + "/roleAssignments/" + strings.ToUpper(tenancy.NewUUID()), tok, `{}`, 400, "BadParameter"},
		{"fail/assignment-scope", "PUT", A + "/roleAssignments/" + tenancy.NewUUID(), tok, `{"principalId":"` + app.ObjectID + `","roleDefinitionId":"x","scope":"tenants//x"}`, 400, "BadParameter"},
		{"fail/assignment-role", "PUT", A + "/roleAssignments/" + tenancy.NewUUID(), tok, `{"principalId":"` + app.ObjectID + `","roleDefinitionId":"` + tenancy.NewUUID() + `"}`, 400, "BadParameter"},
		{"fail/assignment-unknown-field", "PUT", A + "/roleAssignments/" + tenancy.NewUUID(), tok, `{"principalId":"` + app.ObjectID + `","condition":"x"}`, 400, "BadParameter"},
		{"fail/assignment-missing", "GET", A + "/roleAssignments/" + tenancy.NewUUID(), tok, nil, 404, "NotFound"},

		{"fail/role-id", "PUT", A + "/roleDefinitions/reader", tok, `{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read"]}]}`, 400, "BadParameter"},
		{"fail/role-no-permissions", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"r"}`, 400, "BadParameter"},
		{"fail/role-empty-permission", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"r","permissions":[{}]}`, 400, "BadParameter"},
		{"fail/role-exclusions-only", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read"]},{"notActions":["Coffer/vaults/read"]}]}`, 400, "BadParameter"},
		{"fail/role-bad-pattern", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read!"]}]}`, 400, "BadParameter"},
		{"fail/role-platform-scope", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"r","permissions":[{"actions":["Coffer/vaults/read"]}],"assignableScopes":["/"]}`, 400, "BadParameter"},
		{"fail/role-builtin-name", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":"Key Vault Reader","permissions":[{"actions":["Coffer/vaults/read"]}]}`, 400, "BadParameter"},
		{"fail/role-name-taken", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"roleName":" taken role ","permissions":[{"actions":["Coffer/vaults/read"]}]}`, 409, "RoleDefinitionWithSameNameExists"},
		{"fail/role-no-name", "PUT", A + "/roleDefinitions/" + tenancy.NewUUID(), tok, `{"permissions":[{"actions":["Coffer/vaults/read"]}]}`, 400, "BadParameter"},

		{"fail/audit-since", "GET", A + "/audit?since=yesterday", tok, nil, 400, "BadParameter"},
		{"fail/audit-limit-zero", "GET", A + "/audit?limit=0", tok, nil, 400, "BadParameter"},
		{"fail/audit-limit-high", "GET", A + "/audit?limit=5000", tok, nil, 400, "BadParameter"},
		{"fail/audit-unknown-param", "GET", A + "/audit?tenant=" + tenancy.NewUUID(), tok, nil, 400, "BadParameter"},
		{"fail/audit-repeated-param", "GET", A + "/audit?limit=1&limit=2", tok, nil, 400, "BadParameter"},
		{"fail/audit-operation", "GET", A + "/audit?operation=a%20b", tok, nil, 400, "BadParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := ts.mcall(t, tc.method, tc.path, tc.token, tc.body)
			code, msg := kvError(t, raw)
			if status != tc.want || code != tc.code {
				t.Errorf("%s %s = %d %s; want %d %s", tc.method, tc.path, status, raw, tc.want, tc.code)
			}
			if strings.Contains(msg, strings.Repeat("a", 100)) {
				t.Errorf("the error message echoes the body: %.200s", msg)
			}
		})
	}
	// Nothing was created by the refused requests.
	var tenants mgmt.List[mgmt.TenantDTO]
	ts.mjson(t, "GET", "/v1/tenants", op, nil, 200, &tenants)
	if len(tenants.Value) != 2 {
		t.Errorf("%d tenants after refused creations; want 2 (dev and Contoso)", len(tenants.Value))
	}
}
