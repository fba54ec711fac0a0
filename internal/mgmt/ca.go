package mgmt

import (
	"context"
	"errors"
	"net/http"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/certificates"
)

// A tenant's certificate authority: certificates whose policy names an issuer object with
// provider TenantCA are signed by it. Creating it again rotates it (new key and
// certificate; earlier certificates keep chaining to the old one).

// CertificateAuthorities is the certificates service as the management API uses it.
type CertificateAuthorities interface {
	GetCA(ctx context.Context, tenantID string) (certificates.CAInfo, error)
	RotateCA(ctx context.Context, tenantID, subject string, months int) (certificates.CAInfo, error)
}

type caRequest struct {
	Subject        string `json:"subject"`
	ValidityMonths int    `json:"validityMonths"`
}

func caRoutes(s *Service) []Route {
	return []Route{
		{Pattern: "POST /v1/tenants/{tenant}/ca", Operation: "CertificateAuthorityRotate", Who: Tenant, Action: authz.CAsWrite, Scope: ScopeTenant, Handle: s.rotateCA},
		{Pattern: "GET /v1/tenants/{tenant}/ca", Operation: "CertificateAuthorityGet", Who: Tenant, Action: authz.CAsRead, Scope: ScopeTenant, Handle: s.getCA},
	}
}

// certificateAuthorities returns the configured service or a 503.
func (s *Service) certificateAuthorities() (CertificateAuthorities, error) {
	if s.cfg.CA == nil {
		return nil, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "certificate authorities are not available on this server")
	}
	return s.cfg.CA, nil
}

func (s *Service) rotateCA(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req caRequest
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if req.ValidityMonths < 0 || req.ValidityMonths > 1200 {
		return api.Errorf(http.StatusBadRequest, "BadParameter", "validityMonths must be 1-1200 (0 means 120)")
	}
	ca, err := s.certificateAuthorities()
	if err != nil {
		return err
	}
	info, err := ca.RotateCA(r.Context(), c.TenantID, req.Subject, req.ValidityMonths)
	if errors.Is(err, certificates.ErrBadParameter) {
		return api.Errorf(http.StatusBadRequest, "BadParameter", err.Error())
	}
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "/v1/tenants/"+c.TenantID+"/ca")
	api.WriteJSON(w, http.StatusCreated, info)
	return nil
}

func (s *Service) getCA(w http.ResponseWriter, r *http.Request, c *Call) error {
	ca, err := s.certificateAuthorities()
	if err != nil {
		return err
	}
	info, err := ca.GetCA(r.Context(), c.TenantID)
	if errors.Is(err, certificates.ErrNoCA) {
		return api.Errorf(http.StatusNotFound, "NotFound", "tenant "+c.TenantID+" has no certificate authority: create one with POST /v1/tenants/"+c.TenantID+"/ca (coffer tenant ca rotate)")
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, info)
	return nil
}
