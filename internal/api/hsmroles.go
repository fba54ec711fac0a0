package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Managed HSM role definitions (RoleDefinitions_*): the built-in Managed HSM roles with
// their Azure ids, and the tenant's custom roles assignable in the pool.

type permissionJSON struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type definitionProps struct {
	RoleName         string           `json:"roleName"`
	Description      string           `json:"description"`
	Type             string           `json:"type"`
	Permissions      []permissionJSON `json:"permissions"`
	AssignableScopes []string         `json:"assignableScopes"`
}

type definitionJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties definitionProps `json:"properties"`
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func definitionOut(r authz.RoleDefinition, pool string) definitionJSON {
	typ := "CustomRole"
	if r.Type == authz.RoleTypeBuiltIn {
		typ = "AKVBuiltInRole"
	}
	d := definitionJSON{ID: roleDefPrefix + strings.ToLower(r.ID), Name: strings.ToLower(r.ID), Type: "Microsoft.Authorization/roleDefinitions",
		Properties: definitionProps{RoleName: r.Name, Description: r.Description, Type: typ, Permissions: []permissionJSON{}, AssignableScopes: []string{}}}
	for _, p := range r.Permissions {
		d.Properties.Permissions = append(d.Properties.Permissions, permissionJSON{orEmpty(p.Actions), orEmpty(p.NotActions), orEmpty(p.DataActions), orEmpty(p.NotDataActions)})
	}
	for _, s := range r.AssignableScopes {
		if s == "/" || s == pool {
			s = "/"
		} else if k, ok := strings.CutPrefix(s, pool+"/keys/"); ok {
			s = "/keys/" + k
		} else {
			continue // a tenant-wide custom role: its other scopes are not this pool's
		}
		d.Properties.AssignableScopes = append(d.Properties.AssignableScopes, s)
	}
	if len(d.Properties.AssignableScopes) == 0 {
		d.Properties.AssignableScopes = []string{"/"}
	}
	return d
}

func (h *HSMRBAC) listDefinitions(w http.ResponseWriter, r *http.Request, c *Call) error {
	filter := r.URL.Query().Get("$filter")
	name := ""
	switch m := roleNameEq.FindStringSubmatch(filter); {
	case filter == "" || filter == "atScopeAndBelow()":
	case m != nil:
		name = m[1]
	default:
		return Errorf(http.StatusBadRequest, "BadParameter", "$filter must be atScopeAndBelow() or roleName eq '<name>'")
	}
	roles, err := h.poolRoles(r.Context(), c)
	if err != nil {
		return err
	}
	out := []definitionJSON{}
	for _, role := range roles {
		if name == "" || role.Name == name {
			out = append(out, definitionOut(role, StoreScope(c.Store)))
		}
	}
	return writeRBACPage(w, r, c, out, func(d definitionJSON) string { return d.Name })
}

// pathRole is the pool's role definition named by {id}.
func (h *HSMRBAC) pathRole(r *http.Request, c *Call) (authz.RoleDefinition, error) {
	id, ok := roleIDOf(r.PathValue("id"))
	if !ok {
		return authz.RoleDefinition{}, Errorf(http.StatusBadRequest, "BadParameter", "the role definition name must be a GUID")
	}
	return h.poolRole(r.Context(), c, id)
}

func (h *HSMRBAC) getDefinition(w http.ResponseWriter, r *http.Request, c *Call) error {
	role, err := h.pathRole(r, c)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, definitionOut(role, StoreScope(c.Store)))
	return nil
}

type definitionCreate struct {
	Properties *struct {
		RoleName         string           `json:"roleName"`
		Description      string           `json:"description"`
		Type             string           `json:"type"`
		Permissions      []permissionJSON `json:"permissions"`
		AssignableScopes []string         `json:"assignableScopes"`
	} `json:"properties"`
}

func (h *HSMRBAC) putDefinition(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	if !guidRE.MatchString(id) {
		return Errorf(http.StatusBadRequest, "BadParameter", "the role definition name must be a GUID")
	}
	id = strings.ToLower(id)
	if _, builtIn := authz.RoleByID(id); builtIn {
		return Errorf(http.StatusBadRequest, "BadParameter", "a built-in role definition cannot be changed")
	}
	var req definitionCreate
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	p := req.Properties
	switch {
	case p == nil || p.RoleName == "" || len(p.Permissions) == 0:
		return Errorf(http.StatusBadRequest, "BadParameter", "properties.roleName and properties.permissions are required")
	case p.Type != "" && p.Type != "CustomRole":
		return Errorf(http.StatusBadRequest, "BadParameter", "properties.type must be CustomRole")
	case len(p.RoleName) > 256 || len(p.Description) > 1024 || len(p.Permissions) > 16:
		return Errorf(http.StatusBadRequest, "BadParameter", "the role definition is too large")
	}
	pool := StoreScope(c.Store)
	def := authz.RoleDefinition{ID: id, Name: p.RoleName, Description: p.Description, Type: authz.RoleTypeCustom}
	for _, s := range p.AssignableScopes {
		if s != "/" && s != "/keys" {
			return Errorf(http.StatusBadRequest, "BadParameter", "properties.assignableScopes may hold only / and /keys")
		}
	}
	def.AssignableScopes = []string{pool}
	for _, pm := range p.Permissions {
		if err := checkHSMPermission(pm); err != nil {
			return err
		}
		def.Permissions = append(def.Permissions, authz.Permission{Actions: pm.Actions, NotActions: pm.NotActions, DataActions: pm.DataActions, NotDataActions: pm.NotDataActions})
	}
	poolScope, err := authz.ParseScope(pool)
	if err != nil {
		return err
	}
	got, _, err := h.Store.PutRoleDefinition(r.Context(), c.Store.TenantID, def, func(existing []authz.RoleDefinition) error {
		return authz.CheckHSMRoleLimit(existing, def, []authz.Scope{poolScope})
	})
	switch {
	case errors.Is(err, tenancy.ErrExists):
		return Errorf(http.StatusConflict, "Conflict", "the role definition name is taken")
	case errors.Is(err, tenancy.ErrInvalidName):
		return Errorf(http.StatusBadRequest, "BadParameter", "the role definition is not valid: check the role name (not a built-in role's) and every action against Managed HSM's data actions")
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusCreated, definitionOut(got, pool))
	return nil
}

func (h *HSMRBAC) deleteDefinition(w http.ResponseWriter, r *http.Request, c *Call) error {
	role, err := h.pathRole(r, c)
	if err != nil {
		return err
	}
	if role.Type == authz.RoleTypeBuiltIn {
		return Errorf(http.StatusBadRequest, "BadParameter", "a built-in role definition cannot be deleted")
	}
	got, err := h.Store.DeleteRoleDefinition(r.Context(), c.Store.TenantID, role.ID)
	switch {
	case errors.Is(err, tenancy.ErrInUse):
		return Errorf(http.StatusConflict, "RoleDefinitionHasAssignments", "the role definition is assigned: delete its role assignments first")
	case errors.Is(err, tenancy.ErrNotFound):
		return Errorf(http.StatusNotFound, "RoleDefinitionNotFound", "The role definition "+role.ID+" does not exist in this managed HSM.")
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusOK, definitionOut(got, StoreScope(c.Store)))
	return nil
}

// checkHSMPermission requires Managed HSM data actions (the DataAction enum of
// administration.json, no wildcards) and no control-plane actions.
func checkHSMPermission(p permissionJSON) error {
	if len(p.Actions) > 0 || len(p.NotActions) > 0 {
		return Errorf(http.StatusBadRequest, "BadParameter", "a Managed HSM role has no actions or notActions: use dataActions and notDataActions")
	}
	for _, a := range append(append([]string(nil), p.DataActions...), p.NotDataActions...) {
		if !authz.IsDataAction(authz.Action(a)) || !strings.HasPrefix(strings.ToLower(a), "microsoft.keyvault/managedhsm/") {
			return Errorf(http.StatusBadRequest, "BadParameter", "a data action is not a Managed HSM data action (Microsoft.KeyVault/managedHsm/...)")
		}
	}
	return nil
}
