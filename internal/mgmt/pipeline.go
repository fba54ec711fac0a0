package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// OperatorOID is the caller object id audit records carry for the operator token.
const OperatorOID = "platform-operator"

// Call is one authenticated management request.
type Call struct {
	// Operator is set when the caller presented the operator token.
	Operator bool
	// Caller is the tenant principal (zero for the operator).
	Caller api.Caller
	// TenantID is the tenant in the path, checked to exist and (for a tenant principal) to be
	// the caller's own; "" on platform routes.
	TenantID string

	svc *Service
	ev  *audit.Event
}

// Authorize decides action at scope for the caller through the RBAC snapshot. The operator
// is never authorised here: it has no role assignments.
func (c *Call) Authorize(ctx context.Context, action authz.Action, scope string) error {
	if c.Operator {
		return operatorForbidden(action, scope)
	}
	return c.svc.cfg.Authorizer.Authorize(ctx, c.Caller, string(action), scope)
}

// tenantScope is the RBAC scope of the call's tenant.
func (c *Call) tenantScope() string { return "/tenants/" + c.TenantID }

// auditAs attributes the audit record to tenant and object (e.g. a tenant just created).
func (c *Call) auditAs(tenant, object string) {
	c.ev.Tenant, c.ev.ObjectID = tenant, object
}

var (
	errNoToken = api.Errorf(http.StatusUnauthorized, "Unauthorized",
		"this API needs Authorization: Bearer <token>: the operator token (COFFER_TOKEN) or an access token of your tenant's principal (coffer ... --client-id/--client-secret)")
	errBadOperatorToken = api.Errorf(http.StatusUnauthorized, "Unauthorized", "the operator token is not valid")
)

// badAccessToken is the 401 for an access token that does not validate.
func (s *Service) badAccessToken() error {
	aud := s.cfg.Identity.Audience()
	return api.Errorf(http.StatusUnauthorized, "Unauthorized",
		"the access token is not valid: get one with the client-credentials grant from "+aud+"/<tenant id>/oauth2/v2.0/token with scope "+aud+"/.default")
}

// challenge is the WWW-Authenticate of a 401 (RFC 6750 §3): the realm is the token
// audience, and invalid_token says that a bearer was sent but did not validate.
func challenge(aud string, r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		return `Bearer realm="` + aud + `"`
	}
	return `Bearer realm="` + aud + `", error="invalid_token"`
}

// errTenantNotFound is the one answer for a tenant that does not exist, is malformed, or is
// not the caller's: the same status and body, byte for byte, whatever the reason.
var errTenantNotFound = api.Errorf(http.StatusNotFound, "TenantNotFound", "the tenant in the path was not found: check the tenant id (a principal can only manage its own tenant)")

func operatorForbidden(action authz.Action, scope string) error {
	return &api.Error{Status: http.StatusForbidden, Code: "Forbidden", Inner: "OperatorNotAllowed",
		Message: fmt.Sprintf("the operator token acts on the platform only and grants nothing inside a tenant. Action: '%s' Resource: '%s' needs an access token of a principal of that tenant with a role that grants the action.", action, scope)}
}

func operatorOnly(action authz.Action) error {
	return &api.Error{Status: http.StatusForbidden, Code: "Forbidden", Inner: "OperatorOnly",
		Message: fmt.Sprintf("Action: '%s' Resource: '/' is a platform operation: it needs the operator token (COFFER_TOKEN), not a tenant principal's access token.", action)}
}

// serve runs the pipeline for one route and writes the response after its audit record.
func (s *Service) serve(rt *Route, w http.ResponseWriter, r *http.Request) {
	ev := audit.Event{Time: s.cfg.Now().UTC(), Operation: rt.Operation, ClientAddr: r.RemoteAddr, ObjectID: r.URL.Path}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	bw := api.NewBufferedWriter()
	err := s.run(rt, bw, r, &ev)
	if err != nil {
		bw = api.NewBufferedWriter() // drop anything a failing handler wrote
		e := api.WriteError(bw, err, mapStoreError, s.mapWiring)
		if e.Status >= 500 {
			s.cfg.Log("management request failed", "operation", rt.Operation, "status", e.Status, "err", err)
		}
		ev.Status, ev.Reason = e.Status, e.Code
		switch e.Status {
		case http.StatusUnauthorized:
			ev.Result = audit.ResultUnauthenticated
			bw.Header().Set("WWW-Authenticate", challenge(s.cfg.Identity.Audience(), r))
		case http.StatusForbidden:
			ev.Result = audit.ResultDenied
		default:
			ev.Result = audit.ResultError
		}
	} else {
		ev.Status, ev.Result = bw.Status(), audit.ResultSuccess
	}
	ev.ObjectID = auditField(ev.ObjectID)
	if aerr := s.cfg.Audit.Append(r.Context(), ev); aerr != nil {
		s.cfg.Log("audit write failed for a management request", "operation", rt.Operation, "err", aerr)
		if err == nil {
			api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the audit log cannot be written; the request's result is withheld"))
			return
		}
	}
	bw.Flush(w)
}

func (s *Service) mapWiring(err error) *api.Error {
	if s.cfg.MapError == nil {
		return nil
	}
	return s.cfg.MapError(err)
}

// run authenticates, resolves the tenant, authorises and calls the handler.
func (s *Service) run(rt *Route, w http.ResponseWriter, r *http.Request, ev *audit.Event) error {
	ctx := r.Context()
	c := &Call{svc: s, ev: ev}
	if err := s.authenticate(r, c); err != nil {
		return err
	}
	if c.Operator {
		ev.CallerOID = OperatorOID
	} else {
		ev.CallerOID, ev.CallerAppID, ev.CallerTenant = c.Caller.ObjectID, c.Caller.AppID, c.Caller.TenantID
		// A tenant principal's requests are its own tenant's records, wherever they point.
		ev.Tenant = c.Caller.TenantID
	}
	if rt.Who == Operator {
		if !c.Operator {
			return operatorOnly(rt.Action)
		}
		return rt.Handle(w, r, c)
	}

	t := r.PathValue("tenant")
	if c.Operator {
		ev.Tenant = auditField(t) // the tenant sees what the operator tried on it
		if rt.Who != TenantOrOperator {
			shown := t
			if !tenancy.IsUUID(shown) {
				shown = "<tenant>"
			}
			return operatorForbidden(rt.Action, "/tenants/"+shown)
		}
	} else if t != c.Caller.TenantID {
		return errTenantNotFound
	}
	if _, err := s.cfg.Store.Tenant(ctx, t); errors.Is(err, tenancy.ErrNotFound) {
		return errTenantNotFound
	} else if err != nil {
		return err
	}
	c.TenantID = t
	if !c.Operator {
		var scope string
		switch rt.Scope {
		case ScopeTenant:
			scope = c.tenantScope()
		case ScopeVault, ScopeManagedHSM:
			name := r.PathValue("name")
			ev.Vault = auditField(name)
			scope = c.tenantScope() + "/vaults/" + name
			if rt.Scope == ScopeManagedHSM {
				scope = c.tenantScope() + "/managedHsms/" + name
			}
			if _, err := authz.ParseScope(scope); err != nil || strings.Contains(name, "/") {
				return badParameter("name " + quoteShort(name) + " is not valid: vault and managed HSM names are 1-24 letters, digits and '-', start with a letter and do not end with '-'")
			}
		}
		if scope != "" {
			if err := c.Authorize(ctx, rt.Action, scope); err != nil {
				return err
			}
		}
	}
	return rt.Handle(w, r, c)
}

// authenticate reads the bearer credential and fills c with the caller.
func (s *Service) authenticate(r *http.Request, c *Call) error {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 {
		return errNoToken
	}
	raw, ok := strings.CutPrefix(auth[0], "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return errNoToken
	}
	if strings.HasPrefix(raw, "cof.") {
		err := s.cfg.Identity.CheckOperator(r.Context(), raw)
		if errors.Is(err, ErrUnauthenticated) {
			return errBadOperatorToken
		}
		if err != nil {
			return err
		}
		c.Operator = true
		return nil
	}
	tid, ok := tokenTenant(raw)
	if !ok {
		return s.badAccessToken()
	}
	caller, err := s.cfg.Identity.Authenticate(r.Context(), raw, tid)
	if errors.Is(err, ErrUnauthenticated) {
		return s.badAccessToken()
	}
	if err != nil {
		return err
	}
	if caller.TenantID != tid || caller.ObjectID == "" {
		return s.badAccessToken()
	}
	c.Caller = caller
	return nil
}

// maxTokenLen bounds the token payload tokenTenant decodes.
const maxTokenLen = 16 << 10

// tokenTenant reads the tid claim of an access token WITHOUT verifying it. It only chooses
// which tenant's issuer the token is then fully validated against (Identity.Authenticate
// requires tid, issuer and signature to agree), so a forged tid gains nothing.
func tokenTenant(raw string) (string, bool) {
	if len(raw) > maxTokenLen {
		return "", false
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := strictb64.URL.DecodeString("", parts[1])
	if err != nil {
		return "", false
	}
	var c struct {
		TenantID string `json:"tid"`
	}
	if json.Unmarshal(payload, &c) != nil || !tenancy.IsUUID(c.TenantID) {
		return "", false
	}
	return c.TenantID, true
}

// auditField makes a request-supplied string fit an audit field (audit.Clip), so that a
// long or odd path can never make the audit write, and with it the request, fail.
func auditField(s string) string { return audit.Clip(s) }
