package mgmt

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/attest"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Attestation providers (docs/ATTESTATION.md): a tenant's instances of the attestation
// service, each with the attestation policy that decides which evidence becomes a token.
// Every create and policy change goes through the audited pipeline.

// AttestationProviderDTO is an attestation provider as the API shows it.
type AttestationProviderDTO struct {
	Name     string          `json:"name"`
	TenantID string          `json:"tenantId"`
	URI      string          `json:"attestUri"`
	Policy   json.RawMessage `json:"policy"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
}

type attestPutRequest struct {
	Policy json.RawMessage `json:"policy"`
}

func attestRoutes(s *Service) []Route {
	return []Route{
		{Pattern: "PUT /v1/tenants/{tenant}/attestationProviders/{name}", Operation: "AttestationProviderPut", Who: Tenant, Action: authz.AttestationWrite, Scope: ScopeTenant, Handle: s.putAttestationProvider},
		{Pattern: "GET /v1/tenants/{tenant}/attestationProviders/{name}", Operation: "AttestationProviderGet", Who: Tenant, Action: authz.AttestationRead, Scope: ScopeTenant, Handle: s.getAttestationProvider},
		{Pattern: "GET /v1/tenants/{tenant}/attestationProviders", Operation: "AttestationProviderList", Who: Tenant, Action: authz.AttestationRead, Scope: ScopeTenant, Handle: s.listAttestationProviders},
	}
}

func (s *Service) attestDTO(p tenancy.AttestationProvider) AttestationProviderDTO {
	uri := ""
	if s.cfg.AttestURL != nil {
		uri = s.cfg.AttestURL(p.Name)
	}
	return AttestationProviderDTO{Name: p.Name, TenantID: p.TenantID, URI: uri, Policy: p.Policy, Created: p.Created, Updated: p.Updated}
}

// putAttestationProvider creates a provider or replaces its policy. An empty body or
// policy means the default policy ({}: sevsnpvm only, any measurement, no debug).
func (s *Service) putAttestationProvider(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req attestPutRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	if len(req.Policy) == 0 || string(req.Policy) == "null" {
		req.Policy = json.RawMessage(`{}`)
	}
	pol, err := attest.ParsePolicy(req.Policy)
	if err != nil {
		return badParameter(err.(*attest.Error).Message)
	}
	canon, err := json.Marshal(pol)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	p, created, err := s.cfg.Store.PutAttestationProvider(r.Context(), c.TenantID, name, canon)
	if errors.Is(err, tenancy.ErrExists) {
		return api.Errorf(http.StatusConflict, "Conflict", "an attestation provider named "+quoteShort(name)+" already exists (names are global host names): choose another name")
	}
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "attestationProviders/"+p.Name)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	api.WriteJSON(w, status, s.attestDTO(p))
	return nil
}

func (s *Service) getAttestationProvider(w http.ResponseWriter, r *http.Request, c *Call) error {
	name := r.PathValue("name")
	p, err := s.cfg.Store.AttestationProvider(r.Context(), name)
	if errors.Is(err, tenancy.ErrNotFound) || err == nil && p.TenantID != c.TenantID {
		return notFound("attestation provider", quoteShort(name))
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, s.attestDTO(p))
	return nil
}

func (s *Service) listAttestationProviders(w http.ResponseWriter, r *http.Request, c *Call) error {
	ps, err := s.cfg.Store.AttestationProviders(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	out := make([]AttestationProviderDTO, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.attestDTO(p))
	}
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}
