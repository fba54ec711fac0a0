package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// TestCrossTenantDataPlane sends a valid token of tenant B to every data-plane route of tenant
// A's vault, for a key that exists and one that does not, and to the same routes of a vault
// that does not exist: every answer is the same 401, so B learns nothing about A.
func TestCrossTenantDataPlane(t *testing.T) {
	ts := startDev(t)
	ctx := context.Background()
	owner := keysClient(t, ts)
	if _, err := owner.CreateKey(ctx, "k1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}, nil); err != nil {
		t.Fatal(err)
	}
	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindVault, "bvault", tenancy.VaultOptions{})
	pb, secretB, _ := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b")
	// B is an administrator of its own tenant's vaults: the strongest cross-tenant attacker.
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Key Vault Administrator"), Scope: "/tenants/" + tb.ID}); err != nil {
		t.Fatal(err)
	}
	hc := loopbackClient(t, ts.caFile)
	port := ts.resources().port
	_, tokB := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, ts.resources().Base())

	call := func(host, method, path string) (int, string) {
		req, _ := http.NewRequest(method, "https://"+host+":"+port+path+"?api-version=7.6", strings.NewReader(`{"kty":"EC","alg":"ES256","value":"AAAA","digest":"AAAA"}`))
		req.Header.Set("Authorization", "Bearer "+tokB)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := append(append((&api.Keys{}).Routes(), (&api.Secrets{}).Routes()...), (&api.Certificates{}).Routes()...)
	checked := 0
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		for _, name := range []string{"k1", "nosuchkey"} {
			path := strings.NewReplacer("{name}", name, "{version}", "0123456789abcdef0123456789abcdef", "/certificateissuers", "/certificates/issuers").Replace(pattern)
			sa, ba := call("dev.localhost", method, path)
			sx, bx := call("nosuchvault.localhost", method, path)
			if sa != 401 || sx != 401 || ba != bx {
				t.Errorf("%s %s: tenant A's vault = %d %s; missing vault = %d %s; want identical 401s", method, path, sa, ba, sx, bx)
			}
			checked++
		}
	}
	// B's token works on B's own vault, so the 401s above are about isolation, not the token.
	if s, b := call("bvault.localhost", "GET", "/keys"); s != 200 {
		t.Fatalf("tenant B on its own vault = %d %s", s, b)
	}
	t.Logf("%d cross-tenant requests, all refused exactly like requests to a missing vault", checked)
}
