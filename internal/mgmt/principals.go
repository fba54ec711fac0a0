package mgmt

import (
	"bytes"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

type principalCreateRequest struct {
	DisplayName string `json:"displayName"`
}

// createPrincipal creates a service principal with a first client secret, returned once.
func (s *Service) createPrincipal(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req principalCreateRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.DisplayName) == "" || strings.ContainsFunc(req.DisplayName, isControl) {
		return badParameter("displayName must be 1-120 printable characters")
	}
	p, secret, err := s.cfg.Store.CreateServicePrincipal(r.Context(), c.TenantID, req.DisplayName)
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "/v1/tenants/"+c.TenantID+"/principals/"+p.ObjectID)
	api.WriteJSON(w, http.StatusCreated, PrincipalCreated{PrincipalDTO: principalDTO(p), ClientSecret: secret})
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (s *Service) listPrincipals(w http.ResponseWriter, r *http.Request, c *Call) error {
	ps, err := s.cfg.Store.Principals(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	out := make([]PrincipalDTO, 0, len(ps))
	for _, p := range ps {
		out = append(out, principalDTO(p))
	}
	slices.SortFunc(out, func(a, b PrincipalDTO) int { return a.Created.Compare(b.Created) })
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}

// principal returns the principal named by {oid}, or the 404 that names it.
func (s *Service) principal(r *http.Request, c *Call) (tenancy.Principal, error) {
	oid := r.PathValue("oid")
	p, err := s.cfg.Store.Principal(r.Context(), c.TenantID, oid)
	if errors.Is(err, tenancy.ErrNotFound) {
		return p, notFound("principal", quoteShort(oid))
	}
	return p, err
}

func (s *Service) getPrincipal(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, err := s.principal(r, c)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, principalDTO(p))
	return nil
}

// addSecret adds a client secret to a service principal and returns it once. The body is
// empty or {}.
func (s *Service) addSecret(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req struct{}
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	p, err := s.principal(r, c)
	if err != nil {
		return err
	}
	secret, cred, err := s.cfg.Store.AddSecret(r.Context(), c.TenantID, p.ObjectID)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, SecretCreated{SecretDTO: secretDTO(cred), ClientSecret: secret})
	return nil
}

type certificateAddRequest struct {
	// Certificate is one X.509 certificate: PEM, or base64 (standard alphabet) of its DER.
	Certificate string `json:"certificate"`
}

// addCertificate registers a client certificate for client_assertion authentication.
func (s *Service) addCertificate(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req certificateAddRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	der, err := parseCertificate(req.Certificate)
	if err != nil {
		return err
	}
	p, err := s.principal(r, c)
	if err != nil {
		return err
	}
	cred, err := s.cfg.Store.AddCertificate(r.Context(), c.TenantID, p.ObjectID, der)
	switch {
	case errors.Is(err, tenancy.ErrExists):
		return api.Errorf(http.StatusConflict, "Conflict", "this certificate is already registered for the principal")
	case errors.Is(err, tenancy.ErrInvalidName):
		return badParameter("certificate is not an X.509 certificate")
	case err != nil:
		return err
	}
	api.WriteJSON(w, http.StatusCreated, CertificateDTO{Thumbprint: cred.Thumbprint, SHA256: cred.SHA256})
	return nil
}

// parseCertificate accepts one PEM CERTIFICATE block or base64 DER, and returns the DER.
func parseCertificate(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, badParameter("certificate is empty: give one X.509 certificate as PEM or as base64 DER")
	}
	if strings.HasPrefix(s, "-----BEGIN") {
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, badParameter("certificate: PEM must hold a CERTIFICATE block")
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, badParameter("certificate: give exactly one PEM block (the client certificate, without its chain)")
		}
		return block.Bytes, nil
	}
	der, err := strictb64.Std.DecodeString("certificate", s)
	if err != nil {
		return nil, badParameter("certificate is neither PEM nor base64 DER: " + err.Error() + " (give the DER in padded standard base64 on one line, or PEM)")
	}
	return der, nil
}
