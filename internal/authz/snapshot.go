package authz

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors NewSnapshot wraps, one per problem, joined with errors.Join.
var (
	ErrInvalidAssignment = errors.New("invalid role assignment")
	ErrUnknownRole       = errors.New("unknown role definition")
	ErrDuplicateRole     = errors.New("duplicate role definition")
	ErrCrossTenant       = errors.New("cross-tenant role assignment")
	ErrScopeNotAllowed   = errors.New("scope outside the role's assignable scopes")
)

// Assignment grants the role RoleDefinitionID to the principal PrincipalID of tenant
// TenantID at Scope (a ParseScope path) and everything below it. A zero NotBefore means
// "from now on"; a zero ExpiresAt means "no expiry". Both bound just-in-time grants: the
// assignment counts only while NotBefore <= now < ExpiresAt.
type Assignment struct {
	ID               string
	PrincipalID      string
	TenantID         string
	RoleDefinitionID string
	Scope            string
	NotBefore        time.Time
	ExpiresAt        time.Time
	// HSMScope, when set, is the Managed HSM local scope the assignment was made at through
	// the pool's RBAC API ("/", "/keys" or "/keys/{name}"), kept to answer in that form.
	// Decide uses Scope only.
	HSMScope string `json:",omitempty"`
}

// Snapshot is an immutable, validated set of role definitions and assignments, indexed
// by principal. Build one with NewSnapshot; it is safe for concurrent use, and a new one
// replaces it (for example through an atomic.Pointer) when assignments change.
type Snapshot struct {
	roles       map[string]*compiledRole // by lower-case id
	byPrincipal map[principalKey][]grant
	assignments int
}

type principalKey struct{ tenant, principal string }

type compiledRole struct {
	def    RoleDefinition
	grants actionSet
	scopes []Scope
}

// grant is an assignment compiled for Decide.
type grant struct {
	id        string
	roleID    string
	tenant    string
	scope     Scope
	notBefore time.Time
	expiresAt time.Time
	grants    actionSet
}

// NewSnapshot validates roles and assignments and builds a Snapshot. The built-in roles
// are always present; roles adds custom roles (a built-in role may be passed again only
// unchanged, so NewSnapshot(BuiltInRoles(), …) works). It reports every problem, each
// wrapping one of ErrInvalidRole, ErrDuplicateRole, ErrInvalidAssignment, ErrUnknownRole,
// ErrInvalidScope, ErrCrossTenant or ErrScopeNotAllowed:
//   - role ids are UUIDs and unique; custom roles have type CustomRole, a name no built-in
//     role has, well-formed action patterns and parseable assignable scopes;
//   - every assignment has a unique id, a principal, a tenant, an existing role and a scope
//     that parses, lies in the assignment's own tenant (or is "/"), and lies within one of
//     the role's assignable scopes; ExpiresAt, if set, is after NotBefore.
//
// An assignment of a built-in role at a scope of the other kind of container
// (CheckBuiltInScope: a Managed HSM local role outside a pool) is no error: it is kept and
// grants nothing.
//
// The inputs are copied: changing them afterwards does not change the Snapshot.
func NewSnapshot(roles []RoleDefinition, assignments []Assignment) (*Snapshot, error) {
	var errs []error
	s := &Snapshot{
		roles:       make(map[string]*compiledRole, len(builtInRoles)+len(roles)),
		byPrincipal: make(map[principalKey][]grant),
	}
	add := func(r RoleDefinition) {
		cr := &compiledRole{def: r.clone(), grants: r.grants()}
		for _, as := range r.AssignableScopes {
			sc, _ := ParseScope(as) // validated before add
			cr.scopes = append(cr.scopes, sc)
		}
		s.roles[strings.ToLower(r.ID)] = cr
	}
	for _, r := range builtInRoles {
		add(r)
	}
	for _, r := range roles {
		if b, ok := RoleByID(r.ID); ok {
			if !b.equal(r) {
				errs = append(errs, fmt.Errorf("%w %q: differs from the built-in role %q with that id", ErrDuplicateRole, r.ID, b.Name))
			}
			continue
		}
		if e := r.validate(); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if r.Type != RoleTypeCustom {
			errs = append(errs, fmt.Errorf("%w %q: type %s is reserved for Coffer's built-in roles", ErrInvalidRole, r.ID, r.Type))
			continue
		}
		if b, ok := RoleByName(r.Name); ok {
			errs = append(errs, fmt.Errorf("%w %q: name %q is the built-in role %s", ErrInvalidRole, r.ID, r.Name, b.ID))
			continue
		}
		if _, dup := s.roles[strings.ToLower(r.ID)]; dup {
			errs = append(errs, fmt.Errorf("%w %q: id used twice", ErrDuplicateRole, r.ID))
			continue
		}
		add(r)
	}

	ids := make(map[string]bool, len(assignments))
	for _, a := range assignments {
		g, err := s.compile(a)
		if err == nil && ids[a.ID] {
			err = fmt.Errorf("%w %q: id used twice", ErrInvalidAssignment, a.ID)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids[a.ID] = true
		k := principalKey{a.TenantID, a.PrincipalID}
		s.byPrincipal[k] = append(s.byPrincipal[k], g)
		s.assignments++
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// A fixed order makes the granting assignment reported by Decide deterministic.
	for _, gs := range s.byPrincipal {
		slices.SortFunc(gs, func(x, y grant) int { return cmp.Compare(x.id, y.id) })
	}
	return s, nil
}

// compile validates one assignment against the roles of s.
func (s *Snapshot) compile(a Assignment) (grant, error) {
	bad := func(sentinel error, format string, args ...any) (grant, error) {
		return grant{}, fmt.Errorf("%w: assignment %q: %s", sentinel, a.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case a.ID == "":
		return bad(ErrInvalidAssignment, "id is empty")
	case a.PrincipalID == "":
		return bad(ErrInvalidAssignment, "principal id is empty")
	case a.TenantID == "":
		return bad(ErrInvalidAssignment, "tenant id is empty")
	case !a.ExpiresAt.IsZero() && !a.NotBefore.IsZero() && !a.ExpiresAt.After(a.NotBefore):
		return bad(ErrInvalidAssignment, "expires at %v, not after its start %v", a.ExpiresAt, a.NotBefore)
	}
	role, ok := s.roles[strings.ToLower(a.RoleDefinitionID)]
	if !ok {
		return bad(ErrUnknownRole, "role %q does not exist", a.RoleDefinitionID)
	}
	sc, err := ParseScope(a.Scope)
	if err != nil {
		return bad(ErrInvalidScope, "%v", err)
	}
	if !sc.IsPlatform() && sc.Tenant() != a.TenantID {
		return bad(ErrCrossTenant, "principal of tenant %q cannot be granted scope %s of tenant %q", a.TenantID, sc, sc.Tenant())
	}
	if !slices.ContainsFunc(role.scopes, func(as Scope) bool { return as.Contains(sc) }) {
		return bad(ErrScopeNotAllowed, "role %q (%s) is assignable only at %v", role.def.ID, role.def.Name, role.def.AssignableScopes)
	}
	g := grant{
		id:        a.ID,
		roleID:    role.def.ID,
		tenant:    a.TenantID,
		scope:     sc,
		notBefore: a.NotBefore,
		expiresAt: a.ExpiresAt,
		grants:    role.grants,
	}
	// A built-in role of the other kind of container than its scope (a Managed HSM local
	// role outside a pool; a Key Vault role in one) grants nothing. The management API refuses
	// such assignments (CheckBuiltInScope), but one stored before it did, or written around
	// it, is still loaded: it is kept, so the snapshot builds, and ignored by Decide.
	if CheckBuiltInScope(role.def, sc) != nil {
		g.grants = actionSet{}
	}
	return g, nil
}

// Role returns a copy of the role definition with the given id (built-in or custom,
// compared case-insensitively), and whether there is one.
func (s *Snapshot) Role(id string) (RoleDefinition, bool) {
	r, ok := s.roles[strings.ToLower(id)]
	if !ok {
		return RoleDefinition{}, false
	}
	return r.def.clone(), true
}

// Len returns the number of role assignments in s.
func (s *Snapshot) Len() int { return s.assignments }

// activeAt reports whether g counts at now: NotBefore <= now < ExpiresAt.
func (g *grant) activeAt(now time.Time) bool {
	if !g.notBefore.IsZero() && now.Before(g.notBefore) {
		return false
	}
	return g.expiresAt.IsZero() || now.Before(g.expiresAt)
}
