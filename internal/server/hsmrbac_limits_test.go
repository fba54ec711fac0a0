package server

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
)

// TestManagedHSMRBACPagingAndLimits fills a pool up to Azure's Managed HSM limits through
// the RBAC API (50 role assignments at HSM scope, 10 at a key's scope, 50 custom roles),
// checks that one more is 400 in Key Vault's shape with nothing written, and pages through
// the listings the way azadmin's pagers do, with $filter kept across pages.
func TestManagedHSMRBACPagingAndLimits(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	resource := "https://managedhsm.localhost:" + ts.resources().port
	_, adminTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, resource)
	admin := mhsmRBAC{t, hc, strings.TrimSuffix(dev.ManagedHSMURL, "/"), adminTok}
	p2, _, err := ts.tenants.CreateServicePrincipal(ctx, dev.TenantID, "second")
	if err != nil {
		t.Fatal(err)
	}
	const cryptoUser = "21dbd100-6940-42c2-9190-5d6cb909625b"
	// guid names the i-th object of a group; groups sort before the dev principal's
	// random assignment ids, so a filter lost between pages would show.
	guid := func(group, i int) string { return fmt.Sprintf("%08d-0000-4000-8000-%012d", group, i) }
	assignments := "/providers/Microsoft.Authorization/roleAssignments/"
	wantRefused := func(what string, st int, body map[string]any, code string) {
		t.Helper()
		if st != 400 || errorCode(t, body) != code {
			t.Errorf("%s = %d %v; want 400 %s", what, st, body, code)
		}
	}

	devNames, _, _ := admin.list("/", "roleAssignments", "atScope()")
	var mine []string
	atRoot := len(devNames) // assignments at "/"; the rest of the 50 are at "/keys"
	for i := range 50 - len(devNames) {
		scope := []string{"/", "/keys"}[i%2] // both are HSM scope
		if st, body := admin.assign(scope, guid(0, i), cryptoUser, p2.ObjectID); st != 201 {
			t.Fatalf("assignment %d at %s = %d %v; want 201", i, scope, st, body)
		}
		mine = append(mine, guid(0, i))
		if scope == "/" {
			atRoot++
		}
	}
	for _, scope := range []string{"/", "/keys"} {
		st, body := admin.assign(scope, guid(9, 0), cryptoUser, p2.ObjectID)
		wantRefused("the 51st assignment at "+scope, st, body, "RoleAssignmentLimitExceeded")
	}
	if st, _ := admin.do("GET", "/", assignments+guid(9, 0), nil); st != 404 {
		t.Errorf("get the refused assignment = %d; want 404 (nothing written)", st)
	}
	if st, body := admin.assign("/", guid(0, 0), cryptoUser, p2.ObjectID); st != 201 {
		t.Errorf("the same PUT again at the limit = %d %v; want 201", st, body)
	}
	for i := range 10 {
		if st, body := admin.assign("/keys/k1", guid(1, i), cryptoUser, p2.ObjectID); st != 201 {
			t.Fatalf("assignment %d at /keys/k1 = %d %v; want 201", i, st, body)
		}
		mine = append(mine, guid(1, i))
	}
	st, body := admin.assign("/keys/k1", guid(9, 1), cryptoUser, p2.ObjectID)
	wantRefused("the 11th assignment at /keys/k1", st, body, "RoleAssignmentLimitExceeded")
	if st, body := admin.assign("/keys/k2", guid(1, 10), cryptoUser, p2.ObjectID); st != 201 {
		t.Errorf("an assignment at /keys/k2 = %d %v; want 201 (each key has its own 10)", st, body)
	}
	mine = append(mine, guid(1, 10))
	slices.Sort(mine)

	for _, tc := range []struct {
		name, scope, filter string
		want                int // items
		pages               int
	}{
		{"all", "/", "", 61, 3},
		{"at-root", "/", "atScope()", atRoot, 2},
		{"hsm-scope", "/keys", "atScope()", 50, 2},
		{"at-or-above-k1", "/keys/k1", "atScope()", 60, 3},
		{"k2-and-above", "/keys/k2", "", 51, 3},
		{"principal", "/", "principalId eq '" + p2.ObjectID + "'", len(mine), 3},
	} {
		names, pages, next := admin.list(tc.scope, "roleAssignments", tc.filter)
		if len(names) != tc.want || pages != tc.pages || !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Errorf("%s: %d names in %d pages (sorted %v); want %d distinct in %d pages, sorted", tc.name, len(names), pages, slices.IsSorted(names), tc.want, tc.pages)
		}
		if tc.filter != "" && !strings.Contains(next, "%24filter="+url.QueryEscape(tc.filter)) {
			t.Errorf("%s: nextLink %q does not repeat $filter", tc.name, next)
		}
		if tc.name == "principal" && !slices.Equal(names, mine) {
			t.Errorf("principal: listed %v; want exactly %v", names, mine)
		}
	}
	st, body = admin.do("GET", "/", "/providers/Microsoft.Authorization/roleAssignments?$skiptoken="+url.QueryEscape("../x"), nil)
	wantRefused("a forged $skiptoken", st, body, "BadParameter")

	// Custom role definitions: 50 per pool; replacing one is not creating one.
	builtIn := 0
	for _, r := range authz.BuiltInRoles() {
		if strings.HasPrefix(r.Name, "Managed HSM ") {
			builtIn++
		}
	}
	role := func(name, description string) map[string]any {
		return map[string]any{"properties": map[string]any{"roleName": name, "description": description, "assignableScopes": []string{"/"},
			"permissions": []map[string]any{{"dataActions": []string{string(authz.HSMKeysSign)}}}}}
	}
	definitions := "/providers/Microsoft.Authorization/roleDefinitions/"
	for i := range 50 {
		if st, body := admin.do("PUT", "/", definitions+guid(2, i), role(fmt.Sprintf("Signer %02d", i), "signs")); st != 201 {
			t.Fatalf("custom role %d = %d %v; want 201", i, st, body)
		}
	}
	st, body = admin.do("PUT", "/", definitions+guid(9, 2), role("One too many", "signs"))
	wantRefused("the 51st custom role", st, body, "RoleDefinitionLimitExceeded")
	if st, _ := admin.do("GET", "/", definitions+guid(9, 2), nil); st != 404 {
		t.Errorf("get the refused role = %d; want 404 (nothing written)", st)
	}
	if st, body := admin.do("PUT", "/", definitions+guid(2, 0), role("Signer 00", "signs, updated")); st != 201 || body["properties"].(map[string]any)["description"] != "signs, updated" {
		t.Errorf("replacing a custom role at the limit = %d %v; want 201", st, body)
	}
	defs, pages, _ := admin.list("/", "roleDefinitions", "")
	if want := builtIn + 50; len(defs) != want || pages != (want+24)/25 {
		t.Errorf("role definitions: %d in %d pages; want %d in %d", len(defs), pages, want, (want+24)/25)
	}
	if one, _, _ := admin.list("/", "roleDefinitions", "roleName eq 'Signer 49'"); !slices.Equal(one, []string{guid(2, 49)}) {
		t.Errorf("roleName filter = %v; want [%s]", one, guid(2, 49))
	}
}
