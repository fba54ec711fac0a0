package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// SecurityDomain serves a managed HSM pool's security domain (securitydomain.json). Download
// and upload are long-running operations in Key Vault; Coffer completes them before
// answering 202, so the pending endpoints already report the final status.
type SecurityDomain struct {
	Svc func() (*secdomain.Service, error)
}

// Routes are the security-domain endpoints; they answer on managed HSM pools only, and also
// while the pool is inactive (they are how it becomes active).
func (h *SecurityDomain) Routes() []Route {
	pool := []tenancy.Kind{tenancy.KindManagedHSM}
	return []Route{
		{Pattern: "POST /securitydomain/download", Kinds: pool, Operation: "SecurityDomainDownload", Action: hsmAction(authz.HSMSecurityDomainDownload), MaxBody: 128 << 10, Handle: h.download},
		{Pattern: "GET /securitydomain/download/pending", Kinds: pool, Operation: "SecurityDomainDownloadPending", Action: hsmAction(authz.HSMSecurityDomainDownloadRead), Handle: h.pending((*secdomain.Service).DownloadStatus)},
		{Pattern: "GET /securitydomain/upload", Kinds: pool, Operation: "SecurityDomainTransferKey", Action: hsmAction(authz.HSMSecurityDomainTransferKeyRead), Handle: h.transferKey},
		{Pattern: "GET /securitydomain/transferkey", Kinds: pool, Operation: "SecurityDomainTransferKey", Action: hsmAction(authz.HSMSecurityDomainTransferKeyRead), Handle: h.transferKey},
		{Pattern: "POST /securitydomain/upload", Kinds: pool, Operation: "SecurityDomainUpload", Action: hsmAction(authz.HSMSecurityDomainUpload), MaxBody: 256 << 10, Handle: h.upload},
		{Pattern: "GET /securitydomain/upload/pending", Kinds: pool, Operation: "SecurityDomainUploadPending", Action: hsmAction(authz.HSMSecurityDomainUploadRead), Handle: h.pending((*secdomain.Service).UploadStatus)},
	}
}

// hsmAction is the RBAC action map of a route served on managed HSM pools only.
func hsmAction(a authz.Action) map[tenancy.Kind]string {
	return map[tenancy.Kind]string{tenancy.KindManagedHSM: string(a)}
}

// SecurityDomainError maps a secdomain error to Key Vault's error shape; other errors pass.
func SecurityDomainError(err error) error {
	switch {
	case errors.Is(err, secdomain.ErrBadParameter):
		return Errorf(http.StatusBadRequest, "BadParameter", strings.TrimPrefix(err.Error(), secdomain.ErrBadParameter.Error()+": "))
	case errors.Is(err, secdomain.ErrActivated):
		return Errorf(http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, secdomain.ErrNotActivated):
		e := Errorf(http.StatusForbidden, "Forbidden", err.Error())
		e.Inner = "HSMNotActivated"
		return e
	}
	return err
}

type sdDownloadRequest struct {
	Certificates []sdblob.JWK `json:"certificates"`
	Required     *int         `json:"required"`
}

// accepted answers a completed long-running operation: 202 with the status URL.
func accepted(w http.ResponseWriter, r *http.Request, c *Call, pending string, body any) {
	status := c.StoreURL + pending + "?api-version=" + r.URL.Query().Get("api-version")
	w.Header().Set("Azure-AsyncOperation", status)
	w.Header().Set("Location", status)
	w.Header().Set("Retry-After", "0")
	WriteJSON(w, http.StatusAccepted, body)
}

func (h *SecurityDomain) download(w http.ResponseWriter, r *http.Request, c *Call) error {
	svc, err := h.Svc()
	if err != nil {
		return err
	}
	var req sdDownloadRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	required := 2
	if req.Required != nil {
		required = *req.Required
	}
	blob, err := svc.Download(r.Context(), c.Store, req.Certificates, required)
	if err != nil {
		return SecurityDomainError(err)
	}
	accepted(w, r, c, "/securitydomain/download/pending", map[string]string{"value": blob})
	return nil
}

// pending answers a status endpoint with status (DownloadStatus or UploadStatus).
func (h *SecurityDomain) pending(status func(*secdomain.Service, context.Context, tenancy.Vault) (secdomain.OpStatus, error)) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		svc, err := h.Svc()
		if err != nil {
			return err
		}
		st, err := status(svc, r.Context(), c.Store)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, st)
		return nil
	}
}

func (h *SecurityDomain) transferKey(w http.ResponseWriter, r *http.Request, c *Call) error {
	svc, err := h.Svc()
	if err != nil {
		return err
	}
	k, err := svc.TransferKey(r.Context(), c.Store)
	if err != nil {
		return SecurityDomainError(err)
	}
	// Key Vault sends the JWK as JSON text inside the string transfer_key: the Azure CLI
	// (init-recovery) and SDKs parse that string again, and take x5c[0] as the exchange key.
	jwk, err := json.Marshal(k)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"key_format": "jwk", "transfer_key": string(jwk)})
	return nil
}

func (h *SecurityDomain) upload(w http.ResponseWriter, r *http.Request, c *Call) error {
	svc, err := h.Svc()
	if err != nil {
		return err
	}
	var req struct {
		Value *string `json:"value"`
	}
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Value == nil {
		return Errorf(http.StatusBadRequest, "BadParameter", "value is required: the restore blob of `az keyvault security-domain restore-blob` or `coffer hsm sd upload`")
	}
	if err := svc.Upload(r.Context(), c.Store, *req.Value); err != nil {
		return SecurityDomainError(err)
	}
	st, err := svc.UploadStatus(r.Context(), c.Store)
	if err != nil {
		return err
	}
	accepted(w, r, c, "/securitydomain/upload/pending", st)
	return nil
}
