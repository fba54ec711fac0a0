package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// mhsmRBAC sends Managed HSM RBAC requests exactly as the azadmin rbac client builds them
// (sdk/security/keyvault/azadmin/rbac/client.go at the source's head): the path is
// runtime.JoinPaths(hsmURL, "/{scope}/providers/Microsoft.Authorization/...") with the
// scope inserted verbatim ("/", "/keys", "/keys/k1"), api-version 2026-01-01-preview,
// bodies are {"properties":{...}}, success is 201 for PUT, 200 otherwise, and its pagers
// follow nextLink with runtime.FetcherForNextLink. The azadmin module itself is not on the
// module proxy this machine reaches (its version list is 404, every version 403 "This
// module version is not available"), hence this stand-in.
type mhsmRBAC struct {
	t     *testing.T
	hc    *http.Client
	base  string
	token string
}

func (c mhsmRBAC) do(method, scope, path string, body any) (int, map[string]any) {
	c.t.Helper()
	u := runtime.JoinPaths(c.base, "/"+scope+path)
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		if raw, ok := body.(string); ok {
			b = []byte(raw)
		}
		r = bytes.NewReader(b)
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, u+sep+"api-version="+azadminAPIVersion, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// azadminAPIVersion is the api-version azadmin's rbac client sends.
const azadminAPIVersion = "2026-01-01-preview"

// list pages through a roleAssignments or roleDefinitions listing as azadmin's pagers do
// and returns every item's name, the number of pages and the first page's nextLink.
func (c mhsmRBAC) list(scope, what, filter string) (names []string, pages int, firstNext string) {
	c.t.Helper()
	q := url.Values{"api-version": {azadminAPIVersion}}
	if filter != "" {
		q.Set("$filter", filter)
	}
	items, pages, firstNext := pageAll(c.t, c.hc, c.token, runtime.JoinPaths(c.base, "/"+scope+"/providers/Microsoft.Authorization/"+what)+"?"+q.Encode())
	for _, it := range items {
		n, _ := it["name"].(string)
		names = append(names, n)
	}
	return names, pages, firstNext
}

// pageAll reads a Key Vault listing from first on, following nextLink the way the SDKs'
// pagers do (runtime.FetcherForNextLink over an azcore pipeline), and returns every item,
// the number of pages and the first page's nextLink.
func pageAll(t *testing.T, hc *http.Client, token, first string) (items []map[string]any, pages int, firstNext string) {
	t.Helper()
	pl := runtime.NewPipeline("coffer-test", "v0.0.0", runtime.PipelineOptions{PerCall: []policy.Policy{bearerPolicy(token)}},
		&policy.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}})
	firstReq := func(ctx context.Context) (*policy.Request, error) {
		return runtime.NewRequest(ctx, http.MethodGet, first)
	}
	next := ""
	for {
		resp, err := runtime.FetcherForNextLink(context.Background(), pl, next, firstReq, nil)
		if err != nil {
			t.Fatalf("list %s, page %d: %v", first, pages+1, err)
		}
		var page struct {
			Value    []map[string]any
			NextLink *string
		}
		if err := runtime.UnmarshalAsJSON(resp, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		items = append(items, page.Value...)
		if page.NextLink == nil || *page.NextLink == "" {
			return items, pages, firstNext
		}
		if pages == 1 {
			firstNext = *page.NextLink
		}
		next = *page.NextLink
	}
}

// bearerPolicy sets a fixed bearer token on every request.
type bearerPolicy string

func (b bearerPolicy) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("Authorization", "Bearer "+string(b))
	return req.Next()
}

func (c mhsmRBAC) assign(scope, name, roleID, principal string) (int, map[string]any) {
	return c.do("PUT", scope, "/providers/Microsoft.Authorization/roleAssignments/"+name,
		map[string]any{"properties": map[string]string{"roleDefinitionId": roleID, "principalId": principal}})
}

// sign signs a digest with a pool key as token's principal and returns the status.
func (c mhsmRBAC) sign(key string) int {
	c.t.Helper()
	st, _ := c.do("POST", "", "keys/"+key+"/sign", map[string]string{"alg": "ES256", "value": base64.RawURLEncoding.EncodeToString(make([]byte, 32))})
	return st
}

// TestManagedHSMLocalRBAC drives the pool's local RBAC endpoints the way azadmin's rbac
// client does: assigning Managed HSM Crypto User to a second principal at /keys/k1 lets it
// sign with k1 but not k2 at once; deleting the assignment takes it away; custom roles work
// end to end; a principal of another tenant cannot assign in this pool; bad input is 4xx.
func TestManagedHSMLocalRBAC(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	pool := poolClient(t, ts)
	for _, k := range []string{"k1", "k2"} {
		if _, err := pool.CreateKey(ctx, k, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil); err != nil {
			t.Fatalf("CreateKey(%s) = %v", k, err)
		}
	}
	dev := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	base := strings.TrimSuffix(dev.ManagedHSMURL, "/")
	resource := "https://managedhsm.localhost:" + ts.resources().port
	_, adminTok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, dev.ClientSecret, resource)
	admin := mhsmRBAC{t, hc, base, adminTok}
	p2, secret2, err := ts.tenants.CreateServicePrincipal(ctx, dev.TenantID, "second")
	if err != nil {
		t.Fatal(err)
	}
	_, tok2 := rawToken(t, ts, hc, dev.TenantID, p2.AppID, secret2, resource)
	user := mhsmRBAC{t, hc, base, tok2}
	if st := user.sign("k1"); st != 403 {
		t.Fatalf("sign before any assignment = %d; want 403", st)
	}

	cryptoUser := "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b"
	const name = "0f2f0a9e-1c0f-4e4e-9b3a-7d5b1c2a3e4f"
	st, body := admin.assign("/keys/k1", name, cryptoUser, p2.ObjectID)
	props, _ := body["properties"].(map[string]any)
	if st != 201 || body["name"] != name || body["type"] != "Microsoft.Authorization/roleAssignments" ||
		body["id"] != "/keys/k1/providers/Microsoft.Authorization/roleAssignments/"+name ||
		props["scope"] != "/keys/k1" || props["roleDefinitionId"] != cryptoUser || props["principalId"] != p2.ObjectID {
		t.Fatalf("create assignment = %d %v; want 201 in Managed HSM's shape", st, body)
	}
	if st := user.sign("k1"); st != 200 {
		t.Errorf("sign with k1 after the assignment = %d; want 200", st)
	}
	if st := user.sign("k2"); st != 403 {
		t.Errorf("sign with k2 (not assigned) = %d; want 403", st)
	}
	if st, _ := user.assign("/", "6a8b1d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e", cryptoUser, p2.ObjectID); st != 403 {
		t.Errorf("Crypto User assigning roles = %d; want 403 (no roleAssignments/write)", st)
	}
	if st, _ := admin.assign("/keys/k1", name, cryptoUser, p2.ObjectID); st != 201 {
		t.Errorf("the same PUT again = %d; want 201", st)
	}

	if st, body := admin.do("GET", "/keys/k1", "/providers/Microsoft.Authorization/roleAssignments/"+name, nil); st != 200 || body["name"] != name {
		t.Errorf("get assignment = %d %v", st, body)
	}
	listHas := func(scope, filter string) bool {
		t.Helper()
		st, body := admin.do("GET", scope, "/providers/Microsoft.Authorization/roleAssignments?$filter="+url.QueryEscape(filter), nil)
		if st != 200 {
			t.Fatalf("list at %s (%s) = %d %v", scope, filter, st, body)
		}
		for _, v := range body["value"].([]any) {
			if v.(map[string]any)["name"] == name {
				return true
			}
		}
		return false
	}
	if !listHas("/keys/k1", "atScope()") || !listHas("/", "principalId eq '"+p2.ObjectID+"'") || listHas("/", "atScope()") || listHas("/keys/k2", "") {
		t.Error("list filters: want the assignment at /keys/k1 (atScope) and for its principal, not at / (atScope) or /keys/k2")
	}

	if st, _ := admin.do("DELETE", "/keys/k1", "/providers/Microsoft.Authorization/roleAssignments/"+name, nil); st != 200 {
		t.Fatalf("delete assignment = %d; want 200", st)
	}
	if st := user.sign("k1"); st != 403 {
		t.Errorf("sign with k1 after the delete = %d; want 403", st)
	}
	if st, body := admin.do("GET", "/keys/k1", "/providers/Microsoft.Authorization/roleAssignments/"+name, nil); st != 404 || errorCode(t, body) != "RoleAssignmentNotFound" {
		t.Errorf("get deleted assignment = %d %v; want 404 RoleAssignmentNotFound", st, body)
	}

	// Role definitions: built-ins with Azure ids, and a custom role that grants sign.
	if st, body := admin.do("GET", "/", "/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", nil); st != 200 ||
		body["properties"].(map[string]any)["roleName"] != "Managed HSM Crypto User" || body["properties"].(map[string]any)["type"] != "AKVBuiltInRole" {
		t.Errorf("get built-in role = %d %v", st, body)
	}
	const roleID = "7d1e6a53-9c0b-4a2e-8f4d-2b6c1e9a0d37"
	custom := map[string]any{"properties": map[string]any{"roleName": "Signer", "description": "signs", "type": "CustomRole", "assignableScopes": []string{"/"},
		"permissions": []map[string]any{{"dataActions": []string{string(authz.HSMKeysSign)}}}}}
	if st, body := admin.do("PUT", "/", "/providers/Microsoft.Authorization/roleDefinitions/"+roleID, custom); st != 201 || body["name"] != roleID {
		t.Fatalf("create custom role = %d %v; want 201", st, body)
	}
	if st, body := admin.assign("/", "3c9d2e7f-5a1b-4c6d-9e8f-1a2b3c4d5e6f", roleID, p2.ObjectID); st != 201 {
		t.Fatalf("assign custom role = %d %v", st, body)
	}
	if st := user.sign("k2"); st != 200 {
		t.Errorf("sign with k2 under the custom role at / = %d; want 200", st)
	}
	if st, body := admin.do("DELETE", "/", "/providers/Microsoft.Authorization/roleDefinitions/"+roleID, nil); st != 409 {
		t.Errorf("delete an assigned custom role = %d %v; want 409", st, body)
	}
	admin.do("DELETE", "/", "/providers/Microsoft.Authorization/roleAssignments/3c9d2e7f-5a1b-4c6d-9e8f-1a2b3c4d5e6f", nil)
	if st, _ := admin.do("DELETE", "/", "/providers/Microsoft.Authorization/roleDefinitions/"+roleID, nil); st != 200 {
		t.Errorf("delete custom role = %d; want 200", st)
	}

	// A principal of tenant B (an administrator there) cannot assign in this pool.
	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindManagedHSM, "bpool", tenancy.VaultOptions{})
	pb, secretB, _ := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b")
	ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Managed HSM Administrator"), Scope: "/tenants/" + tb.ID + "/managedHsms/bpool"})
	_, tokB := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, resource)
	other := mhsmRBAC{t, hc, base, tokB}
	if st, _ := other.assign("/", "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", cryptoUser, pb.ObjectID); st != 401 {
		t.Errorf("tenant B assigning in tenant A's pool = %d; want 401 (as for a pool that does not exist)", st)
	}
	if st, _ := (mhsmRBAC{t, hc, strings.Replace(base, "devhsm", "bpool", 1), tokB}).assign("/", "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", cryptoUser, p2.ObjectID); st != 400 {
		t.Errorf("tenant B assigning tenant A's principal in its own pool = %d; want 400", st)
	}

	for _, tc := range []struct {
		name, method, scope, path string
		body                      any
		want                      int
	}{
		{"fail/name-not-guid", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/not-a-guid", map[string]any{"properties": map[string]string{"roleDefinitionId": cryptoUser, "principalId": p2.ObjectID}}, 400},
		{"fail/no-properties", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/" + name, map[string]any{}, 400},
		{"fail/not-json", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/" + name, `{"properties":`, 400},
		{"fail/unknown-role", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/" + name, map[string]any{"properties": map[string]string{"roleDefinitionId": "11111111-2222-4333-8444-555555555555", "principalId": p2.ObjectID}}, 404},
		{"fail/vault-role", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/" + name, map[string]any{"properties": map[string]string{"roleDefinitionId": mustRole("Key Vault Administrator"), "principalId": p2.ObjectID}}, 404},
		{"fail/unknown-principal", "PUT", "/", "/providers/Microsoft.Authorization/roleAssignments/" + name, map[string]any{"properties": map[string]string{"roleDefinitionId": cryptoUser, "principalId": "11111111-2222-4333-8444-555555555555"}}, 400},
		{"fail/bad-key-name", "GET", "/keys/bad_name", "/providers/Microsoft.Authorization/roleAssignments", nil, 400},
		{"fail/bad-filter", "GET", "/", "/providers/Microsoft.Authorization/roleAssignments?$filter=" + url.QueryEscape("1 eq 1"), nil, 400},
		{"fail/builtin-role-put", "PUT", "/", "/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", custom, 400},
		{"fail/unknown-action", "PUT", "/", "/providers/Microsoft.Authorization/roleDefinitions/" + roleID, map[string]any{"properties": map[string]any{"roleName": "X", "permissions": []map[string]any{{"dataActions": []string{"Microsoft.KeyVault/managedHsm/keys/fly/action"}}}}}, 400},
		{"fail/builtin-role-delete", "DELETE", "/", "/providers/Microsoft.Authorization/roleDefinitions/21dbd100-6940-42c2-9190-5d6cb909625b", nil, 400},
	} {
		st, body := admin.do(tc.method, tc.scope, tc.path, tc.body)
		if st != tc.want {
			t.Errorf("%s: %s %s = %d %v; want %d", tc.name, tc.method, tc.path, st, body, tc.want)
		} else {
			errorCode(t, body)
		}
	}
	if st, body := admin.do("GET", "/", "/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()", nil); st != 200 || len(body["value"].([]any)) != 3 {
		t.Errorf("assignments at / after the bad inputs = %d %v; want the dev principal's 3, nothing written", st, body)
	}
}
