package mgmt

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// storeKind describes vaults or managed HSM pools for the shared handlers.
type storeKind struct {
	kind tenancy.Kind
	what string // for messages
}

var (
	kindVault = storeKind{tenancy.KindVault, "vault"}
	kindHSM   = storeKind{tenancy.KindManagedHSM, "managed HSM pool"}
)

type storePutRequest struct {
	SoftDeleteRetentionInDays *int `json:"softDeleteRetentionInDays"`
	EnablePurgeProtection     bool `json:"enablePurgeProtection"`
}

// putStore creates a vault or pool. Names are global (they are host names). PUT is
// idempotent: the same settings again answer 200 with the existing store; anything else
// about an existing name is 409, the same whichever tenant owns it.
func (s *Service) putStore(k storeKind) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		ctx := r.Context()
		var req storePutRequest
		if err := decodeOptional(r, &req); err != nil {
			return err
		}
		opts := tenancy.VaultOptions{PurgeProtection: req.EnablePurgeProtection}
		if req.SoftDeleteRetentionInDays != nil {
			opts.SoftDeleteRetention = *req.SoftDeleteRetentionInDays
			if opts.SoftDeleteRetention == 0 {
				return badParameter("softDeleteRetentionInDays must be 7-90 (omit it for 90)")
			}
		}
		name := r.PathValue("name")
		v, err := s.cfg.Store.CreateVault(ctx, c.TenantID, k.kind, name, opts)
		switch {
		case err == nil:
			api.WriteJSON(w, http.StatusCreated, s.storeDTO(v))
			return nil
		case !errors.Is(err, tenancy.ErrExists):
			return err
		}
		want := opts.SoftDeleteRetention
		if want == 0 {
			want = 90
		}
		old, gerr := s.cfg.Store.Vault(ctx, k.kind, name)
		if gerr == nil && old.TenantID == c.TenantID && old.SoftDeleteRetention == want && old.PurgeProtection == opts.PurgeProtection {
			api.WriteJSON(w, http.StatusOK, s.storeDTO(old))
			return nil
		}
		return api.Errorf(http.StatusConflict, "Conflict", fmt.Sprintf("a %s named %s already exists (names are global host names, and settings cannot be changed yet): choose another name", k.what, quoteShort(name)))
	}
}

func (s *Service) getStore(k storeKind) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		name := r.PathValue("name")
		v, err := s.cfg.Store.Vault(r.Context(), k.kind, name)
		if errors.Is(err, tenancy.ErrNotFound) || err == nil && v.TenantID != c.TenantID {
			return notFound(k.what, quoteShort(name))
		}
		if err != nil {
			return err
		}
		api.WriteJSON(w, http.StatusOK, s.storeDTO(v))
		return nil
	}
}

func (s *Service) listStores(k storeKind) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		vs, err := s.cfg.Store.Vaults(r.Context(), c.TenantID, k.kind)
		if err != nil {
			return err
		}
		out := make([]StoreDTO, 0, len(vs))
		for _, v := range vs {
			out = append(out, s.storeDTO(v))
		}
		api.WriteJSON(w, http.StatusOK, list(out))
		return nil
	}
}
