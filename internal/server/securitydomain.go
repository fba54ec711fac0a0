package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/secdomain"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// securityDomainRoutes are the managed HSM security-domain endpoints (internal/secdomain).
func (s *Server) securityDomainRoutes() []api.Route {
	h := &api.SecurityDomain{Svc: func() (*secdomain.Service, error) { return s.sd, nil }}
	return h.Routes()
}

// requireActive refuses a route on a managed HSM pool whose security domain has not been
// downloaded or uploaded yet (Managed HSM is unusable until activated). Vaults pass.
func (s *Server) requireActive(rs []api.Route) []api.Route {
	for i := range rs {
		next := rs[i].Handle
		rs[i].Handle = func(w http.ResponseWriter, r *http.Request, c *api.Call) error {
			if c.Store.Kind == tenancy.KindManagedHSM {
				ok, err := s.sd.Active(r.Context(), c.Store)
				if err != nil {
					return err
				}
				if !ok {
					return api.SecurityDomainError(secdomain.ErrNotActivated)
				}
			}
			return next(w, r, c)
		}
	}
	return rs
}

// activateDevHSM activates dev mode's pool with a domain key no custodian holds, so that it
// is usable out of the box; its security domain can still be downloaded (re-split for the
// caller's keys) like any active pool's. Nothing is written outside the barrier.
func (s *Server) activateDevHSM(ctx context.Context) error {
	v, err := s.tenants.Vault(ctx, tenancy.KindManagedHSM, devHSMName)
	if err != nil {
		return fmt.Errorf("dev pool: %w", err)
	}
	return s.sd.ActivateDev(ctx, v)
}
