package mgmt

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// FuzzRequestBodies sends arbitrary bodies to a management route that reads one (any but the
// CA's, which this fixture has no CA service for), as the operator or as the tenant's
// administrator, through the route pipeline: every answer is below 500, and every error is
// Key Vault's {"error":{"code","message"}}.
func FuzzRequestBodies(f *testing.F) {
	fx := newFixture(f)
	call := func(method, path, token, body string) (int, []byte) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		fx.mux.ServeHTTP(w, req)
		return w.Code, w.Body.Bytes()
	}
	status, body := call("POST", "/v1/tenants", "cof.operator", `{"name":"Fuzz"}`)
	var tc TenantCreated
	if status != http.StatusCreated || json.Unmarshal(body, &tc) != nil {
		f.Fatalf("create tenant = %d %s", status, body)
	}
	tid, admin := tc.Tenant.ID, tc.Administrator
	tok := fx.ids.issue(api.Caller{TenantID: tid, ObjectID: admin.ObjectID, AppID: admin.ClientID})
	const rid = "00000000-0000-4000-8000-00000000000a"
	tp := "/v1/tenants/" + tid
	routes := []struct{ method, path, token string }{
		{"POST", "/v1/tenants", "cof.operator"},
		{"PUT", tp + "/vaults/fuzzvault", tok},
		{"PUT", tp + "/managedHsms/fuzzpool", tok},
		{"POST", tp + "/principals", tok},
		{"POST", tp + "/principals/" + admin.ObjectID + "/secrets", tok},
		{"POST", tp + "/principals/" + admin.ObjectID + "/certificates", tok},
		{"PUT", tp + "/roleAssignments/" + rid, tok},
		{"PUT", tp + "/roleDefinitions/" + rid, tok},
		{"PUT", tp + "/attestationProviders/fuzzattest", tok},
		{"POST", tp + "/issuers", tok},
		{"POST", tp + "/issuers/" + rid + "/users", tok},
		{"POST", tp + "/accessRequests", tok},
		{"POST", tp + "/accessRequests/" + rid + "/approve", tok},
	}
	for _, s := range []string{
		`{"name":"Contoso"}`, `{"softDeleteRetentionInDays":7,"enablePurgeProtection":true}`, `{"displayName":"app"}`,
		`{"certificate":"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"}`,
		`{"principalId":"` + admin.ObjectID + `","roleDefinitionId":"` + admin.RoleDefinitionID + `","scope":"/tenants/` + tid + `/vaults/fuzzvault"}`,
		`{"roleName":"r","description":"d","permissions":[{"actions":["Microsoft.KeyVault/vaults/read"],"notActions":[],"dataActions":["Microsoft.KeyVault/vaults/keys/read"],"notDataActions":[]}],"assignableScopes":["/"]}`,
		`{"policy":{"version":"1.0","rules":[]}}`, `{"issuer":"https://issuer.example","audience":"api://coffer"}`,
		`{"subject":"user-1","displayName":"User"}`, `{"scope":"/","roleDefinitionId":"` + admin.RoleDefinitionID + `","duration":"PT1H","justification":"incident"}`,
		``, `[]`, `{"name":"a","name":"b"}`, `null`,
	} {
		for i := range routes {
			f.Add(uint8(i), s)
		}
	}
	// One route per input: creating tenants, principals and secrets hashes a client secret
	// with argon2id (tens of milliseconds), so every route per input would crawl.
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
		status, out := call(rt.method, rt.path, rt.token, body)
		if status >= 500 {
			t.Fatalf("%s %s with %q = %d %s; want below 500", rt.method, rt.path, body, status, out)
		}
		if status >= 400 {
			var e struct {
				Error *struct {
					Code    *string `json:"code"`
					Message *string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(out, &e) != nil || e.Error == nil || e.Error.Code == nil || e.Error.Message == nil {
				t.Fatalf("%s %s with %q = %d %s; want Key Vault's error shape", rt.method, rt.path, body, status, out)
			}
		}
	})
}

// FuzzTokenTenant: the unverified tid read from a bearer token only picks the issuer the
// token is validated against; whatever the header, it is a tenant UUID or nothing.
func FuzzTokenTenant(f *testing.F) {
	f.Add(fakeJWT("00000000-0000-4000-8000-000000000001", "n"))
	f.Add("a.b.c")
	f.Add("a.eyJ0aWQiOiIuLi9ldGMifQ.c")
	f.Fuzz(func(t *testing.T, raw string) {
		if tid, ok := tokenTenant(raw); ok != tenancy.IsUUID(tid) || !ok && tid != "" {
			t.Fatalf("tokenTenant(%q) = %q, %v", raw, tid, ok)
		}
	})
}
