package tenancy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

func TestTenantsVaultsPrincipals(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	s := New(mem.New(), func() time.Time { return now })
	a, err := s.CreateTenant(ctx, "", "Contoso")
	if err != nil || !IsUUID(a.ID) {
		t.Fatalf("CreateTenant = %+v, %v", a, err)
	}
	b, _ := s.CreateTenant(ctx, "", "Fabrikam")
	if _, err := s.CreateTenant(ctx, a.ID, "again"); !errors.Is(err, ErrExists) {
		t.Errorf("CreateTenant(existing id) = %v; want ErrExists", err)
	}
	for _, tc := range []struct {
		name, vault string
		kind        Kind
		tenant      string
		want        error
	}{
		{"ok/vault", "v1", KindVault, a.ID, nil},
		{"ok/hsm-same-name-other-kind", "v1", KindManagedHSM, a.ID, nil},
		{"fail/taken-by-other-tenant", "V1", KindVault, b.ID, ErrExists},
		{"fail/too-long", "v123456789012345678901234", KindVault, a.ID, ErrInvalidName},
		{"fail/reserved", "managedhsm", KindVault, a.ID, ErrInvalidName},
		{"fail/empty", "", KindVault, a.ID, ErrInvalidName},
		{"fail/bad-char", "v_1", KindVault, a.ID, ErrInvalidName},
		{"fail/starts-with-digit", "1vault", KindVault, a.ID, ErrInvalidName},
		{"fail/unknown-tenant", "v2", KindVault, NewUUID(), ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateVault(ctx, tc.tenant, tc.kind, tc.vault, VaultOptions{})
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("CreateVault(%q) = %v; want %v", tc.vault, err, tc.want)
			}
		})
	}
	v, err := s.Vault(ctx, KindVault, "V1")
	if err != nil || v.TenantID != a.ID || v.SoftDeleteRetention != 90 {
		t.Errorf("Vault(V1) = %+v, %v", v, err)
	}
	if vs, _ := s.Vaults(ctx, b.ID, KindVault); len(vs) != 0 {
		t.Errorf("tenant B lists %v; want nothing", vs)
	}
	if vs, _ := s.Vaults(ctx, a.ID, KindVault); len(vs) != 1 {
		t.Errorf("tenant A lists %v; want one vault", vs)
	}

	p, secret, err := s.CreateServicePrincipal(ctx, a.ID, "app")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mustJSON(t, p)), secret) {
		t.Error("the stored principal contains the clear secret")
	}
	if got, err := s.VerifySecret(ctx, a.ID, p.AppID, secret); err != nil || got.ObjectID != p.ObjectID {
		t.Errorf("VerifySecret(good) = %+v, %v", got, err)
	}
	for _, tc := range []struct{ name, tenant, app, secret string }{
		{"fail/wrong-secret", a.ID, p.AppID, secret + "x"},
		{"fail/other-tenant", b.ID, p.AppID, secret},
		{"fail/unknown-app", a.ID, NewUUID(), secret},
		{"fail/empty", a.ID, p.AppID, ""},
		{"fail/huge", a.ID, p.AppID, strings.Repeat("x", 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.VerifySecret(ctx, tc.tenant, tc.app, tc.secret); !errors.Is(err, ErrInvalidClient) {
				t.Errorf("VerifySecret = %v; want ErrInvalidClient", err)
			}
		})
	}
	second, _, err := s.AddSecret(ctx, a.ID, p.ObjectID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{secret, second} {
		if _, err := s.VerifySecret(ctx, a.ID, p.AppID, sec); err != nil {
			t.Errorf("VerifySecret(one of two) = %v", err)
		}
	}
	now = now.Add(SecretLifetime + time.Hour)
	if _, err := s.VerifySecret(ctx, a.ID, p.AppID, secret); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("VerifySecret(expired) = %v; want ErrInvalidClient", err)
	}
}

func TestRoleAssignmentIDsAreGlobal(t *testing.T) {
	ctx := context.Background()
	s := New(mem.New(), nil)
	a, _ := s.CreateTenant(ctx, "", "A")
	b, _ := s.CreateTenant(ctx, "", "B")
	pa, _, _ := s.CreateServicePrincipal(ctx, a.ID, "pa")
	pb, _, _ := s.CreateServicePrincipal(ctx, b.ID, "pb")
	id := NewUUID()
	role := "4633458b-17de-408a-b874-0445c86b69e6" // Key Vault Secrets User
	if _, err := s.CreateRoleAssignment(ctx, authz.Assignment{ID: id, PrincipalID: pa.ObjectID, TenantID: a.ID, RoleDefinitionID: role, Scope: "/tenants/" + a.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoleAssignment(ctx, authz.Assignment{ID: id, PrincipalID: pb.ObjectID, TenantID: b.ID, RoleDefinitionID: role, Scope: "/tenants/" + b.ID}); !errors.Is(err, ErrExists) {
		t.Fatalf("same assignment id in another tenant = %v; want ErrExists", err)
	}
	if _, err := s.Snapshot(ctx); err != nil {
		t.Errorf("Snapshot after the refused duplicate = %v", err)
	}
	if _, err := s.DeleteRoleAssignment(ctx, a.ID, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoleAssignment(ctx, authz.Assignment{ID: id, PrincipalID: pb.ObjectID, TenantID: b.ID, RoleDefinitionID: role, Scope: "/tenants/" + b.ID}); err != nil {
		t.Errorf("id reuse after delete = %v", err)
	}
}

// TestPoolRefusedOverCustomRoleLimit: custom roles assignable tenant-wide count in every pool
// of the tenant, so a tenant holding more than a pool allows cannot create a pool (it would
// start over its limit); at the limit it can, and a vault is never refused.
func TestPoolRefusedOverCustomRoleLimit(t *testing.T) {
	ctx := context.Background()
	s := New(mem.New(), nil)
	a, _ := s.CreateTenant(ctx, "", "A")
	role := func(scope string) {
		t.Helper()
		r := authz.RoleDefinition{Name: "r-" + NewUUID(), AssignableScopes: []string{scope},
			Permissions: []authz.Permission{{DataActions: []string{"Microsoft.KeyVault/managedHsm/keys/read/action"}}}}
		if _, err := s.CreateRoleDefinitionIf(ctx, a.ID, r, func([]authz.RoleDefinition) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < authz.MaxHSMCustomRoles; i++ {
		role("/tenants/" + a.ID)
	}
	role("/tenants/" + a.ID + "/vaults/elsewhere") // not assignable in a pool: does not count
	if _, err := s.CreateVault(ctx, a.ID, KindManagedHSM, "pool1", VaultOptions{}); err != nil {
		t.Fatalf("pool with %d tenant-wide custom roles = %v; want it created", authz.MaxHSMCustomRoles, err)
	}
	role("/tenants/" + a.ID)
	_, err := s.CreateVault(ctx, a.ID, KindManagedHSM, "pool2", VaultOptions{})
	var le *authz.LimitError
	if !errors.As(err, &le) || le.Code != authz.CodeRoleDefinitionLimit || !strings.Contains(le.Message, "51") {
		t.Fatalf("pool with %d tenant-wide custom roles = %v; want a RoleDefinitionLimitExceeded naming the count", authz.MaxHSMCustomRoles+1, err)
	}
	if _, err := s.Vault(ctx, KindManagedHSM, "pool2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused pool exists: %v", err)
	}
	if _, err := s.CreateVault(ctx, a.ID, KindVault, "vault2", VaultOptions{}); err != nil {
		t.Errorf("vault with %d tenant-wide custom roles = %v; want it created", authz.MaxHSMCustomRoles+1, err)
	}
}
