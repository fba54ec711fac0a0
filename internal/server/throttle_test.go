package server

import (
	"context"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

func TestTenantThrottling(t *testing.T) {
	ts := startDev(t, "--tenant-rate-limit", "1", "--tenant-burst", "3")
	ctx := context.Background()
	c := ts.Dev.Credentials
	hc := loopbackClient(t, ts.caFile)
	res := ts.resources()
	hsmResource := "https://managedhsm.localhost:" + res.port

	tb, _ := ts.tenants.CreateTenant(ctx, "", "Tenant B")
	ts.tenants.CreateVault(ctx, tb.ID, tenancy.KindManagedHSM, "bhsm", tenancy.VaultOptions{})
	pb, secretB, _ := ts.tenants.CreateServicePrincipal(ctx, tb.ID, "b-app")
	if _, err := ts.tenants.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: pb.ObjectID, TenantID: tb.ID, RoleDefinitionID: mustRole("Managed HSM Crypto User"), Scope: "/tenants/" + tb.ID + "/managedHsms/bhsm"}); err != nil {
		t.Fatal(err)
	}
	_, tokA := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, hsmResource)
	_, tokB := rawToken(t, ts, hc, tb.ID, pb.AppID, secretB, hsmResource)

	throttled := 0
	for i := 0; i < 10; i++ {
		status, h, body := rng(t, hc, "devhsm.managedhsm.localhost", res.port, tokA)
		switch status {
		case 200:
		case 429:
			throttled++
			if h.Get("Retry-After") == "" || !strings.Contains(body, `"Throttled"`) {
				t.Errorf("429 without Retry-After or Throttled code: %v %s", h, body)
			}
		default:
			t.Fatalf("request %d = %d %s", i, status, body)
		}
	}
	if throttled < 5 {
		t.Errorf("tenant A over its limit: %d of 10 throttled; want most of them", throttled)
	}
	// Tenant B has its own bucket.
	for i := 0; i < 3; i++ {
		if status, _, body := rng(t, hc, "bhsm.managedhsm.localhost", res.port, tokB); status != 200 {
			t.Errorf("tenant B request %d = %d %s; want 200 while A is throttled", i, status, body)
		}
	}
}
