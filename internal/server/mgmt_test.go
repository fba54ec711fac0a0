package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// mcall sends a management request and returns the status and the raw body.
func (ts *testServer) mcall(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// mjson sends a management request, requires status want and decodes the body into out.
func (ts *testServer) mjson(t *testing.T, method, path, token string, body any, want int, out any) []byte {
	t.Helper()
	status, raw := ts.mcall(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s = %d %s; want %d", method, path, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: body %s: %v", method, path, raw, err)
		}
	}
	return raw
}

// kvError decodes a Key Vault error body, failing if the shape is wrong.
func kvError(t *testing.T, raw []byte) (code, message string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", raw, err)
	}
	code = errorCode(t, m)
	message, _ = m["error"].(map[string]any)["message"].(string)
	return code, message
}

// newTenant has the operator create a tenant and returns it with an access token of its
// administrator for the management audience.
func newTenant(t *testing.T, ts *testServer, name string) (mgmt.TenantCreated, string) {
	t.Helper()
	var tc mgmt.TenantCreated
	ts.mjson(t, "POST", "/v1/tenants", ts.Dev.Token, map[string]string{"name": name}, 201, &tc)
	status, tok := rawToken(t, ts, ts.client, tc.Tenant.ID, tc.Administrator.ClientID, tc.Administrator.ClientSecret, ts.resources().Base())
	if status != 200 || tok == "" {
		t.Fatalf("token for the administrator of %s = %d", name, status)
	}
	return tc, tok
}

func TestManagementTenantIsolation(t *testing.T) {
	ts := startDev(t)
	op := ts.Dev.Token
	aud := ts.resources().Base()

	a, tokA := newTenant(t, ts, "Contoso")
	b, tokB := newTenant(t, ts, "Fabrikam")
	A, B := "/v1/tenants/"+a.Tenant.ID, "/v1/tenants/"+b.Tenant.ID
	if a.Administrator.RoleDefinitionID != authz.CofferTenantAdministratorRoleID || a.Administrator.ClientSecret == "" {
		t.Fatalf("administrator = %+v; want a Coffer Tenant Administrator with a secret", a.Administrator)
	}
	var tenants mgmt.List[mgmt.TenantDTO]
	ts.mjson(t, "GET", "/v1/tenants", op, nil, 200, &tenants)
	if len(tenants.Value) != 3 { // dev, Contoso, Fabrikam
		t.Errorf("GET /v1/tenants lists %d tenants; want 3", len(tenants.Value))
	}

	// The administrator of A builds its tenant.
	var v mgmt.StoreDTO
	ts.mjson(t, "PUT", A+"/vaults/contoso-kv", tokA, map[string]any{"softDeleteRetentionInDays": 30}, 201, &v)
	if v.TenantID != a.Tenant.ID || v.SoftDeleteRetentionInDays != 30 || !strings.HasPrefix(v.URL, "https://contoso-kv.localhost:") {
		t.Errorf("created vault = %+v", v)
	}
	ts.mjson(t, "PUT", A+"/vaults/contoso-kv", tokA, map[string]any{"softDeleteRetentionInDays": 30}, 200, nil) // idempotent
	ts.mjson(t, "PUT", A+"/vaults/contoso-kv", tokA, map[string]any{"softDeleteRetentionInDays": 60}, 409, nil)
	ts.mjson(t, "PUT", B+"/vaults/contoso-kv", tokB, map[string]any{}, 409, nil) // names are global
	ts.mjson(t, "PUT", A+"/managedHsms/contoso-hsm", tokA, map[string]any{"softDeleteRetentionInDays": 7, "enablePurgeProtection": true}, 201, nil)
	var vaults, hsms mgmt.List[mgmt.StoreDTO]
	ts.mjson(t, "GET", A+"/vaults", tokA, nil, 200, &vaults)
	ts.mjson(t, "GET", A+"/managedHsms", tokA, nil, 200, &hsms)
	if len(vaults.Value) != 1 || len(hsms.Value) != 1 || !hsms.Value[0].EnablePurgeProtection {
		t.Errorf("A lists vaults %+v and pools %+v; want one of each", vaults.Value, hsms.Value)
	}
	ts.mjson(t, "GET", A+"/vaults/CONTOSO-KV", tokA, nil, 200, nil)

	var app mgmt.PrincipalCreated
	raw := ts.mjson(t, "POST", A+"/principals", tokA, map[string]string{"displayName": "payments-app"}, 201, &app)
	if app.ClientSecret == "" || app.ClientID == "" || len(app.Secrets) != 1 {
		t.Fatalf("created principal = %s", raw)
	}
	var second mgmt.SecretCreated
	ts.mjson(t, "POST", A+"/principals/"+app.ObjectID+"/secrets", tokA, nil, 201, &second)
	certs, _ := selfSignedClientCert(t)
	pemCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw}))
	var cert mgmt.CertificateDTO
	ts.mjson(t, "POST", A+"/principals/"+app.ObjectID+"/certificates", tokA, map[string]string{"certificate": pemCert}, 201, &cert)
	if len(cert.Thumbprint) != 40 {
		t.Errorf("certificate thumbprint = %q", cert.Thumbprint)
	}
	ts.mjson(t, "POST", A+"/principals/"+app.ObjectID+"/certificates", tokA,
		map[string]string{"certificate": base64.StdEncoding.EncodeToString(certs[0].Raw)}, 409, nil)
	var principals mgmt.List[mgmt.PrincipalDTO]
	listRaw := ts.mjson(t, "GET", A+"/principals", tokA, nil, 200, &principals)
	oneRaw := ts.mjson(t, "GET", A+"/principals/"+app.ObjectID, tokA, nil, 200, nil)
	if len(principals.Value) != 2 {
		t.Errorf("A has %d principals; want the administrator and the app", len(principals.Value))
	}
	for _, body := range [][]byte{raw, listRaw, oneRaw} {
		for _, leak := range []string{`"salt"`, `"hash"`, `"der"`, second.ClientSecret, a.Administrator.ClientSecret} {
			if bytes.Contains(body, []byte(leak)) {
				t.Errorf("a principal response contains %.12s…", leak)
			}
		}
	}

	// The app gets Key Vault Secrets User on the vault, and nothing of the management plane.
	secretsUser := mustRole("Key Vault Secrets User")
	assignmentID := tenancy.NewUUID()
	var asg mgmt.AssignmentDTO
	ts.mjson(t, "PUT", A+"/roleAssignments/"+assignmentID, tokA, map[string]string{
		"principalId": app.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + a.Tenant.ID + "/vaults/contoso-kv"}, 201, &asg)
	if asg.RoleName != "Key Vault Secrets User" || asg.Scope != "/tenants/"+a.Tenant.ID+"/vaults/contoso-kv" {
		t.Errorf("assignment = %+v", asg)
	}
	ts.mjson(t, "PUT", A+"/roleAssignments/"+assignmentID, tokA, map[string]string{ // idempotent
		"principalId": app.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + a.Tenant.ID + "/vaults/contoso-kv"}, 200, nil)
	ts.mjson(t, "PUT", A+"/roleAssignments/"+assignmentID, tokA, map[string]string{
		"principalId": app.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + a.Tenant.ID}, 409, nil)
	// The tenant cannot lose its last administrator: the operator could not put one back.
	if status, raw := ts.mcall(t, "DELETE", A+"/roleAssignments/"+a.Administrator.RoleAssignmentID, tokA, nil); status != 409 || !strings.Contains(string(raw), "LastAdministrator") {
		t.Errorf("deleting the last administrator assignment = %d %s; want 409 LastAdministrator", status, raw)
	}
	status, tokApp := rawToken(t, ts, ts.client, a.Tenant.ID, app.ClientID, second.ClientSecret, aud)
	if status != 200 {
		t.Fatalf("token for the app with its second secret = %d", status)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		action             authz.Action
	}{
		{"fail/assign", "PUT", A + "/roleAssignments/" + tenancy.NewUUID(), map[string]string{"principalId": app.ObjectID, "roleDefinitionId": authz.CofferTenantAdministratorRoleID, "scope": "/tenants/" + a.Tenant.ID}, authz.RoleAssignmentsWrite},
		{"fail/assign-on-its-vault", "PUT", A + "/roleAssignments/" + tenancy.NewUUID(), map[string]string{"principalId": app.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + a.Tenant.ID + "/vaults/contoso-kv"}, authz.RoleAssignmentsWrite},
		{"fail/unassign", "DELETE", A + "/roleAssignments/" + assignmentID, nil, authz.RoleAssignmentsWrite},
		{"fail/unassign-missing", "DELETE", A + "/roleAssignments/" + tenancy.NewUUID(), nil, authz.RoleAssignmentsWrite},
		{"fail/create-vault", "PUT", A + "/vaults/app-vault", map[string]any{}, authz.VaultsWrite},
		{"fail/read-vault", "GET", A + "/vaults/contoso-kv", nil, authz.VaultsRead},
		{"fail/list-principals", "GET", A + "/principals", nil, authz.PrincipalsRead},
		{"fail/read-audit", "GET", A + "/audit", nil, authz.AuditRead},
	} {
		t.Run("app/"+tc.name, func(t *testing.T) {
			status, raw := ts.mcall(t, tc.method, tc.path, tokApp, tc.body)
			code, msg := kvError(t, raw)
			if status != 403 || code != "Forbidden" || !strings.Contains(string(raw), "ForbiddenByRbac") || !strings.Contains(msg, "Action: '"+string(tc.action)+"'") {
				t.Errorf("%s %s by the app = %d %s; want 403 ForbiddenByRbac naming %s", tc.method, tc.path, status, raw, tc.action)
			}
		})
	}

	// Tenant B's administrator gets exactly the answer for a tenant that does not exist.
	ghost := "/v1/tenants/" + tenancy.NewUUID()
	for _, tc := range []struct {
		name, method, suffix string
		body                 any
	}{
		{"tenant", "GET", "", nil},
		{"vaults", "GET", "/vaults", nil},
		{"vault", "GET", "/vaults/contoso-kv", nil},
		{"create-vault", "PUT", "/vaults/b-in-a", map[string]any{}},
		{"principals", "GET", "/principals", nil},
		{"principal", "GET", "/principals/" + app.ObjectID, nil},
		{"add-secret", "POST", "/principals/" + app.ObjectID + "/secrets", nil},
		{"assignments", "GET", "/roleAssignments", nil},
		{"assign", "PUT", "/roleAssignments/" + tenancy.NewUUID(), map[string]string{"principalId": b.Administrator.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + a.Tenant.ID}},
		{"unassign", "DELETE", "/roleAssignments/" + assignmentID, nil},
		{"roles", "GET", "/roleDefinitions", nil},
		{"audit", "GET", "/audit", nil},
	} {
		t.Run("cross-tenant/"+tc.name, func(t *testing.T) {
			sa, ra := ts.mcall(t, tc.method, A+tc.suffix, tokB, tc.body)
			sg, rg := ts.mcall(t, tc.method, ghost+tc.suffix, tokB, tc.body)
			sm, rm := ts.mcall(t, tc.method, "/v1/tenants/not-a-tenant"+tc.suffix, tokB, tc.body)
			if sa != 404 || sg != 404 || sm != 404 || !bytes.Equal(ra, rg) || !bytes.Equal(ra, rm) {
				t.Errorf("B on A = %d %s; on a missing tenant = %d %s; malformed = %d %s; want identical 404s", sa, ra, sg, rg, sm, rm)
			}
			kvError(t, ra)
		})
	}
	if _, err := ts.tenants.Vault(t.Context(), tenancy.KindVault, "b-in-a"); err == nil {
		t.Error("tenant B created a vault in tenant A")
	}

	// The operator manages tenants, not what is inside them (403, documented).
	ts.mjson(t, "GET", A, op, nil, 200, nil)
	for _, tc := range []struct {
		name, method, suffix string
		body                 any
		action               authz.Action
	}{
		{"principals", "GET", "/principals", nil, authz.PrincipalsRead},
		{"assignments", "GET", "/roleAssignments", nil, authz.RoleAssignmentsRead},
		{"assignment", "GET", "/roleAssignments/" + assignmentID, nil, authz.RoleAssignmentsRead},
		{"assign", "PUT", "/roleAssignments/" + tenancy.NewUUID(), map[string]string{"principalId": app.ObjectID, "roleDefinitionId": secretsUser}, authz.RoleAssignmentsWrite},
		{"vaults", "GET", "/vaults", nil, authz.VaultsRead},
		{"audit", "GET", "/audit", nil, authz.AuditRead},
	} {
		t.Run("operator/"+tc.name, func(t *testing.T) {
			status, raw := ts.mcall(t, tc.method, A+tc.suffix, op, tc.body)
			code, msg := kvError(t, raw)
			if status != 403 || code != "Forbidden" || !strings.Contains(msg, string(tc.action)) {
				t.Errorf("operator %s %s = %d %s; want 403 naming %s", tc.method, tc.suffix, status, raw, tc.action)
			}
		})
	}
	// Tenant principals do not get platform operations.
	for _, path := range []string{"/v1/tenants", "/v1/audit/public-key"} {
		if status, raw := ts.mcall(t, "GET", path, tokA, nil); status != 403 {
			t.Errorf("GET %s by a tenant administrator = %d %s; want 403", path, status, raw)
		}
	}
	if status, raw := ts.mcall(t, "POST", "/v1/tenants", tokA, map[string]string{"name": "Mine"}); status != 403 || !strings.Contains(string(raw), string(authz.TenantsWrite)) {
		t.Errorf("POST /v1/tenants by a tenant administrator = %d %s; want 403 naming %s", status, raw, authz.TenantsWrite)
	}

	// Credentials that are not valid are 401, before anything is looked up.
	_, tokHSM := rawToken(t, ts, ts.client, a.Tenant.ID, a.Administrator.ClientID, a.Administrator.ClientSecret, "https://managedhsm.localhost:"+ts.resources().port)
	for _, tc := range []struct{ name, token string }{
		{"none", ""},
		{"garbage", "not-a-token"},
		{"bad-operator-token", "cof.AAAA"},
		{"other-audience", tokHSM},
		{"tampered", tamper(t, tokA)},
		{"alg-none", forgeNone(t, tokA)},
	} {
		t.Run("unauthenticated/"+tc.name, func(t *testing.T) {
			status, raw := ts.mcall(t, "GET", A+"/vaults", tc.token, nil)
			if code, _ := kvError(t, raw); status != 401 || code != "Unauthorized" {
				t.Errorf("GET vaults with %s = %d %s; want 401", tc.name, status, raw)
			}
		})
	}

	// Assignments stay inside the tenant and point at things that exist.
	for _, tc := range []struct{ name, principal, scope string }{
		{"platform-scope", app.ObjectID, "/"},
		{"other-tenant", app.ObjectID, "/tenants/" + b.Tenant.ID},
		{"missing-vault", app.ObjectID, "/tenants/" + a.Tenant.ID + "/vaults/nope"},
		{"other-tenants-principal", b.Administrator.ObjectID, "/tenants/" + a.Tenant.ID},
	} {
		t.Run("assign/"+tc.name, func(t *testing.T) {
			status, raw := ts.mcall(t, "PUT", A+"/roleAssignments/"+tenancy.NewUUID(), tokA, map[string]string{"principalId": tc.principal, "roleDefinitionId": secretsUser, "scope": tc.scope})
			if code, _ := kvError(t, raw); status != 400 || code != "BadParameter" {
				t.Errorf("assignment at %s = %d %s; want 400", tc.scope, status, raw)
			}
		})
	}
	// An assignment id already used by another tenant is refused, so the platform-wide
	// snapshot never holds a duplicate.
	status, raw = ts.mcall(t, "PUT", B+"/roleAssignments/"+assignmentID, tokB, map[string]string{"principalId": b.Administrator.ObjectID, "roleDefinitionId": secretsUser, "scope": "/tenants/" + b.Tenant.ID})
	if status != 409 {
		t.Errorf("B reusing A's assignment id = %d %s; want 409", status, raw)
	}
	roleID := tenancy.NewUUID()
	role := map[string]any{"roleName": "Vault reader", "permissions": []map[string]any{{"actions": []string{"Coffer/vaults/read"}}}}
	var rd mgmt.RoleDefinitionDTO
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+roleID, tokA, role, 201, &rd)
	if rd.Type != authz.RoleTypeCustom || len(rd.AssignableScopes) != 1 || rd.AssignableScopes[0] != "/tenants/"+a.Tenant.ID {
		t.Errorf("custom role = %+v", rd)
	}
	ts.mjson(t, "PUT", B+"/roleDefinitions/"+roleID, tokB, role, 409, nil)
	ts.mjson(t, "PUT", A+"/roleDefinitions/"+authz.CofferTenantAdministratorRoleID, tokA, role, 409, nil)
	var roles mgmt.List[mgmt.RoleDefinitionDTO]
	ts.mjson(t, "GET", A+"/roleDefinitions", tokA, nil, 200, &roles)
	var rolesB mgmt.List[mgmt.RoleDefinitionDTO]
	ts.mjson(t, "GET", B+"/roleDefinitions", tokB, nil, 200, &rolesB)
	if len(roles.Value) != len(authz.BuiltInRoles())+1 || len(rolesB.Value) != len(authz.BuiltInRoles()) {
		t.Errorf("A lists %d role definitions, B %d; want built-ins+1 and built-ins", len(roles.Value), len(rolesB.Value))
	}
	var assignments mgmt.List[mgmt.AssignmentDTO]
	ts.mjson(t, "GET", A+"/roleAssignments", tokA, nil, 200, &assignments)
	if len(assignments.Value) != 2 { // the administrator's and the app's
		t.Errorf("A has %d role assignments; want 2", len(assignments.Value))
	}
	ts.mjson(t, "DELETE", A+"/roleAssignments/"+assignmentID, tokA, nil, 200, nil)
	ts.mjson(t, "DELETE", A+"/roleAssignments/"+assignmentID, tokA, nil, 404, nil)

	// Each tenant's audit view holds its own records only.
	for _, tc := range []struct {
		name, path, token, tenant string
		wantOps                   []string
	}{
		{"A", A + "/audit", tokA, a.Tenant.ID, []string{"TenantCreate", "VaultCreate", "ManagedHsmCreate", "PrincipalCreate", "PrincipalSecretAdd", "RoleAssignmentCreate", "RoleAssignmentDelete", "TokenIssue"}},
		{"B", B + "/audit", tokB, b.Tenant.ID, []string{"TenantCreate", "VaultCreate", "RoleAssignmentCreate"}},
	} {
		t.Run("audit/"+tc.name, func(t *testing.T) {
			var recs mgmt.List[audit.Record]
			ts.mjson(t, "GET", tc.path, tc.token, nil, 200, &recs)
			ops := map[string]bool{}
			for _, r := range recs.Value {
				ops[r.Operation] = true
				if r.Tenant != tc.tenant || r.Kind != audit.KindEvent {
					t.Errorf("tenant %s sees record %d of tenant %q (kind %s)", tc.name, r.Seq, r.Tenant, r.Kind)
				}
				if r.CallerTenant != "" && r.CallerTenant != tc.tenant {
					t.Errorf("tenant %s sees record %d by a caller of tenant %s", tc.name, r.Seq, r.CallerTenant)
				}
			}
			for _, op := range tc.wantOps {
				if !ops[op] {
					t.Errorf("tenant %s's audit lacks %s (has %v)", tc.name, op, ops)
				}
			}
		})
	}
	var filtered mgmt.List[audit.Record]
	ts.mjson(t, "GET", A+"/audit?operation=VaultCreate&limit=1&since=2000-01-01T00:00:00Z", tokA, nil, 200, &filtered)
	if len(filtered.Value) != 1 || filtered.Value[0].Operation != "VaultCreate" {
		t.Errorf("filtered audit = %+v; want one VaultCreate", filtered.Value)
	}

	// The operator reads the checkpoint key.
	var key mgmt.AuditKey
	ts.mjson(t, "GET", "/v1/audit/public-key", op, nil, 200, &key)
	block, _ := pem.Decode([]byte(key.PublicKey))
	if block == nil {
		t.Fatalf("public key %q is not PEM", key.PublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if _, ok := pub.(ed25519.PublicKey); err != nil || !ok || key.Head.Seq == 0 {
		t.Errorf("public key = %T, %v; head %+v", pub, err, key.Head)
	}

	// No client secret or token reached the audit log or the server log.
	ts.dropIdentity()
	log, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, AuditFile))
	if err != nil {
		t.Fatal(err)
	}
	serverLog := ts.logs.String()
	for name, secret := range map[string]string{
		"A's administrator secret": a.Administrator.ClientSecret, "B's administrator secret": b.Administrator.ClientSecret,
		"the app's first secret": app.ClientSecret, "the app's second secret": second.ClientSecret,
		"A's token": tokA, "the app's token": tokApp, "the operator token": op,
	} {
		if bytes.Contains(log, []byte(secret)) {
			t.Errorf("the audit log contains %s", name)
		}
		if strings.Contains(serverLog, secret) {
			t.Errorf("the server log contains %s", name)
		}
	}
	if !bytes.Contains(log, []byte(`"op":"RoleAssignmentCreate"`)) || !bytes.Contains(log, []byte(`"caller_oid":"`+mgmt.OperatorOID+`"`)) {
		t.Error("the audit log lacks management records")
	}
}
