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

func TestLockboxLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s := New(mem.New(), func() time.Time { return now })
	tn, _ := s.CreateTenant(ctx, "", "Contoso")
	s.CreateVault(ctx, tn.ID, KindVault, "v1", VaultOptions{})
	admin, _, _ := s.CreateServicePrincipal(ctx, tn.ID, "admin")
	scope := "/tenants/" + tn.ID + "/vaults/v1"
	reader, _ := authz.RoleByName("Key Vault Secrets User")
	action := authz.SecretsGetSecret
	sc, _ := authz.ParseScope(scope + "/secrets/s1")

	allowed := func(principal string) bool {
		t.Helper()
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Decide(authz.Request{PrincipalID: principal, PrincipalTenant: tn.ID, Action: action, Scope: sc, Now: now}).Allowed
	}

	t.Run("fail/bad-requests", func(t *testing.T) {
		for _, tc := range []struct {
			scope, role string
			d           time.Duration
			why         string
		}{
			{scope, reader.ID, 9 * time.Hour, "too long"},
			{scope, reader.ID, time.Hour, "short"},
			{"/tenants/" + NewUUID() + "/vaults/v1", reader.ID, time.Hour, "another tenant's scope"},
			{scope, NewUUID(), time.Hour, "unknown role"},
		} {
			why := "needed to diagnose ticket 42"
			if tc.why == "short" {
				why = "x"
			}
			if _, err := s.RequestAccess(ctx, tn.ID, tc.scope, tc.role, tc.d, why, "operator"); !errors.Is(err, ErrInvalidName) {
				t.Errorf("RequestAccess(%s) = %v; want ErrInvalidName", tc.why, err)
			}
		}
	})

	ar, err := s.RequestAccess(ctx, tn.ID, scope, reader.ID, 2*time.Hour, "investigate incident INC-7", "operator")
	if err != nil || ar.State != AccessPending {
		t.Fatalf("RequestAccess = %+v, %v", ar, err)
	}
	if _, err := s.DecideAccess(ctx, tn.ID, ar.ID, "operator", true); !errors.Is(err, ErrAccessState) {
		t.Errorf("self-approval = %v; want ErrAccessState", err)
	}
	ar, err = s.DecideAccess(ctx, tn.ID, ar.ID, admin.ObjectID, true)
	if err != nil || ar.State != AccessApproved || ar.Credential != "" {
		t.Fatalf("approve = %+v, %v", ar, err)
	}
	if _, err := s.DecideAccess(ctx, tn.ID, ar.ID, admin.ObjectID, true); !errors.Is(err, ErrAccessState) {
		t.Errorf("second approval = %v; want ErrAccessState", err)
	}
	if _, err := s.ClaimAccessCredential(ctx, tn.ID, ar.ID, "someone-else"); !errors.Is(err, ErrAccessState) {
		t.Errorf("claim by another = %v; want ErrAccessState", err)
	}
	cred, err := s.ClaimAccessCredential(ctx, tn.ID, ar.ID, "operator")
	if err != nil {
		t.Fatal(err)
	}
	appID, secret, _ := strings.Cut(cred, ":")
	if _, err := s.ClaimAccessCredential(ctx, tn.ID, ar.ID, "operator"); !errors.Is(err, ErrAccessState) {
		t.Errorf("second claim = %v; want ErrAccessState (credential shown once)", err)
	}
	guest, err := s.VerifySecret(ctx, tn.ID, appID, secret)
	if err != nil || guest.ObjectID != ar.PrincipalID {
		t.Fatalf("guest credential = %+v, %v", guest, err)
	}
	if !allowed(guest.ObjectID) {
		t.Fatal("approved guest cannot read the secret inside its scope")
	}
	other, _ := authz.ParseScope("/tenants/" + tn.ID + "/vaults/v2/secrets/s1")
	snap, _ := s.Snapshot(ctx)
	if snap.Decide(authz.Request{PrincipalID: guest.ObjectID, PrincipalTenant: tn.ID, Action: action, Scope: other, Now: now}).Allowed {
		t.Error("guest reaches outside the approved scope")
	}
	now = now.Add(2*time.Hour + time.Second)
	if allowed(guest.ObjectID) {
		t.Error("grant still works after its duration")
	}

	t.Run("ok/revoke-early", func(t *testing.T) {
		ar2, _ := s.RequestAccess(ctx, tn.ID, scope, reader.ID, time.Hour, "rotate the payment key", "operator")
		ar2, _ = s.DecideAccess(ctx, tn.ID, ar2.ID, admin.ObjectID, true)
		if !allowed(ar2.PrincipalID) {
			t.Fatal("approved grant does not work")
		}
		if _, err := s.RevokeAccess(ctx, tn.ID, ar2.ID, admin.ObjectID); err != nil {
			t.Fatal(err)
		}
		if allowed(ar2.PrincipalID) {
			t.Error("revoked grant still works")
		}
	})
	t.Run("ok/deny", func(t *testing.T) {
		ar3, _ := s.RequestAccess(ctx, tn.ID, scope, reader.ID, time.Hour, "look at the audit log", "operator")
		ar3, err := s.DecideAccess(ctx, tn.ID, ar3.ID, admin.ObjectID, false)
		if err != nil || ar3.State != AccessDenied || ar3.PrincipalID != "" {
			t.Fatalf("deny = %+v, %v", ar3, err)
		}
		if _, err := s.ClaimAccessCredential(ctx, tn.ID, ar3.ID, "operator"); !errors.Is(err, ErrAccessState) {
			t.Errorf("claim of denied = %v", err)
		}
	})
}

// An approval inside a managed HSM pool counts against Managed HSM's assignment limits: with
// the pool's scope full, approving is refused with the limit error and changes nothing.
func TestLockboxApprovalObeysHSMLimits(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s := New(mem.New(), func() time.Time { return now })
	tn, _ := s.CreateTenant(ctx, "", "Contoso")
	if _, err := s.CreateVault(ctx, tn.ID, KindManagedHSM, "pool1", VaultOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, _, _ := s.CreateServicePrincipal(ctx, tn.ID, "admin")
	user, _, _ := s.CreateServicePrincipal(ctx, tn.ID, "user")
	role, _ := authz.RoleByName("Managed HSM Crypto User")
	scope := "/tenants/" + tn.ID + "/managedHsms/pool1"
	for i := range authz.MaxHSMScopeAssignments {
		if _, err := s.CreateRoleAssignment(ctx, authz.Assignment{PrincipalID: user.ObjectID, TenantID: tn.ID, RoleDefinitionID: role.ID, Scope: scope}); err != nil {
			t.Fatalf("assignment %d: %v", i, err)
		}
	}
	before, _ := s.RoleAssignments(ctx, tn.ID)
	ar, err := s.RequestAccess(ctx, tn.ID, scope, role.ID, time.Hour, "investigate incident INC-9", "operator")
	if err != nil {
		t.Fatal(err)
	}
	var limit *authz.LimitError
	if _, err := s.DecideAccess(ctx, tn.ID, ar.ID, admin.ObjectID, true); !errors.As(err, &limit) || limit.Code != authz.CodeRoleAssignmentLimit {
		t.Fatalf("DecideAccess with the pool full = %v; want a %s LimitError", err, authz.CodeRoleAssignmentLimit)
	}
	got, err := s.AccessRequests(ctx, tn.ID)
	if err != nil || len(got) != 1 || got[0].State != AccessPending || got[0].PrincipalID != "" {
		t.Errorf("after the refusal the requests are %+v, %v; want one still pending, no guest", got, err)
	}
	if after, _ := s.RoleAssignments(ctx, tn.ID); len(after) != len(before) {
		t.Errorf("the refusal changed the assignments: %d → %d", len(before), len(after))
	}
}
