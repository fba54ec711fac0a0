package mgmt

import (
	"net/http"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
)

// External OpenID Connect issuers a tenant trusts, and the users of those issuers registered
// as principals (so that role assignments can name them).

type issuerBody struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
}

type userBody struct {
	Subject     string `json:"subject"`
	DisplayName string `json:"displayName"`
}

func issuerRoutes(s *Service) []Route {
	return []Route{
		{Pattern: "POST /v1/tenants/{tenant}/issuers", Operation: "IssuerCreate", Who: Tenant, Action: authz.IssuersWrite, Scope: ScopeTenant, Handle: s.createIssuer},
		{Pattern: "GET /v1/tenants/{tenant}/issuers", Operation: "IssuerList", Who: Tenant, Action: authz.IssuersRead, Scope: ScopeTenant, Handle: s.listIssuers},
		{Pattern: "POST /v1/tenants/{tenant}/issuers/{id}/users", Operation: "UserCreate", Who: Tenant, Action: authz.PrincipalsWrite, Scope: ScopeTenant, Handle: s.createUser},
	}
}

func (s *Service) createIssuer(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req issuerBody
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	is, err := s.cfg.Store.CreateIssuer(r.Context(), c.TenantID, req.Issuer, req.Audience)
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "issuers/"+is.ID)
	api.WriteJSON(w, http.StatusCreated, is)
	return nil
}

func (s *Service) listIssuers(w http.ResponseWriter, r *http.Request, c *Call) error {
	is, err := s.cfg.Store.Issuers(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list(is))
	return nil
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req userBody
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	p, err := s.cfg.Store.CreateUser(r.Context(), c.TenantID, r.PathValue("id"), req.Subject, req.DisplayName)
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "principals/"+p.ObjectID)
	api.WriteJSON(w, http.StatusCreated, principalDTO(p))
	return nil
}
