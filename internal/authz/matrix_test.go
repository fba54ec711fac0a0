package authz

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The expectations below are written out by hand from the published documents, not
// derived from this package's tables, so that a wrong role table or a wrong matcher
// shows up as a deviation:
//
//   - vault data actions: the DataAction table of Microsoft.KeyVault in
//     https://learn.microsoft.com/azure/role-based-access-control/permissions/security
//     (storage-account actions left out: Coffer has no managed storage accounts);
//   - vault roles: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security,
//     each role's DataActions expanded by hand (e.g. "vaults/*/read" → every …/read);
//   - Managed HSM data actions: the DataAction enum of administration.json (34) plus
//     keys/rotate/action;
//   - Managed HSM roles: https://learn.microsoft.com/azure/key-vault/managed-hsm/built-in-roles
//     ("Permitted operations"), corrected where the service's own role definitions differ
//     (see the comment on builtInRoles): Administrator also has securitydomain/download/read,
//     Crypto Officer also keys/export/action, Crypto User also rng/action, and Crypto
//     Auditor has keys/deletedKeys/read/action, not keys/deletedKeys/delete.

const (
	vaultPrefix = "Microsoft.KeyVault/vaults/"
	hsmPrefix   = "Microsoft.KeyVault/managedHsm/"
)

// docVaultDataActions: 41 = 19 keys (incl. 2 keyrotationpolicies) + 9 secrets + 13 certificates.
var docVaultDataActions = []string{
	"keys/read", "keys/create/action", "keys/import/action", "keys/update/action", "keys/delete",
	"keys/backup/action", "keys/restore/action", "keys/recover/action", "keys/purge/action",
	"keys/encrypt/action", "keys/decrypt/action", "keys/wrap/action", "keys/unwrap/action",
	"keys/sign/action", "keys/verify/action", "keys/release/action", "keys/rotate/action",
	"keyrotationpolicies/read", "keyrotationpolicies/write",
	"secrets/readMetadata/action", "secrets/getSecret/action", "secrets/setSecret/action",
	"secrets/update/action", "secrets/delete", "secrets/backup/action", "secrets/restore/action",
	"secrets/recover/action", "secrets/purge/action",
	"certificates/read", "certificates/create/action", "certificates/import/action",
	"certificates/update/action", "certificates/delete", "certificates/backup/action",
	"certificates/restore/action", "certificates/recover/action", "certificates/purge/action",
	"certificatecas/read", "certificatecas/write", "certificatecas/delete", "certificatecontacts/write",
}

// docHSMDataActions: 35 = the 34 DataAction enum values + keys/rotate/action.
var docHSMDataActions = []string{
	"keys/read/action", "keys/write/action", "keys/create", "keys/delete", "keys/import/action",
	"keys/export/action", "keys/release/action", "keys/backup/action", "keys/restore/action",
	"keys/rotate/action", "keys/encrypt/action", "keys/decrypt/action", "keys/wrap/action",
	"keys/unwrap/action", "keys/sign/action", "keys/verify/action",
	"keys/deletedKeys/read/action", "keys/deletedKeys/recover/action", "keys/deletedKeys/delete",
	"roleAssignments/read/action", "roleAssignments/write/action", "roleAssignments/delete/action",
	"roleDefinitions/read/action", "roleDefinitions/write/action", "roleDefinitions/delete/action",
	"securitydomain/download/action", "securitydomain/download/read", "securitydomain/upload/action",
	"securitydomain/upload/read", "securitydomain/transferkey/read",
	"backup/start/action", "backup/status/action", "restore/start/action", "restore/status/action",
	"rng/action",
}

// docAllowed lists, per built-in role, the data actions it allows (vault actions relative
// to vaultPrefix, HSM actions to hsmPrefix), from testdata/published-roles.json (written
// out by hand from the documents above). A role missing there or an action not listed is
// expected to be denied.
var docAllowed = loadPublishedRoles()

// publishedRoles is the shape of testdata/published-roles.json.
type publishedRoles struct {
	Roles map[string]struct {
		Vault []string `json:"vault"`
		HSM   []string `json:"managedHsm"`
	} `json:"roles"`
}

func loadPublishedRoles() map[string]struct{ vault, hsm []string } {
	b, err := os.ReadFile(filepath.Join("testdata", "published-roles.json"))
	if err != nil {
		panic("the published role table: " + err.Error())
	}
	var p publishedRoles
	if err := json.Unmarshal(b, &p); err != nil {
		panic("testdata/published-roles.json: " + err.Error())
	}
	out := map[string]struct{ vault, hsm []string }{}
	for name, r := range p.Roles {
		out[name] = struct{ vault, hsm []string }{r.Vault, r.HSM}
	}
	return out
}

// docRoleIDs is KEYVAULT-NOTES §1.12, plus Coffer's two roles.
var docRoleIDs = map[string]string{
	"Key Vault Administrator":                    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
	"Key Vault Reader":                           "21090545-7ca7-4776-b22c-e363652d74d2",
	"Key Vault Certificates Officer":             "a4417e6f-fecd-4de8-b567-7b0420556985",
	"Key Vault Certificate User":                 "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
	"Key Vault Crypto Officer":                   "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
	"Key Vault Crypto Service Encryption User":   "e147488a-f6f5-4113-8e2d-b22465e65bf6",
	"Key Vault Crypto User":                      "12338af0-0e69-4776-bea7-57ae8d297424",
	"Key Vault Crypto Service Release User":      "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
	"Key Vault Secrets Officer":                  "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
	"Key Vault Secrets User":                     "4633458b-17de-408a-b874-0445c86b69e6",
	"Key Vault Data Access Administrator":        "8b54135c-b56d-4d72-a534-26097cfdc8d8",
	"Managed HSM Administrator":                  "a290e904-7015-4bba-90c8-60543313cdb4",
	"Managed HSM Crypto Officer":                 "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
	"Managed HSM Crypto User":                    "21dbd100-6940-42c2-9190-5d6cb909625b",
	"Managed HSM Policy Administrator":           "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
	"Managed HSM Crypto Auditor":                 "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
	"Managed HSM Crypto Service Encryption User": "33413926-3206-4cdd-b39a-83574fe37a17",
	"Managed HSM Crypto Service Release User":    "21dbd100-6940-42c2-9190-5d6cb909625c",
	"Managed HSM Backup":                         "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
	"Managed HSM Restore":                        "6efe6056-5259-49d2-8b3d-d3d73544b20b",
	"Coffer Tenant Administrator":                "e7439ec5-761a-4f03-a203-5d8bca82dbcb",
	"Coffer Platform Operator":                   "32d3cb4e-eea6-4387-a344-00e07bdbdc3f",
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustScope(t testing.TB, s string) Scope {
	t.Helper()
	sc, err := ParseScope(s)
	if err != nil {
		t.Fatalf("ParseScope(%q) = %v", s, err)
	}
	return sc
}

func TestVocabularyMatchesDocs(t *testing.T) {
	var want []Action
	for _, a := range docVaultDataActions {
		want = append(want, Action(vaultPrefix+a))
	}
	for _, a := range docHSMDataActions {
		want = append(want, Action(hsmPrefix+a))
	}
	got := AllDataActions()
	if len(got) != 76 || len(want) != 76 {
		t.Errorf("len(AllDataActions()) = %d, docs list %d; want 76 (41 vault + 35 HSM)", len(got), len(want))
	}
	for _, a := range want {
		if !slices.Contains(got, a) {
			t.Errorf("AllDataActions() lacks %q", a)
		}
		if !IsDataAction(a) {
			t.Errorf("IsDataAction(%q) = false; want true", a)
		}
	}
	for _, a := range got {
		if !slices.Contains(want, a) {
			t.Errorf("AllDataActions() has %q, which the docs do not list", a)
		}
	}
	for _, a := range AllManagementActions() {
		if IsDataAction(a) || !strings.HasPrefix(string(a), "Coffer/") {
			t.Errorf("management action %q: IsDataAction = %v; want false and a Coffer/ prefix", a, IsDataAction(a))
		}
	}
	if IsDataAction("Microsoft.KeyVault/vaults/keys/frobnicate/action") {
		t.Errorf("IsDataAction(unknown) = true; want false")
	}
	if !IsDataAction("microsoft.keyvault/VAULTS/keys/sign/ACTION") {
		t.Errorf("IsDataAction(other case) = false; want true (Azure compares actions case-insensitively)")
	}
}

func TestBuiltInRoleIDs(t *testing.T) {
	roles := BuiltInRoles()
	if len(roles) != len(docRoleIDs) {
		t.Errorf("len(BuiltInRoles()) = %d; want %d", len(roles), len(docRoleIDs))
	}
	for _, r := range roles {
		if want, ok := docRoleIDs[r.Name]; !ok || r.ID != want {
			t.Errorf("built-in role %q has id %q; want %q", r.Name, r.ID, want)
		}
		if r.Type != RoleTypeBuiltIn {
			t.Errorf("built-in role %q has type %q; want %q", r.Name, r.Type, RoleTypeBuiltIn)
		}
	}
	for name, id := range docRoleIDs {
		if r, ok := RoleByID(strings.ToUpper(id)); !ok || r.Name != name {
			t.Errorf("RoleByID(%q) = %q, %v; want %q", id, r.Name, ok, name)
		}
		if r, ok := RoleByName(strings.ToLower(name)); !ok || r.ID != id {
			t.Errorf("RoleByName(%q) = %q, %v; want %q", name, r.ID, ok, id)
		}
	}
	if _, ok := RoleByID("00000000-0000-0000-0000-000000000000"); ok {
		t.Errorf("RoleByID(unknown) found a role")
	}
	// Copies: changing one does not change the table.
	roles[0].Permissions[0].DataActions[0] = "*"
	if r, _ := RoleByID(roles[0].ID); r.Permissions[0].DataActions[0] == "*" {
		t.Errorf("BuiltInRoles() returned the package's own slices")
	}
}

// TestBuiltInRoleMatrix decides every built-in role × every data action × four scopes:
// the role's own vault or HSM (expected as the docs say), a sibling vault or HSM of the
// same tenant, the same names in another tenant, and the other kind of container (all
// expected denied).
func TestBuiltInRoleMatrix(t *testing.T) {
	const tenant = "t1"
	roles := BuiltInRoles()
	var assignments []Assignment
	for i, r := range roles {
		p := fmt.Sprintf("p%02d", i)
		assignments = append(assignments,
			Assignment{ID: p + "-vault", PrincipalID: p, TenantID: tenant, RoleDefinitionID: r.ID, Scope: "/tenants/t1/vaults/v1"},
			Assignment{ID: p + "-hsm", PrincipalID: p, TenantID: tenant, RoleDefinitionID: r.ID, Scope: "/tenants/t1/managedHsms/h1"},
		)
	}
	snap, err := NewSnapshot(nil, assignments)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	scopes := map[string]Scope{
		"vault":          mustScope(t, "/tenants/t1/vaults/v1"),
		"sibling-vault":  mustScope(t, "/tenants/t1/vaults/v2"),
		"foreign-vault":  mustScope(t, "/tenants/t2/vaults/v1"),
		"hsm":            mustScope(t, "/tenants/t1/managedHsms/h1"),
		"sibling-hsm":    mustScope(t, "/tenants/t1/managedHsms/h2"),
		"foreign-hsm":    mustScope(t, "/tenants/t2/managedHsms/h1"),
		"vault-named-h1": mustScope(t, "/tenants/t1/vaults/h1"),
	}
	var rows, allows, deviations int
	forEachPublished(t, roles, func(i int, r RoleDefinition, a Action, want bool) {
		var own string
		var others []string
		switch {
		case strings.HasPrefix(string(a), vaultPrefix):
			own, others = "vault", []string{"sibling-vault", "foreign-vault", "hsm"}
		case strings.HasPrefix(string(a), hsmPrefix):
			own, others = "hsm", []string{"sibling-hsm", "foreign-hsm", "vault-named-h1"}
		default:
			t.Fatalf("data action %q has neither prefix", a)
		}
		for _, where := range append([]string{own}, others...) {
			w := want && where == own
			d := snap.Decide(Request{PrincipalID: fmt.Sprintf("p%02d", i), PrincipalTenant: tenant, Action: a, Scope: scopes[where], Now: testNow})
			rows++
			if d.Allowed {
				allows++
			}
			if d.Allowed != w {
				deviations++
				t.Errorf("%s × %s at %s: Allowed = %v (%s); want %v", r.Name, a, where, d.Allowed, d.Reason, w)
			}
		}
	})
	// Every action listed as allowed must exist, or a typo would only ever expect a deny.
	for name, exp := range docAllowed {
		for _, a := range exp.vault {
			if !IsDataAction(Action(vaultPrefix + a)) {
				t.Errorf("expectation for %q names unknown action %q", name, a)
			}
		}
		for _, a := range exp.hsm {
			if !IsDataAction(Action(hsmPrefix + a)) {
				t.Errorf("expectation for %q names unknown action %q", name, a)
			}
		}
	}
	t.Logf("authorization matrix: %d roles × %d data actions × 4 scopes = %d decisions, %d allowed, %d denied, %d deviations",
		len(roles), len(AllDataActions()), rows, allows, rows-allows, deviations)
}

// TestManagementMatrix decides every built-in role × every Coffer management action, with
// the role assigned at the platform scope and at a tenant scope.
func TestManagementMatrix(t *testing.T) {
	tenantAdmin := []Action{
		TenantsRead, VaultsRead, VaultsWrite, VaultsDelete, ManagedHSMsRead, ManagedHSMsWrite,
		ManagedHSMsDelete, PrincipalsRead, PrincipalsWrite, RoleAssignmentsRead, RoleAssignmentsWrite,
		RoleDefinitionsRead, RoleDefinitionsWrite, IssuersRead, IssuersWrite, CAsRead, CAsWrite, AttestationRead, AttestationWrite, AccessRequestsCreate,
		AccessRequestsApprove, AuditRead,
	}
	operator := []Action{TenantsRead, TenantsWrite, SysSeal, SysRotate, SysMetrics, AccessRequestsCreate}
	platformOnly := []Action{SysSeal, SysRotate, SysMetrics}

	roles := BuiltInRoles()
	var assignments []Assignment
	for i, r := range roles {
		assignments = append(assignments,
			Assignment{ID: fmt.Sprintf("a%02d-root", i), PrincipalID: fmt.Sprintf("root%02d", i), TenantID: "ops", RoleDefinitionID: r.ID, Scope: "/"},
			Assignment{ID: fmt.Sprintf("a%02d-t1", i), PrincipalID: fmt.Sprintf("t1p%02d", i), TenantID: "t1", RoleDefinitionID: r.ID, Scope: "/tenants/t1"},
		)
	}
	snap, err := NewSnapshot(nil, assignments)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	rows := 0
	for i, r := range roles {
		var granted []Action
		switch r.Name {
		case "Coffer Tenant Administrator":
			granted = tenantAdmin
		case "Coffer Platform Operator":
			granted = operator
		}
		for _, a := range AllManagementActions() {
			want := slices.Contains(granted, a)
			d := snap.Decide(Request{PrincipalID: fmt.Sprintf("root%02d", i), PrincipalTenant: "ops", Action: a, Scope: PlatformScope(), Now: testNow})
			if d.Allowed != want {
				t.Errorf("%s at / × %s: Allowed = %v (%s); want %v", r.Name, a, d.Allowed, d.Reason, want)
			}
			want = want && !slices.Contains(platformOnly, a)
			d = snap.Decide(Request{PrincipalID: fmt.Sprintf("t1p%02d", i), PrincipalTenant: "t1", Action: a, Scope: mustScope(t, "/tenants/t1/vaults/v1"), Now: testNow})
			if d.Allowed != want {
				t.Errorf("%s at /tenants/t1 × %s on its vault: Allowed = %v (%s); want %v", r.Name, a, d.Allowed, d.Reason, want)
			}
			rows += 2
		}
	}
	t.Logf("management matrix: %d roles × %d actions × 2 scopes = %d decisions", len(roles), len(AllManagementActions()), rows)
}

// TestPlatformOperatorHasNoDataAction checks that Coffer's management roles, assigned at
// the platform scope and at the tenant, reach no data action on any scope of the tenant.
func TestPlatformOperatorHasNoDataAction(t *testing.T) {
	for _, role := range []string{CofferPlatformOperatorRoleID, CofferTenantAdministratorRoleID} {
		snap, err := NewSnapshot(nil, []Assignment{
			{ID: "root", PrincipalID: "op", TenantID: "t1", RoleDefinitionID: role, Scope: "/"},
			{ID: "tenant", PrincipalID: "op", TenantID: "t1", RoleDefinitionID: role, Scope: "/tenants/t1"},
		})
		if err != nil {
			t.Fatalf("NewSnapshot: %v", err)
		}
		scopes := []string{
			"/", "/tenants/t1", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v1/keys/k1",
			"/tenants/t1/vaults/v1/secrets/s1", "/tenants/t1/vaults/v1/certificates/c1",
			"/tenants/t1/managedHsms/h1", "/tenants/t1/managedHsms/h1/keys/k1",
		}
		n := 0
		for _, s := range scopes {
			for _, a := range AllDataActions() {
				d := snap.Decide(Request{PrincipalID: "op", PrincipalTenant: "t1", Action: a, Scope: mustScope(t, s), Now: testNow})
				if d.Allowed {
					t.Errorf("role %s: Decide(%s at %s) allowed by %s; want denied", role, a, s, d.AssignmentID)
				}
				n++
			}
		}
		t.Logf("role %s: %d data-action decisions, all denied", role, n)
	}
}

// objectActions says, by the published model, which data actions an assignment at one
// object's scope can grant on that object: a vault key's scope the keys and key rotation
// policy actions (Azure RBAC at key scope), a secret's the secrets actions, a certificate's
// the certificates actions (issuers and contacts are vault-wide); a Managed HSM key's scope
// ("/keys/{name}" in local RBAC) the keys actions and role assignments at that scope (role
// definitions live at "/" only).
var objectActions = map[string][]string{
	"vault-key":         {vaultPrefix + "keys/", vaultPrefix + "keyrotationpolicies/"},
	"vault-secret":      {vaultPrefix + "secrets/"},
	"vault-certificate": {vaultPrefix + "certificates/"},
	"hsm-key":           {hsmPrefix + "keys/", hsmPrefix + "roleAssignments/"},
}

// TestBuiltInRoleMatrixScopes decides every built-in role × every data action at the scopes
// TestBuiltInRoleMatrix leaves out: the role assigned at the tenant (Azure's subscription
// level; expected as at the container, in every vault and pool of the tenant and in no other
// tenant's — except a Managed HSM local role, which exists only in a pool's local RBAC and
// grants nothing when assigned at the tenant), and assigned at one object (a key, a secret or a certificate of a vault, a key of
// a pool; expected as the docs say on that object for the actions objectActions lists, and
// denied on a sibling object, on the container itself and for every other action).
func TestBuiltInRoleMatrixScopes(t *testing.T) {
	roles := BuiltInRoles()
	objects := map[string]struct{ own, sibling, container string }{
		"vault-key":         {"/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1/keys/k2", "/tenants/t1/vaults/v1"},
		"vault-secret":      {"/tenants/t1/vaults/v1/secrets/k1", "/tenants/t1/vaults/v1/secrets/k2", "/tenants/t1/vaults/v1"},
		"vault-certificate": {"/tenants/t1/vaults/v1/certificates/k1", "/tenants/t1/vaults/v1/certificates/k2", "/tenants/t1/vaults/v1"},
		"hsm-key":           {"/tenants/t1/managedHsms/h1/keys/k1", "/tenants/t1/managedHsms/h1/keys/k2", "/tenants/t1/managedHsms/h1"},
	}
	var assignments []Assignment
	for i, r := range roles {
		assignments = append(assignments, Assignment{ID: fmt.Sprintf("t%02d", i), PrincipalID: fmt.Sprintf("tenant%02d", i), TenantID: "t1", RoleDefinitionID: r.ID, Scope: "/tenants/t1"})
		for kind, o := range objects {
			assignments = append(assignments, Assignment{ID: fmt.Sprintf("o%02d-%s", i, kind), PrincipalID: fmt.Sprintf("obj%02d-%s", i, kind), TenantID: "t1", RoleDefinitionID: r.ID, Scope: o.own})
		}
	}
	snap, err := NewSnapshot(nil, assignments)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	var rows, allows, deviations int
	decide := func(principal string, a Action, scope string, want bool, what string) {
		t.Helper()
		d := snap.Decide(Request{PrincipalID: principal, PrincipalTenant: "t1", Action: a, Scope: mustScope(t, scope), Now: testNow})
		rows++
		if d.Allowed {
			allows++
		}
		if d.Allowed != want {
			deviations++
			t.Errorf("%s × %s at %s: Allowed = %v (%s); want %v", what, a, scope, d.Allowed, d.Reason, want)
		}
	}
	forEachPublished(t, roles, func(i int, r RoleDefinition, a Action, published bool) {
		// At the tenant: as at the container, in both containers of t1, none of t2.
		own := []string{"/tenants/t1/vaults/v1", "/tenants/t1/vaults/v2"}
		foreign := []string{"/tenants/t2/vaults/v1", "/tenants/t1/managedHsms/h1"}
		if strings.HasPrefix(string(a), hsmPrefix) {
			own, foreign = []string{"/tenants/t1/managedHsms/h1", "/tenants/t1/managedHsms/h2"}, []string{"/tenants/t2/managedHsms/h1", "/tenants/t1/vaults/h1"}
		}
		atTenant := published && !strings.HasPrefix(r.Name, "Managed HSM ")
		for _, s := range own {
			decide(fmt.Sprintf("tenant%02d", i), a, s, atTenant, r.Name+" at the tenant")
		}
		for _, s := range foreign {
			decide(fmt.Sprintf("tenant%02d", i), a, s, false, r.Name+" at the tenant")
		}
		// At one object.
		for kind, o := range objects {
			onObject := slices.ContainsFunc(objectActions[kind], func(p string) bool { return strings.HasPrefix(string(a), p) })
			who, what := fmt.Sprintf("obj%02d-%s", i, kind), r.Name+" at "+kind+" k1"
			decide(who, a, o.own, published && onObject, what)
			decide(who, a, o.sibling, false, what)
			decide(who, a, o.container, false, what)
		}
	})
	t.Logf("authorization matrix, tenant and object scopes: %d roles × %d data actions × 16 scopes = %d decisions, %d allowed, %d denied, %d deviations",
		len(roles), len(AllDataActions()), rows, allows, rows-allows, deviations)
}

// forEachPublished calls fn for every role of roles × every data action, with whether the
// published table (docAllowed) allows the action to the role at its own container.
func forEachPublished(t *testing.T, roles []RoleDefinition, fn func(i int, r RoleDefinition, a Action, published bool)) {
	t.Helper()
	for i, r := range roles {
		exp, ok := docAllowed[r.Name]
		if !ok {
			t.Errorf("role %q has no row in the expectation table", r.Name)
			continue
		}
		for _, a := range AllDataActions() {
			fn(i, r, a, slices.Contains(exp.vault, strings.TrimPrefix(string(a), vaultPrefix)) ||
				slices.Contains(exp.hsm, strings.TrimPrefix(string(a), hsmPrefix)))
		}
	}
}
