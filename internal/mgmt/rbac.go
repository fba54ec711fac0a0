package mgmt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

type assignmentPutRequest struct {
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	Scope            string `json:"scope"`
}

// putAssignment creates a role assignment. The caller needs Coffer/roleAssignments/write at
// the assignment's scope, which must lie in the tenant ("/" is refused: platform roles are
// not assigned through a tenant). A built-in Managed HSM role is assignable only in a pool and
// a Key Vault role only at the tenant or in a vault (authz.CheckBuiltInScope).
func (s *Service) putAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if !tenancy.IsUUID(id) {
		return badParameter("role assignment id " + quoteShort(id) + " must be a lower-case UUID")
	}
	var req assignmentPutRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Scope == "" {
		req.Scope = c.tenantScope()
	}
	sc, err := authz.ParseScope(req.Scope)
	if err != nil {
		return badParameter("scope " + quoteShort(req.Scope) + " is not a scope: use /tenants/" + c.TenantID + "[/vaults/<name>|/managedHsms/<name>[/keys/<name>]]")
	}
	if sc.IsPlatform() || sc.Tenant() != c.TenantID {
		return badParameter("scope " + quoteShort(req.Scope) + " is outside this tenant: role assignments made here apply at /tenants/" + c.TenantID + " or below")
	}
	if err := c.Authorize(ctx, authz.RoleAssignmentsWrite, sc.String()); err != nil {
		return err
	}
	if err := s.checkScopeExists(ctx, c.TenantID, sc); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Principal(ctx, c.TenantID, req.PrincipalID); errors.Is(err, tenancy.ErrNotFound) {
		return badParameter("principalId " + quoteShort(req.PrincipalID) + " is not a principal of this tenant")
	} else if err != nil {
		return err
	}
	if role, ok := authz.RoleByID(req.RoleDefinitionID); ok {
		if err := authz.CheckBuiltInScope(role, sc); err != nil {
			return badParameter(strings.TrimPrefix(err.Error(), authz.ErrScopeNotAllowed.Error()+": "))
		}
	}
	want := authz.Assignment{ID: id, PrincipalID: req.PrincipalID, TenantID: c.TenantID, RoleDefinitionID: req.RoleDefinitionID, Scope: sc.String()}
	if old, ok, err := s.assignment(ctx, c, id); err != nil {
		return err
	} else if ok && old.PrincipalID == want.PrincipalID && strings.EqualFold(old.RoleDefinitionID, want.RoleDefinitionID) && old.Scope == want.Scope {
		api.WriteJSON(w, http.StatusOK, assignmentDTO(old, s.roleName(ctx, c.TenantID, old.RoleDefinitionID))) // PUT is idempotent
		return nil
	}
	a, err := s.createAssignment(ctx, want)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, assignmentDTO(a, s.roleName(ctx, c.TenantID, a.RoleDefinitionID)))
	return nil
}

// checkScopeExists requires the vault or pool a scope names to exist in the tenant.
func (s *Service) checkScopeExists(ctx context.Context, tenantID string, sc authz.Scope) error {
	kind, name, what := tenancy.KindVault, sc.Vault(), "vault"
	if name == "" {
		kind, name, what = tenancy.KindManagedHSM, sc.ManagedHSM(), "managed HSM pool"
	}
	if name == "" {
		return nil
	}
	v, err := s.cfg.Store.Vault(ctx, kind, name)
	if errors.Is(err, tenancy.ErrNotFound) || err == nil && v.TenantID != tenantID {
		return badParameter("scope names " + what + " " + name + ", which does not exist in this tenant")
	}
	return err
}

// createAssignment stores a, keeping assignment ids unique across tenants (the snapshot is
// built over all tenants and refuses duplicates), and undoes the write if the platform's
// snapshot no longer builds with it. At a managed HSM pool's scope or one of its keys',
// Managed HSM's limits hold as on the pool's own RBAC API, checked in the transaction that
// writes (400 RoleAssignmentLimitExceeded, nothing written).
func (s *Service) createAssignment(ctx context.Context, a authz.Assignment) (authz.Assignment, error) {
	s.rbacMu.Lock()
	defer s.rbacMu.Unlock()
	if a.ID == "" {
		a.ID = tenancy.NewUUID()
	}
	inUse, err := s.assignmentIDInUse(ctx, a.ID)
	if err != nil {
		return a, err
	}
	if inUse {
		return a, api.Errorf(http.StatusConflict, "RoleAssignmentExists", "role assignment id "+a.ID+" is already in use: choose another UUID")
	}
	scope := a.Scope
	a, err = s.cfg.Store.CreateRoleAssignmentIf(ctx, a, func(existing []authz.Assignment) error {
		return authz.CheckHSMAssignmentLimit(existing, scope)
	})
	if err != nil {
		return a, err
	}
	if _, serr := s.cfg.Store.Snapshot(ctx); serr != nil {
		if _, derr := s.cfg.Store.DeleteRoleAssignment(ctx, a.TenantID, a.ID); derr != nil {
			return a, fmt.Errorf("role assignment %s breaks the authorization snapshot (%v) and could not be removed: %w", a.ID, serr, derr)
		}
		return a, fmt.Errorf("role assignment %s would break the authorization snapshot; not created: %w", a.ID, serr)
	}
	return a, nil
}

// assignmentIDInUse reports whether any tenant has an assignment with id.
func (s *Service) assignmentIDInUse(ctx context.Context, id string) (bool, error) {
	ts, err := s.cfg.Store.Tenants(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		as, err := s.cfg.Store.RoleAssignments(ctx, t.ID)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(as, func(a authz.Assignment) bool { return strings.EqualFold(a.ID, id) }) {
			return true, nil
		}
	}
	return false, nil
}

// roleName names a built-in or custom role of tenantID, or "" if there is none.
func (s *Service) roleName(ctx context.Context, tenantID, id string) string {
	if r, ok := authz.RoleByID(id); ok {
		return r.Name
	}
	rs, _ := s.cfg.Store.RoleDefinitions(ctx, tenantID)
	for _, r := range rs {
		if strings.EqualFold(r.ID, id) {
			return r.Name
		}
	}
	return ""
}

// assignment finds assignment id of the call's tenant.
func (s *Service) assignment(ctx context.Context, c *Call, id string) (authz.Assignment, bool, error) {
	as, err := s.cfg.Store.RoleAssignments(ctx, c.TenantID)
	if err != nil {
		return authz.Assignment{}, false, err
	}
	for _, a := range as {
		if a.ID == id {
			return a, true, nil
		}
	}
	return authz.Assignment{}, false, nil
}

func (s *Service) getAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	a, ok, err := s.assignment(ctx, c, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("role assignment", quoteShort(id))
	}
	api.WriteJSON(w, http.StatusOK, assignmentDTO(a, s.roleName(ctx, c.TenantID, a.RoleDefinitionID)))
	return nil
}

// deleteAssignment removes an assignment. The caller needs Coffer/roleAssignments/write at
// the assignment's scope; for an id that does not exist, at the tenant. A caller without the
// right gets the same 403 either way, naming the tenant, so it learns neither whether the
// assignment exists nor its scope.
func (s *Service) deleteAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	a, ok, err := s.assignment(ctx, c, id)
	if err != nil {
		return err
	}
	if !ok || c.Authorize(ctx, authz.RoleAssignmentsWrite, a.Scope) != nil {
		// Lacking the right at the assignment's scope means lacking it at the tenant's
		// (which contains it): this is the refusal a missing id gets.
		if err := c.Authorize(ctx, authz.RoleAssignmentsWrite, c.tenantScope()); err != nil {
			return err
		}
		return notFound("role assignment", quoteShort(id))
	}
	a, err = s.removeAssignment(ctx, c, a)
	if errors.Is(err, tenancy.ErrNotFound) {
		return notFound("role assignment", quoteShort(id))
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, assignmentDTO(a, s.roleName(ctx, c.TenantID, a.RoleDefinitionID)))
	return nil
}

// removeAssignment deletes a, refusing to remove the tenant's last standing Coffer Tenant
// Administrator assignment at the tenant scope: nobody could manage the tenant afterwards,
// since the operator cannot assign roles inside a tenant.
func (s *Service) removeAssignment(ctx context.Context, c *Call, a authz.Assignment) (authz.Assignment, error) {
	s.rbacMu.Lock()
	defer s.rbacMu.Unlock()
	if isStandingAdmin(a, c.tenantScope()) {
		as, err := s.cfg.Store.RoleAssignments(ctx, c.TenantID)
		if err != nil {
			return a, err
		}
		others := slices.ContainsFunc(as, func(o authz.Assignment) bool { return o.ID != a.ID && isStandingAdmin(o, c.tenantScope()) })
		if !others {
			return a, api.Errorf(http.StatusConflict, "LastAdministrator", "this is the tenant's last Coffer Tenant Administrator assignment at "+c.tenantScope()+": assign the role to another principal first")
		}
	}
	return s.cfg.Store.DeleteRoleAssignment(ctx, c.TenantID, a.ID)
}

// isStandingAdmin reports whether a grants Coffer Tenant Administrator on the whole tenant
// without an expiry.
func isStandingAdmin(a authz.Assignment, tenantScope string) bool {
	return strings.EqualFold(a.RoleDefinitionID, authz.CofferTenantAdministratorRoleID) && a.Scope == tenantScope && a.ExpiresAt.IsZero()
}

func (s *Service) listAssignments(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	as, err := s.cfg.Store.RoleAssignments(ctx, c.TenantID)
	if err != nil {
		return err
	}
	custom, err := s.cfg.Store.RoleDefinitions(ctx, c.TenantID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, rd := range append(authz.BuiltInRoles(), custom...) {
		names[strings.ToLower(rd.ID)] = rd.Name
	}
	out := make([]AssignmentDTO, 0, len(as))
	for _, a := range as {
		out = append(out, assignmentDTO(a, names[strings.ToLower(a.RoleDefinitionID)]))
	}
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}

func (s *Service) listRoleDefinitions(w http.ResponseWriter, r *http.Request, c *Call) error {
	custom, err := s.cfg.Store.RoleDefinitions(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	var out []RoleDefinitionDTO
	for _, rd := range append(authz.BuiltInRoles(), custom...) {
		out = append(out, roleDefinitionDTO(rd))
	}
	api.WriteJSON(w, http.StatusOK, list(out))
	return nil
}

type roleDefinitionPutRequest struct {
	RoleName         string          `json:"roleName"`
	Description      string          `json:"description"`
	Permissions      []PermissionDTO `json:"permissions"`
	AssignableScopes []string        `json:"assignableScopes"`
}

// maxPatterns bounds the action patterns of one custom role.
const maxPatterns = 256

// putRoleDefinition creates a custom role of the tenant. Its id must not be used by a
// built-in role or by any tenant's custom role; changing a custom role is not supported yet.
// A role assignable in one of the tenant's managed HSM pools (its assignable scopes include
// the pool or the tenant) counts towards the pool's custom-role limit, checked in the
// transaction that writes (400 RoleDefinitionLimitExceeded, nothing written).
func (s *Service) putRoleDefinition(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if !tenancy.IsUUID(id) {
		return badParameter("role definition id " + quoteShort(id) + " must be a lower-case UUID")
	}
	var req roleDefinitionPutRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.RoleName) == "" || len(req.RoleName) > 120 || strings.ContainsFunc(req.RoleName, isControl) {
		return badParameter("roleName must be 1-120 printable characters")
	}
	if len(req.Description) > 1024 {
		return badParameter("description must be at most 1024 bytes")
	}
	if len(req.Permissions) == 0 {
		return badParameter("permissions must hold at least one block of actions or dataActions")
	}
	if len(req.AssignableScopes) == 0 {
		req.AssignableScopes = []string{c.tenantScope()}
	}
	rd := authz.RoleDefinition{ID: id, Name: req.RoleName, Description: req.Description, Type: authz.RoleTypeCustom, AssignableScopes: req.AssignableScopes}
	n := 0
	for _, p := range req.Permissions {
		// A block of only exclusions (or nothing, [{}]) grants nothing: the same mistake as
		// no block at all.
		if len(p.Actions)+len(p.DataActions) == 0 {
			return badParameter("permissions must hold at least one block of actions or dataActions: every block needs an action or a data action")
		}
		n += len(p.Actions) + len(p.NotActions) + len(p.DataActions) + len(p.NotDataActions)
		rd.Permissions = append(rd.Permissions, authz.Permission{Actions: p.Actions, NotActions: p.NotActions, DataActions: p.DataActions, NotDataActions: p.NotDataActions})
	}
	if n > maxPatterns {
		return badParameter(fmt.Sprintf("a role may hold at most %d action patterns", maxPatterns))
	}
	if _, ok := authz.RoleByID(id); ok {
		return api.Errorf(http.StatusConflict, "RoleDefinitionExists", "role definition "+id+" is a built-in role and cannot be replaced")
	}
	s.rbacMu.Lock()
	defer s.rbacMu.Unlock()
	inUse, err := s.roleIDInUse(ctx, id)
	if err != nil {
		return err
	}
	if inUse {
		return api.Errorf(http.StatusConflict, "RoleDefinitionExists", "role definition id "+id+" is already in use (changing a custom role is not supported yet): choose another UUID")
	}
	pools, err := s.poolScopes(ctx, c.TenantID)
	if err != nil {
		return err
	}
	want := rd
	rd, err = s.cfg.Store.CreateRoleDefinitionIf(ctx, c.TenantID, rd, func(existing []authz.RoleDefinition) error {
		// Role names are unique in a tenant, as in an Azure directory: assignments and
		// people pick roles by name.
		for _, e := range existing {
			if strings.EqualFold(strings.TrimSpace(e.Name), strings.TrimSpace(want.Name)) {
				return api.Errorf(http.StatusConflict, "RoleDefinitionWithSameNameExists", "a custom role named "+quoteShort(want.Name)+" already exists in this tenant: choose another roleName")
			}
		}
		return authz.CheckHSMRoleLimit(existing, want, pools)
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, roleDefinitionDTO(rd))
	return nil
}

// deleteRoleDefinition removes one of the tenant's custom roles that no assignment uses
// (built-in roles cannot be deleted) and answers the role as it was. The id must match
// exactly as stored, lower case (as PUT requires), like GET and DELETE of role assignments:
// another spelling names no role (404), so it cannot delete one.
func (s *Service) deleteRoleDefinition(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	if !tenancy.IsUUID(strings.ToLower(id)) {
		return badParameter("role definition id " + quoteShort(id) + " must be a UUID")
	}
	if !tenancy.IsUUID(id) {
		return api.Errorf(http.StatusNotFound, "NotFound", "role definition "+id+" was not found in this tenant: role definition ids are lower case")
	}
	if _, ok := authz.RoleByID(id); ok {
		return badParameter("role definition " + id + " is a built-in role and cannot be deleted")
	}
	s.rbacMu.Lock()
	defer s.rbacMu.Unlock()
	rd, err := s.cfg.Store.DeleteRoleDefinition(r.Context(), c.TenantID, id)
	switch {
	case errors.Is(err, tenancy.ErrNotFound):
		return notFound("role definition", id)
	case errors.Is(err, tenancy.ErrInUse):
		return api.Errorf(http.StatusConflict, "RoleDefinitionHasAssignments", "role definition "+id+" is assigned: delete its role assignments first")
	case err != nil:
		return err
	}
	api.WriteJSON(w, http.StatusOK, roleDefinitionDTO(rd))
	return nil
}

// roleIDInUse reports whether any tenant has a custom role with id.
func (s *Service) roleIDInUse(ctx context.Context, id string) (bool, error) {
	ts, err := s.cfg.Store.Tenants(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		rs, err := s.cfg.Store.RoleDefinitions(ctx, t.ID)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(rs, func(r authz.RoleDefinition) bool { return strings.EqualFold(r.ID, id) }) {
			return true, nil
		}
	}
	return false, nil
}

// poolScopes returns the scopes of tenantID's managed HSM pools.
func (s *Service) poolScopes(ctx context.Context, tenantID string) ([]authz.Scope, error) {
	vs, err := s.cfg.Store.Vaults(ctx, tenantID, tenancy.KindManagedHSM)
	if err != nil {
		return nil, err
	}
	out := make([]authz.Scope, 0, len(vs))
	for _, v := range vs {
		sc, err := authz.ParseScope(api.StoreScope(v))
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}
