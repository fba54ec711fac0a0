package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage"
)

func assignmentKey(tenantID, id string) string {
	return "tenants/" + tenantID + "/roleassignments/" + id
}

func roleDefKey(tenantID, id string) string {
	return "tenants/" + tenantID + "/roledefinitions/" + id
}

// Role assignment and custom role ids are unique across every tenant: the authorization
// snapshot spans all tenants and refuses duplicates, so one tenant reusing an id must not be
// able to break authorization for the others. These global index keys reserve them.
func assignmentIDKey(id string) string { return "ids/roleassignments/" + id }
func roleDefIDKey(id string) string    { return "ids/roledefinitions/" + id }

// reserveID fails with ErrExists if id is taken by any tenant, else records it for tenantID.
func reserveID(ctx context.Context, tx storage.Tx, key, tenantID string) error {
	if ok, err := exists(ctx, tx, key); err != nil || ok {
		return errors.Join(err, fmt.Errorf("id %s: %w", key[strings.LastIndexByte(key, '/')+1:], ErrExists))
	}
	return tx.Put(ctx, key, []byte(tenantID))
}

// Generation returns a number that changes whenever RBAC data changes in this Store.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// CreateRoleAssignment stores an assignment after checking it against the role definitions
// (built-in and the tenant's custom roles) exactly as the authorizer will. An empty ID gets a
// fresh UUID.
func (s *Store) CreateRoleAssignment(ctx context.Context, a authz.Assignment) (authz.Assignment, error) {
	return s.CreateRoleAssignmentIf(ctx, a, nil)
}

// CreateRoleAssignmentIf is CreateRoleAssignment with a condition: check (if not nil) sees
// the tenant's assignments in the same transaction, before a is added, and its error is
// returned as is with nothing written. It is how a caller enforces a count limit that
// concurrent creates cannot overshoot; check must be pure (a transaction may be retried). An ID that is taken is ErrExists before check runs.
func (s *Store) CreateRoleAssignmentIf(ctx context.Context, a authz.Assignment, check func(existing []authz.Assignment) error) (authz.Assignment, error) {
	if a.ID == "" {
		a.ID = NewUUID()
	}
	if !IsUUID(a.ID) {
		return a, fmt.Errorf("%w: role assignment name %q must be a UUID", ErrInvalidName, a.ID)
	}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(a.TenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", a.TenantID, ErrNotFound))
		}
		if ok, err := exists(ctx, tx, principalKey(a.TenantID, a.PrincipalID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("principal %s in tenant %s: %w", a.PrincipalID, a.TenantID, ErrNotFound))
		}
		if err := reserveID(ctx, tx, assignmentIDKey(a.ID), a.TenantID); err != nil {
			return err
		}
		roles, err := roleDefs(ctx, tx, a.TenantID)
		if err != nil {
			return err
		}
		if _, err := authz.NewSnapshot(roles, []authz.Assignment{a}); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidName, err)
		}
		if check != nil {
			existing, err := assignmentsIn(ctx, tx, a.TenantID)
			if err != nil {
				return err
			}
			if err := check(existing); err != nil {
				return err
			}
		}
		return putJSON(ctx, tx, assignmentKey(a.TenantID, a.ID), a)
	})
	if err == nil {
		s.gen.Add(1)
	}
	return a, err
}

// DeleteRoleAssignment removes an assignment of tenantID and returns it.
func (s *Store) DeleteRoleAssignment(ctx context.Context, tenantID, id string) (authz.Assignment, error) {
	var a authz.Assignment
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if err := getJSON(ctx, tx, assignmentKey(tenantID, id), &a); err != nil {
			return fmt.Errorf("role assignment %s: %w", id, err)
		}
		if err := tx.Delete(ctx, assignmentIDKey(id)); err != nil {
			return err
		}
		return tx.Delete(ctx, assignmentKey(tenantID, id))
	})
	if err == nil {
		s.gen.Add(1)
	}
	return a, err
}

// RoleAssignments lists the assignments of one tenant.
func (s *Store) RoleAssignments(ctx context.Context, tenantID string) ([]authz.Assignment, error) {
	return assignmentsIn(ctx, s.db, tenantID)
}

// CreateRoleDefinition stores a custom role of tenantID (checked by authz).
func (s *Store) CreateRoleDefinition(ctx context.Context, tenantID string, r authz.RoleDefinition) (authz.RoleDefinition, error) {
	return s.CreateRoleDefinitionIf(ctx, tenantID, r, nil)
}

// CreateRoleDefinitionIf is CreateRoleDefinition with a condition, as CreateRoleAssignmentIf:
// check (if not nil) sees the tenant's custom roles in the same transaction, before r is
// added, and its error is returned as is with nothing written; check must be pure. An ID that
// is taken is ErrExists before check runs.
func (s *Store) CreateRoleDefinitionIf(ctx context.Context, tenantID string, r authz.RoleDefinition, check func(existing []authz.RoleDefinition) error) (authz.RoleDefinition, error) {
	if r.ID == "" {
		r.ID = NewUUID()
	}
	r.Type = authz.RoleTypeCustom
	if len(r.AssignableScopes) == 0 {
		r.AssignableScopes = []string{"/tenants/" + tenantID}
	}
	for _, sc := range r.AssignableScopes {
		if !strings.HasPrefix(sc+"/", "/tenants/"+tenantID+"/") {
			return r, fmt.Errorf("%w: assignable scope %q is outside tenant %s", ErrInvalidName, sc, tenantID)
		}
	}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		if err := reserveID(ctx, tx, roleDefIDKey(r.ID), tenantID); err != nil {
			return err
		}
		roles, err := roleDefs(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if _, err := authz.NewSnapshot(append(roles, r), nil); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidName, err)
		}
		if check != nil {
			if err := check(roles); err != nil {
				return err
			}
		}
		return putJSON(ctx, tx, roleDefKey(tenantID, r.ID), r)
	})
	if err == nil {
		s.gen.Add(1)
	}
	return r, err
}

func roleDefs(ctx context.Context, r storage.Reader, tenantID string) ([]authz.RoleDefinition, error) {
	var out []authz.RoleDefinition
	err := eachKey(ctx, r, "tenants/"+tenantID+"/roledefinitions/", func(key string) error {
		b, err := r.Get(ctx, key)
		if err != nil {
			return err
		}
		var d authz.RoleDefinition
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// RoleDefinitions lists the custom roles of one tenant.
func (s *Store) RoleDefinitions(ctx context.Context, tenantID string) ([]authz.RoleDefinition, error) {
	return roleDefs(ctx, s.db, tenantID)
}

// Snapshot builds the authorization snapshot of every tenant's roles and assignments.
func (s *Store) Snapshot(ctx context.Context) (*authz.Snapshot, error) {
	tenants, err := s.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	var roles []authz.RoleDefinition
	var assignments []authz.Assignment
	for _, t := range tenants {
		r, err := roleDefs(ctx, s.db, t.ID)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r...)
		a, err := s.RoleAssignments(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		assignments = append(assignments, a...)
	}
	return authz.NewSnapshot(roles, assignments)
}
