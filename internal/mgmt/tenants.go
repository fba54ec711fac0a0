package mgmt

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
)

// AdministratorName is the display name of the principal created with a tenant.
const AdministratorName = "Tenant administrator"

type tenantCreateRequest struct {
	Name string `json:"name"`
}

// createTenant creates a tenant and its first principal, a Coffer Tenant Administrator of the
// tenant, whose client secret is returned once.
func (s *Service) createTenant(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	var req tenantCreateRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, err := s.cfg.Store.CreateTenant(ctx, "", req.Name)
	if err != nil {
		return err
	}
	c.auditAs(t.ID, "/v1/tenants/"+t.ID)
	p, secret, err := s.cfg.Store.CreateServicePrincipal(ctx, t.ID, AdministratorName)
	if err != nil {
		return fmt.Errorf("tenant %s created, but not its administrator: %w", t.ID, err)
	}
	a, err := s.createAssignment(ctx, authz.Assignment{PrincipalID: p.ObjectID, TenantID: t.ID,
		RoleDefinitionID: authz.CofferTenantAdministratorRoleID, Scope: "/tenants/" + t.ID})
	if err != nil {
		return fmt.Errorf("tenant %s created, but not its administrator's role assignment: %w", t.ID, err)
	}
	api.WriteJSON(w, http.StatusCreated, TenantCreated{
		Tenant: tenantDTO(t),
		Administrator: Administrator{ObjectID: p.ObjectID, ClientID: p.AppID, ClientSecret: secret,
			ClientSecretExpires: p.Secrets[0].Expires, RoleAssignmentID: a.ID, RoleDefinitionID: a.RoleDefinitionID},
	})
	return nil
}

func (s *Service) listTenants(w http.ResponseWriter, r *http.Request, c *Call) error {
	ts, err := s.cfg.Store.Tenants(r.Context())
	if err != nil {
		return err
	}
	out := make([]TenantDTO, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantDTO(t))
	}
	slices.SortFunc(out, func(a, b TenantDTO) int { return strings.Compare(a.ID, b.ID) })
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}

func (s *Service) getTenant(w http.ResponseWriter, r *http.Request, c *Call) error {
	t, err := s.cfg.Store.Tenant(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, tenantDTO(t))
	return nil
}
