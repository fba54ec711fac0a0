package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Managed HSM local RBAC (administration.json: RoleAssignments_*, RoleDefinitions_*), served
// on pool hosts only. Local scopes are "/" (the pool), "/keys" (every key of the pool: the
// same set of objects as "/") and "/keys/{name}". Assignments are the tenant's ordinary role
// assignments (tenancy), at the pool's scope or one key's, so the data plane's decisions
// honour them as soon as they are written. Each route needs the Managed HSM data action
// (microsoft.keyvault/managedHsm/roleAssignments/write/action, ...) at the request's scope.
//
// Azure's Managed HSM object limits hold (authz.CheckHSMAssignmentLimit and
// authz.CheckHSMRoleLimit, which the management API applies too): 50 role assignments at HSM
// scope ("/" and "/keys" count together), 10 at each key's scope and 50 custom role
// definitions per pool. They are checked in the transaction that writes, so concurrent
// requests cannot overshoot; over a limit is 400 and nothing is written.

// RBACStore is what the Managed HSM RBAC endpoints need from the tenancy store.
type RBACStore interface {
	CreateRoleAssignmentIf(ctx context.Context, a authz.Assignment, check func(existing []authz.Assignment) error) (authz.Assignment, error)
	DeleteRoleAssignment(ctx context.Context, tenantID, id string) (authz.Assignment, error)
	RoleAssignments(ctx context.Context, tenantID string) ([]authz.Assignment, error)
	RoleDefinitions(ctx context.Context, tenantID string) ([]authz.RoleDefinition, error)
	PutRoleDefinition(ctx context.Context, tenantID string, r authz.RoleDefinition, onCreate func(existing []authz.RoleDefinition) error) (authz.RoleDefinition, bool, error)
	DeleteRoleDefinition(ctx context.Context, tenantID, id string) (authz.RoleDefinition, error)
	Principal(ctx context.Context, tenantID, objectID string) (tenancy.Principal, error)
}

// HSMRBAC serves the role assignment and role definition endpoints of managed HSM pools.
type HSMRBAC struct {
	Store RBACStore
}

const (
	assignmentsPath = "/providers/Microsoft.Authorization/roleAssignments"
	definitionsPath = "/providers/Microsoft.Authorization/roleDefinitions"
	// roleDefPrefix is how Managed HSM names a role definition in roleDefinitionId and id.
	roleDefPrefix = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
)

var (
	objectNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	guidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	principalEq  = regexp.MustCompile(`^principalId eq '([0-9a-fA-F-]{36})'$`)
	roleNameEq   = regexp.MustCompile(`^roleName eq '([^']{1,256})'$`)
)

// Routes are the Managed HSM RBAC endpoints at the three local scopes.
func (h *HSMRBAC) Routes() []Route {
	hsm := []tenancy.Kind{tenancy.KindManagedHSM}
	act := func(a authz.Action) map[tenancy.Kind]string {
		return map[tenancy.Kind]string{tenancy.KindManagedHSM: string(a)}
	}
	var rs []Route
	for _, prefix := range []string{"", "/keys", "/keys/{name}"} {
		obj := ""
		if prefix == "/keys/{name}" {
			obj = "keys"
		}
		rs = append(rs,
			Route{Pattern: "GET " + prefix + assignmentsPath, Kinds: hsm, Operation: "RoleAssignmentList", Object: obj, Action: act(authz.HSMRoleAssignmentsRead), Handle: h.listAssignments},
			Route{Pattern: "GET " + prefix + assignmentsPath + "/{id}", Kinds: hsm, Operation: "RoleAssignmentGet", Object: obj, Action: act(authz.HSMRoleAssignmentsRead), Handle: h.getAssignment},
			Route{Pattern: "PUT " + prefix + assignmentsPath + "/{id}", Kinds: hsm, Operation: "RoleAssignmentCreate", Object: obj, Action: act(authz.HSMRoleAssignmentsWrite), MaxBody: 16 << 10, Handle: h.putAssignment},
			Route{Pattern: "DELETE " + prefix + assignmentsPath + "/{id}", Kinds: hsm, Operation: "RoleAssignmentDelete", Object: obj, Action: act(authz.HSMRoleAssignmentsDelete), Handle: h.deleteAssignment},
		)
	}
	// Managed HSM keeps role definitions at "/" only.
	return append(rs,
		Route{Pattern: "GET " + definitionsPath, Kinds: hsm, Operation: "RoleDefinitionList", Action: act(authz.HSMRoleDefinitionsRead), Handle: h.listDefinitions},
		Route{Pattern: "GET " + definitionsPath + "/{id}", Kinds: hsm, Operation: "RoleDefinitionGet", Action: act(authz.HSMRoleDefinitionsRead), Handle: h.getDefinition},
		Route{Pattern: "PUT " + definitionsPath + "/{id}", Kinds: hsm, Operation: "RoleDefinitionCreateOrUpdate", Action: act(authz.HSMRoleDefinitionsWrite), MaxBody: 64 << 10, Handle: h.putDefinition},
		Route{Pattern: "DELETE " + definitionsPath + "/{id}", Kinds: hsm, Operation: "RoleDefinitionDelete", Action: act(authz.HSMRoleDefinitionsDelete), Handle: h.deleteDefinition},
	)
}

// localScope is a request's Managed HSM scope: its wire form and the RBAC scope it stands for.
type localScope struct{ wire, rbac string }

// requestScope reads the local scope from the route (the path before /providers/).
func requestScope(r *http.Request, c *Call) (localScope, error) {
	pool := StoreScope(c.Store)
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/keys/providers/"):
		return localScope{"/keys", pool}, nil
	case strings.HasPrefix(p, "/keys/"):
		n := r.PathValue("name")
		if !objectNameRE.MatchString(n) {
			return localScope{}, Errorf(http.StatusBadRequest, "BadParameter", "the key name in the scope must match ^[0-9a-zA-Z-]{1,127}$")
		}
		return localScope{"/keys/" + strings.ToLower(n), pool + "/keys/" + strings.ToLower(n)}, nil
	}
	return localScope{"/", pool}, nil
}

// wireScope is the local scope an assignment answers with, or "" if it is not in pool.
func wireScope(a authz.Assignment, pool string) string {
	switch {
	case a.Scope == pool && (a.HSMScope == "/" || a.HSMScope == "/keys"):
		return a.HSMScope
	case a.Scope == pool:
		return "/"
	case strings.HasPrefix(a.Scope, pool+"/keys/"):
		return "/keys/" + strings.TrimPrefix(a.Scope, pool+"/keys/")
	}
	return ""
}

type assignmentProps struct {
	Scope            string `json:"scope"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
}

type assignmentJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Properties assignmentProps `json:"properties"`
}

func assignmentOut(a authz.Assignment, wire string) assignmentJSON {
	prefix := wire
	if prefix == "/" {
		prefix = ""
	}
	return assignmentJSON{
		ID: prefix + assignmentsPath + "/" + a.ID, Name: a.ID, Type: "Microsoft.Authorization/roleAssignments",
		Properties: assignmentProps{Scope: wire, RoleDefinitionID: roleDefPrefix + strings.ToLower(a.RoleDefinitionID), PrincipalID: a.PrincipalID},
	}
}

// poolAssignments returns the tenant's assignments in the pool with their local scopes.
func (h *HSMRBAC) poolAssignments(ctx context.Context, c *Call) ([]authz.Assignment, []string, error) {
	all, err := h.Store.RoleAssignments(ctx, c.Store.TenantID)
	if err != nil {
		return nil, nil, err
	}
	pool := StoreScope(c.Store)
	var as []authz.Assignment
	var wires []string
	for _, a := range all {
		if w := wireScope(a, pool); w != "" {
			as, wires = append(as, a), append(wires, w)
		}
	}
	return as, wires, nil
}

// covers reports whether local scope outer is inner or above it: "/" covers every scope,
// "/keys" itself and every key's, a key's scope only itself.
func covers(outer, inner string) bool {
	switch {
	case outer == "/" || outer == inner:
		return true
	case outer == "/keys":
		return strings.HasPrefix(inner, "/keys/")
	}
	return false
}

// listAssignments lists as the spec says: without a filter the assignments at, above or
// below the scope; atScope() those at or above it; principalId eq '<id>' that principal's
// at, above or below it.
func (h *HSMRBAC) listAssignments(w http.ResponseWriter, r *http.Request, c *Call) error {
	sc, err := requestScope(r, c)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("$filter")
	principal := ""
	switch m := principalEq.FindStringSubmatch(filter); {
	case filter == "" || filter == "atScope()":
	case m != nil:
		principal = strings.ToLower(m[1])
	default:
		return Errorf(http.StatusBadRequest, "BadParameter", "$filter must be atScope() or principalId eq '<id>'")
	}
	as, wires, err := h.poolAssignments(r.Context(), c)
	if err != nil {
		return err
	}
	out := []assignmentJSON{}
	for i, a := range as {
		above, below := covers(wires[i], sc.wire), covers(sc.wire, wires[i])
		switch {
		case filter == "atScope()" && !above,
			!above && !below,
			principal != "" && !strings.EqualFold(a.PrincipalID, principal):
			continue
		}
		out = append(out, assignmentOut(a, wires[i]))
	}
	return writeRBACPage(w, r, c, out, func(a assignmentJSON) string { return a.Name })
}

// writeRBACPage answers one page of an RBAC listing: the items after $skiptoken in the
// order of their names (GUIDs), at most records.MaxResults of them, with a nextLink that
// repeats the request's $filter. The spec gives these listings no maxresults.
func writeRBACPage[T any](w http.ResponseWriter, r *http.Request, c *Call, items []T, name func(T) string) error {
	skip := r.URL.Query().Get("$skiptoken")
	if skip != "" && !guidRE.MatchString(skip) {
		return Errorf(http.StatusBadRequest, "BadParameter", "$skiptoken is invalid: pass the nextLink of the previous page unchanged")
	}
	skip = strings.ToLower(skip)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	if skip != "" {
		i, found := slices.BinarySearchFunc(items, skip, func(it T, s string) int { return strings.Compare(name(it), s) })
		if found {
			i++
		}
		items = items[i:]
	}
	next := ""
	if len(items) > records.MaxResults {
		items = items[:records.MaxResults]
		next = name(items[len(items)-1])
	}
	return writePage(w, r, c, keys.Page[T]{Value: items, NextToken: next}, keys.ListOptions{})
}

// findAssignment returns the pool's assignment named by {id} at the request's scope.
func (h *HSMRBAC) findAssignment(r *http.Request, c *Call) (authz.Assignment, string, error) {
	sc, err := requestScope(r, c)
	if err != nil {
		return authz.Assignment{}, "", err
	}
	as, wires, err := h.poolAssignments(r.Context(), c)
	if err != nil {
		return authz.Assignment{}, "", err
	}
	id := strings.ToLower(r.PathValue("id"))
	for i, a := range as {
		if a.ID == id && wires[i] == sc.wire {
			return a, wires[i], nil
		}
	}
	return authz.Assignment{}, "", Errorf(http.StatusNotFound, "RoleAssignmentNotFound", "Requested role assignment not found (Activity ID: none).")
}

func (h *HSMRBAC) getAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	a, wire, err := h.findAssignment(r, c)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, assignmentOut(a, wire))
	return nil
}

type assignmentCreate struct {
	Properties *struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
	} `json:"properties"`
}

func (h *HSMRBAC) putAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	sc, err := requestScope(r, c)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !guidRE.MatchString(id) {
		return Errorf(http.StatusBadRequest, "BadParameter", "the role assignment name must be a GUID")
	}
	id = strings.ToLower(id)
	var req assignmentCreate
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Properties == nil || req.Properties.RoleDefinitionID == "" || req.Properties.PrincipalID == "" {
		return Errorf(http.StatusBadRequest, "BadParameter", "properties.roleDefinitionId and properties.principalId are required")
	}
	roleID, ok := roleIDOf(req.Properties.RoleDefinitionID)
	if !ok {
		return Errorf(http.StatusBadRequest, "BadParameter", "properties.roleDefinitionId must be a role definition GUID or "+roleDefPrefix+"<GUID>")
	}
	role, err := h.poolRole(ctx, c, roleID)
	if err != nil {
		return err
	}
	principal := strings.ToLower(req.Properties.PrincipalID)
	if _, err := h.Store.Principal(ctx, c.Store.TenantID, principal); errors.Is(err, tenancy.ErrNotFound) {
		return Errorf(http.StatusBadRequest, "BadParameter", "properties.principalId is not a principal of this tenant")
	} else if err != nil {
		return err
	}
	a := authz.Assignment{ID: id, PrincipalID: principal, TenantID: c.Store.TenantID, RoleDefinitionID: role.ID, Scope: sc.rbac, HSMScope: sc.wire}
	got, err := h.Store.CreateRoleAssignmentIf(ctx, a, func(existing []authz.Assignment) error {
		return authz.CheckHSMAssignmentLimit(existing, a.Scope)
	})
	switch {
	case errors.Is(err, tenancy.ErrExists):
		if old, wire, ferr := h.findAssignment(r, c); ferr == nil && old.PrincipalID == a.PrincipalID && strings.EqualFold(old.RoleDefinitionID, a.RoleDefinitionID) {
			WriteJSON(w, http.StatusCreated, assignmentOut(old, wire)) // the same PUT again
			return nil
		}
		return Errorf(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists.")
	case errors.Is(err, tenancy.ErrInvalidName), errors.Is(err, tenancy.ErrNotFound):
		return Errorf(http.StatusBadRequest, "BadParameter", "the role "+role.Name+" cannot be assigned at scope "+sc.wire)
	case err != nil:
		return err
	}
	WriteJSON(w, http.StatusCreated, assignmentOut(got, sc.wire))
	return nil
}

func (h *HSMRBAC) deleteAssignment(w http.ResponseWriter, r *http.Request, c *Call) error {
	a, wire, err := h.findAssignment(r, c)
	if err != nil {
		return err
	}
	if _, err := h.Store.DeleteRoleAssignment(r.Context(), c.Store.TenantID, a.ID); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, assignmentOut(a, wire))
	return nil
}

// roleIDOf accepts a bare GUID or Managed HSM's ".../roleDefinitions/<GUID>" form.
func roleIDOf(s string) (string, bool) {
	if i := strings.LastIndex(s, "/roleDefinitions/"); i >= 0 {
		s = s[i+len("/roleDefinitions/"):]
	}
	return strings.ToLower(s), guidRE.MatchString(s)
}

// poolRoles are the role definitions of a pool: the Managed HSM built-in roles and the
// tenant's custom roles assignable in the pool.
func (h *HSMRBAC) poolRoles(ctx context.Context, c *Call) ([]authz.RoleDefinition, error) {
	var out []authz.RoleDefinition
	for _, r := range authz.BuiltInRoles() {
		if strings.HasPrefix(r.Name, "Managed HSM ") {
			out = append(out, r)
		}
	}
	custom, err := h.Store.RoleDefinitions(ctx, c.Store.TenantID)
	if err != nil {
		return nil, err
	}
	pool, err := authz.ParseScope(StoreScope(c.Store))
	if err != nil {
		return nil, err
	}
	for _, r := range custom {
		if r.AssignableAt(pool) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (h *HSMRBAC) poolRole(ctx context.Context, c *Call, id string) (authz.RoleDefinition, error) {
	roles, err := h.poolRoles(ctx, c)
	if err != nil {
		return authz.RoleDefinition{}, err
	}
	for _, r := range roles {
		if strings.EqualFold(r.ID, id) {
			return r, nil
		}
	}
	return authz.RoleDefinition{}, Errorf(http.StatusNotFound, "RoleDefinitionNotFound", "The role definition "+id+" does not exist in this managed HSM.")
}
