package authz

import (
	"strings"
	"time"
)

// Request asks whether principal PrincipalID of tenant PrincipalTenant may perform
// Action on Scope at time Now. The api layer fills it from the authenticated token and
// the route, never from the request body. Now is required: Decide never reads a clock.
type Request struct {
	PrincipalID     string
	PrincipalTenant string
	Action          Action
	Scope           Scope
	Now             time.Time

	// Caller optionally describes the caller in a denial message, as Key Vault does
	// ("appid=…;oid=…;iss=…"). When empty, Message uses "oid=<PrincipalID>;tid=<tenant>".
	Caller string
}

// Decision is the outcome of Decide. When Allowed, AssignmentID and RoleDefinitionID name
// the assignment that granted the request (the first by id, when several do).
type Decision struct {
	Allowed          bool
	Action           Action
	Scope            Scope
	AssignmentID     string
	RoleDefinitionID string
	Reason           string // one of the Reason* constants

	PrincipalID     string
	PrincipalTenant string
	Caller          string
}

// Reasons a Decision gives. They are fixed strings so that Decide allocates nothing and
// audit records can be grouped by reason; they are for logs and audit, not for callers
// (Message does not include them, as Key Vault's 403 does not).
const (
	ReasonGranted       = "granted by role assignment"
	ReasonNoSnapshot    = "no authorization snapshot"
	ReasonInvalidScope  = "request scope is not a valid scope"
	ReasonUnknownAction = "action is not in Coffer's vocabulary"
	ReasonActionScope   = "action does not apply to a scope of this kind"
	ReasonNoPrincipal   = "request has no principal or no principal tenant"
	ReasonNoTime        = "request has no time"
	ReasonCrossTenant   = "scope belongs to another tenant than the principal's"
	ReasonNotActive     = "a role assignment grants the action but is not active at the request time"
	ReasonNoAssignment  = "no role assignment grants the action at this scope"
)

// Decide decides req against s. It denies by default and allows only when an assignment
// of the principal (in its tenant) is active at req.Now, has a scope that contains
// req.Scope, and has a role that grants req.Action (through Actions for Coffer management
// actions, DataActions for data actions, minus NotActions / NotDataActions). Whatever the
// assignments say, a principal never gets anything on a scope of another tenant. Decide
// allocates nothing.
func (s *Snapshot) Decide(req Request) Decision {
	d := Decision{
		Action:          req.Action,
		Scope:           req.Scope,
		PrincipalID:     req.PrincipalID,
		PrincipalTenant: req.PrincipalTenant,
		Caller:          req.Caller,
	}
	deny := func(reason string) Decision {
		d.Reason = reason
		return d
	}
	if s == nil {
		return deny(ReasonNoSnapshot)
	}
	if !req.Scope.IsValid() {
		return deny(ReasonInvalidScope)
	}
	idx := lookup(req.Action)
	if idx < 0 {
		return deny(ReasonUnknownAction)
	}
	if !vocabulary[idx].fam.allows(req.Scope) {
		return deny(ReasonActionScope)
	}
	if req.PrincipalID == "" || req.PrincipalTenant == "" {
		return deny(ReasonNoPrincipal)
	}
	if req.Now.IsZero() {
		return deny(ReasonNoTime)
	}
	if !req.Scope.IsPlatform() && req.Scope.Tenant() != req.PrincipalTenant {
		return deny(ReasonCrossTenant)
	}
	reason := ReasonNoAssignment
	gs := s.byPrincipal[principalKey{req.PrincipalTenant, req.PrincipalID}]
	for i := range gs {
		g := &gs[i]
		// Checked again here, not only in NewSnapshot: a grant outside the principal's
		// tenant never counts, however the Snapshot was built.
		if g.tenant != req.PrincipalTenant || !g.scope.IsPlatform() && g.scope.Tenant() != req.PrincipalTenant {
			continue
		}
		if !g.grants.has(idx) || !g.scope.Contains(req.Scope) {
			continue
		}
		if !g.activeAt(req.Now) {
			reason = ReasonNotActive
			continue
		}
		d.Allowed = true
		d.AssignmentID = g.id
		d.RoleDefinitionID = g.roleID
		d.Reason = ReasonGranted
		return d
	}
	return deny(reason)
}

// Message returns Key Vault's 403 ForbiddenByRbac message for a denied decision (the
// error.message of a response with error.code "Forbidden" and innererror.code
// "ForbiddenByRbac"; KEYVAULT-NOTES §1.9), or "" for an allowed one. The line
// "Vault: {name};location=coffer" is present only for vault scopes. The reason for the
// denial is not disclosed (DecisionReason is null, as on Key Vault).
func (d Decision) Message() string {
	if d.Allowed {
		return ""
	}
	caller := d.Caller
	if caller == "" {
		caller = "oid=" + d.PrincipalID + ";tid=" + d.PrincipalTenant
	}
	var b strings.Builder
	b.WriteString("Caller is not authorized to perform action on resource.\r\n")
	b.WriteString("If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n")
	b.WriteString("Caller: " + caller + "\r\n")
	b.WriteString("Action: '" + string(d.Action) + "'\r\n")
	b.WriteString("Resource: '" + d.Scope.String() + "'\r\n")
	b.WriteString("Assignment: (not found)\r\n")
	b.WriteString("DenyAssignmentId: null\r\n")
	b.WriteString("DecisionReason: null \r\n")
	if v := d.Scope.Vault(); v != "" {
		b.WriteString("Vault: " + v + ";location=coffer\r\n")
	}
	return b.String()
}
