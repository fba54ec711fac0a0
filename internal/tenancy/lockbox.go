package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage"
)

// Customer lockbox: the platform operator has no data access. To act inside a tenant it files
// an access request (scope, role, duration, justification); a tenant administrator approves
// or denies it. Approval creates a guest service principal of the tenant for the operator and
// a role assignment limited to exactly the approved scope and duration; it expires on its own
// and can be revoked early. Every transition is kept on the request record (and audited by
// the caller).

// AccessRequest states.
const (
	AccessPending  = "Pending"
	AccessApproved = "Approved"
	AccessDenied   = "Denied"
	AccessRevoked  = "Revoked"
)

// MaxAccessDuration bounds a just-in-time grant.
const MaxAccessDuration = 8 * time.Hour

// ErrAccessState is returned for a transition the request's state does not allow.
var ErrAccessState = errors.New("the access request is not in a state that allows this")

// AccessRequest is an operator's request for time-bound access to one tenant resource.
type AccessRequest struct {
	ID               string        `json:"id"`
	TenantID         string        `json:"tenantId"`
	Scope            string        `json:"scope"`
	RoleDefinitionID string        `json:"roleDefinitionId"`
	Duration         time.Duration `json:"duration"`
	Justification    string        `json:"justification"`
	RequestedBy      string        `json:"requestedBy"`
	State            string        `json:"state"`
	Created          time.Time     `json:"created"`
	DecidedBy        string        `json:"decidedBy,omitempty"`
	Decided          time.Time     `json:"decided,omitzero"`
	ExpiresAt        time.Time     `json:"expiresAt,omitzero"`
	PrincipalID      string        `json:"principalId,omitempty"`
	AssignmentID     string        `json:"assignmentId,omitempty"`
	// credential is handed to the operator once, by ClaimAccessCredential.
	Credential string `json:"credential,omitempty"`
}

func accessKey(tenantID, id string) string { return "tenants/" + tenantID + "/accessrequests/" + id }

// RequestAccess files an access request by the operator requestedBy.
func (s *Store) RequestAccess(ctx context.Context, tenantID, scope, roleID string, d time.Duration, justification, requestedBy string) (AccessRequest, error) {
	if d <= 0 || d > MaxAccessDuration {
		return AccessRequest{}, fmt.Errorf("%w: duration must be between 1s and %s", ErrInvalidName, MaxAccessDuration)
	}
	if len(justification) < 10 || len(justification) > 1000 {
		return AccessRequest{}, fmt.Errorf("%w: justification must be 10-1000 characters", ErrInvalidName)
	}
	sc, err := authz.ParseScope(scope)
	if err != nil || sc.IsPlatform() || sc.Tenant() != tenantID {
		return AccessRequest{}, fmt.Errorf("%w: scope %q is not a scope of tenant %s", ErrInvalidName, scope, tenantID)
	}
	if _, ok := authz.RoleByID(roleID); !ok {
		return AccessRequest{}, fmt.Errorf("%w: role %q is not a built-in role", ErrInvalidName, roleID)
	}
	ar := AccessRequest{ID: NewUUID(), TenantID: tenantID, Scope: scope, RoleDefinitionID: roleID, Duration: d,
		Justification: justification, RequestedBy: requestedBy, State: AccessPending, Created: s.now().UTC()}
	err = s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		return putJSON(ctx, tx, accessKey(tenantID, ar.ID), ar)
	})
	return ar, err
}

// AccessRequest returns one request (without its credential).
func (s *Store) AccessRequest(ctx context.Context, tenantID, id string) (AccessRequest, error) {
	var ar AccessRequest
	if !IsUUID(id) {
		return ar, ErrNotFound
	}
	err := getJSON(ctx, s.db, accessKey(tenantID, id), &ar)
	ar.Credential = ""
	return ar, err
}

// AccessRequests lists the tenant's requests (without credentials).
func (s *Store) AccessRequests(ctx context.Context, tenantID string) ([]AccessRequest, error) {
	var out []AccessRequest
	err := eachKey(ctx, s.db, "tenants/"+tenantID+"/accessrequests/", func(key string) error {
		var ar AccessRequest
		if err := getJSON(ctx, s.db, key, &ar); err != nil {
			return err
		}
		ar.Credential = ""
		out = append(out, ar)
		return nil
	})
	return out, err
}

// DecideAccess approves or denies a pending request; approver is the tenant administrator's
// object id and must not be the requester. Approval creates the guest principal and the
// time-bound role assignment.
func (s *Store) DecideAccess(ctx context.Context, tenantID, id, approver string, approve bool) (AccessRequest, error) {
	var ar AccessRequest
	now := s.now().UTC()
	var secret string
	var guest Principal
	if approve {
		guest = Principal{ObjectID: NewUUID(), AppID: NewUUID(), TenantID: tenantID, Type: ServicePrincipal, DisplayName: "platform operator (just-in-time " + id + ")", Created: now}
		var cred SecretCred
		secret, cred = s.newSecretCred()
		cred.Expires = now.Add(MaxAccessDuration)
		guest.Secrets = []SecretCred{cred}
	}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if err := getJSON(ctx, tx, accessKey(tenantID, id), &ar); err != nil {
			return fmt.Errorf("access request %s: %w", id, err)
		}
		if ar.State != AccessPending {
			return fmt.Errorf("%w: it is %s", ErrAccessState, ar.State)
		}
		if approver == ar.RequestedBy {
			return fmt.Errorf("%w: the requester cannot approve its own request", ErrAccessState)
		}
		ar.DecidedBy, ar.Decided = approver, now
		if !approve {
			ar.State = AccessDenied
			return putJSON(ctx, tx, accessKey(tenantID, id), ar)
		}
		a := authz.Assignment{ID: NewUUID(), PrincipalID: guest.ObjectID, TenantID: tenantID, RoleDefinitionID: ar.RoleDefinitionID,
			Scope: ar.Scope, NotBefore: now, ExpiresAt: now.Add(ar.Duration)}
		roles, err := roleDefs(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if _, err := authz.NewSnapshot(roles, []authz.Assignment{a}); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidName, err)
		}
		// Inside a managed HSM pool the guest's assignment counts against Managed HSM's
		// limits like any other (authz.LimitError; the request stays pending).
		existing, err := assignmentsIn(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if err := authz.CheckHSMAssignmentLimit(existing, a.Scope); err != nil {
			return err
		}
		if err := reserveID(ctx, tx, assignmentIDKey(a.ID), tenantID); err != nil {
			return err
		}
		ar.State, ar.ExpiresAt, ar.PrincipalID, ar.AssignmentID = AccessApproved, a.ExpiresAt, guest.ObjectID, a.ID
		ar.Credential = guest.AppID + ":" + secret
		for _, kv := range []struct {
			k string
			v any
		}{{principalKey(tenantID, guest.ObjectID), guest}, {appKey(guest.AppID), appRef{TenantID: tenantID, ObjectID: guest.ObjectID}},
			{assignmentKey(tenantID, a.ID), a}, {accessKey(tenantID, id), ar}} {
			if err := putJSON(ctx, tx, kv.k, kv.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && approve {
		s.gen.Add(1)
	}
	ar.Credential = ""
	return ar, err
}

// ClaimAccessCredential hands the requester (once) the guest principal's client id and secret
// as "clientId:secret".
func (s *Store) ClaimAccessCredential(ctx context.Context, tenantID, id, requester string) (string, error) {
	var cred string
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		var ar AccessRequest
		if err := getJSON(ctx, tx, accessKey(tenantID, id), &ar); err != nil {
			return fmt.Errorf("access request %s: %w", id, err)
		}
		if ar.State != AccessApproved || ar.RequestedBy != requester || ar.Credential == "" {
			return fmt.Errorf("%w: no unclaimed credential for this requester", ErrAccessState)
		}
		cred, ar.Credential = ar.Credential, ""
		return putJSON(ctx, tx, accessKey(tenantID, id), ar)
	})
	return cred, err
}

// RevokeAccess ends an approved grant early: the assignment and the guest principal go.
func (s *Store) RevokeAccess(ctx context.Context, tenantID, id, by string) (AccessRequest, error) {
	var ar AccessRequest
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if err := getJSON(ctx, tx, accessKey(tenantID, id), &ar); err != nil {
			return fmt.Errorf("access request %s: %w", id, err)
		}
		if ar.State != AccessApproved {
			return fmt.Errorf("%w: it is %s", ErrAccessState, ar.State)
		}
		var guest Principal
		if err := getJSON(ctx, tx, principalKey(tenantID, ar.PrincipalID), &guest); err == nil {
			if err := tx.Delete(ctx, appKey(guest.AppID)); err != nil {
				return err
			}
		}
		for _, k := range []string{assignmentKey(tenantID, ar.AssignmentID), assignmentIDKey(ar.AssignmentID), principalKey(tenantID, ar.PrincipalID)} {
			if err := tx.Delete(ctx, k); err != nil {
				return err
			}
		}
		ar.State, ar.DecidedBy, ar.Credential = AccessRevoked, by, ""
		return putJSON(ctx, tx, accessKey(tenantID, id), ar)
	})
	if err == nil {
		s.gen.Add(1)
	}
	return ar, err
}
