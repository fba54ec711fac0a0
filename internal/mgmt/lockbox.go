package mgmt

import (
	"errors"
	"net/http"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Customer lockbox over HTTP: the operator files a request, a tenant principal holding
// Coffer/accessRequests/approve approves or denies it, the operator claims the time-bound
// credential once, and either side can revoke the grant early.

type accessRequestBody struct {
	Scope            string `json:"scope"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	// Duration is a Go duration such as "2h" or "30m" (at most 8h).
	Duration      string `json:"duration"`
	Justification string `json:"justification"`
}

// AccessRequestDTO is an access request on the wire (never its credential).
type AccessRequestDTO struct {
	ID               string     `json:"id"`
	Scope            string     `json:"scope"`
	RoleDefinitionID string     `json:"roleDefinitionId"`
	Duration         string     `json:"duration"`
	Justification    string     `json:"justification"`
	RequestedBy      string     `json:"requestedBy"`
	State            string     `json:"state"`
	Created          time.Time  `json:"created"`
	DecidedBy        string     `json:"decidedBy,omitempty"`
	Decided          *time.Time `json:"decided,omitempty"`
	ExpiresAt        *time.Time `json:"expiresAt,omitempty"`
	PrincipalID      string     `json:"principalId,omitempty"`
}

func accessDTO(a tenancy.AccessRequest) AccessRequestDTO {
	d := AccessRequestDTO{ID: a.ID, Scope: a.Scope, RoleDefinitionID: a.RoleDefinitionID, Duration: a.Duration.String(),
		Justification: a.Justification, RequestedBy: a.RequestedBy, State: a.State, Created: a.Created,
		DecidedBy: a.DecidedBy, PrincipalID: a.PrincipalID}
	if !a.Decided.IsZero() {
		d.Decided = &a.Decided
	}
	if !a.ExpiresAt.IsZero() {
		d.ExpiresAt = &a.ExpiresAt
	}
	return d
}

func lockboxRoutes(s *Service) []Route {
	return []Route{
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests", Operation: "AccessRequestCreate", Who: TenantOrOperator, Action: authz.AccessRequestsCreate, Scope: ScopeHandler, Handle: s.createAccessRequest},
		{Pattern: "GET /v1/tenants/{tenant}/accessRequests", Operation: "AccessRequestList", Who: TenantOrOperator, Action: authz.AccessRequestsApprove, Scope: ScopeHandler, Handle: s.listAccessRequests},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/approve", Operation: "AccessRequestApprove", Who: Tenant, Action: authz.AccessRequestsApprove, Scope: ScopeTenant, Handle: s.decideAccess(true)},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/deny", Operation: "AccessRequestDeny", Who: Tenant, Action: authz.AccessRequestsApprove, Scope: ScopeTenant, Handle: s.decideAccess(false)},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/revoke", Operation: "AccessRequestRevoke", Who: TenantOrOperator, Action: authz.AccessRequestsApprove, Scope: ScopeHandler, Handle: s.revokeAccess},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/credential", Operation: "AccessRequestCredentialClaim", Who: TenantOrOperator, Action: authz.AccessRequestsCreate, Scope: ScopeHandler, Handle: s.claimAccess},
	}
}

// operatorOnlyHere refuses tenant principals on operator actions of a tenant route.
func operatorOnlyHere(c *Call, action authz.Action) error {
	if !c.Operator {
		return api.Errorf(http.StatusForbidden, "Forbidden", "only the platform operator files and claims access requests ("+string(action)+"); a tenant grants its own principals roles directly")
	}
	return nil
}

func (s *Service) createAccessRequest(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := operatorOnlyHere(c, authz.AccessRequestsCreate); err != nil {
		return err
	}
	var req accessRequestBody
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil {
		return badParameter("duration must be a duration such as \"2h\" or \"30m\"")
	}
	ar, err := s.cfg.Store.RequestAccess(r.Context(), c.TenantID, req.Scope, req.RoleDefinitionID, d, req.Justification, OperatorOID)
	if err != nil {
		return err
	}
	c.auditAs(c.TenantID, "accessRequests/"+ar.ID)
	api.WriteJSON(w, http.StatusCreated, accessDTO(ar))
	return nil
}

func (s *Service) listAccessRequests(w http.ResponseWriter, r *http.Request, c *Call) error {
	if !c.Operator {
		if err := c.Authorize(r.Context(), authz.AccessRequestsApprove, c.tenantScope()); err != nil {
			return err
		}
	}
	ars, err := s.cfg.Store.AccessRequests(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	out := make([]AccessRequestDTO, 0, len(ars))
	for _, a := range ars {
		out = append(out, accessDTO(a))
	}
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}

func (s *Service) decideAccess(approve bool) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		id := r.PathValue("id")
		c.auditAs(c.TenantID, "accessRequests/"+auditField(id))
		ar, err := s.cfg.Store.DecideAccess(r.Context(), c.TenantID, id, c.Caller.ObjectID, approve)
		if err != nil {
			return accessError(err, id)
		}
		api.WriteJSON(w, http.StatusOK, accessDTO(ar))
		return nil
	}
}

func (s *Service) revokeAccess(w http.ResponseWriter, r *http.Request, c *Call) error {
	by := OperatorOID
	if !c.Operator {
		if err := c.Authorize(r.Context(), authz.AccessRequestsApprove, c.tenantScope()); err != nil {
			return err
		}
		by = c.Caller.ObjectID
	}
	id := r.PathValue("id")
	c.auditAs(c.TenantID, "accessRequests/"+auditField(id))
	ar, err := s.cfg.Store.RevokeAccess(r.Context(), c.TenantID, id, by)
	if err != nil {
		return accessError(err, id)
	}
	api.WriteJSON(w, http.StatusOK, accessDTO(ar))
	return nil
}

func (s *Service) claimAccess(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := operatorOnlyHere(c, authz.AccessRequestsCreate); err != nil {
		return err
	}
	id := r.PathValue("id")
	c.auditAs(c.TenantID, "accessRequests/"+auditField(id))
	cred, err := s.cfg.Store.ClaimAccessCredential(r.Context(), c.TenantID, id, OperatorOID)
	if err != nil {
		return accessError(err, id)
	}
	clientID, secret, _ := cut(cred)
	api.WriteJSON(w, http.StatusOK, map[string]string{"tenantId": c.TenantID, "clientId": clientID, "clientSecret": secret})
	return nil
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func accessError(err error, id string) error {
	switch {
	case errors.Is(err, tenancy.ErrNotFound):
		return notFound("access request", quoteShort(id))
	case errors.Is(err, tenancy.ErrAccessState):
		return api.Errorf(http.StatusConflict, "Conflict", err.Error())
	}
	return err
}
