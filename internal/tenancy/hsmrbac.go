package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage"
)

// ErrInUse is returned when a role definition that an assignment still uses is deleted.
var ErrInUse = errors.New("in use")

// PutRoleDefinition creates or replaces the custom role r.ID of tenantID (Managed HSM's
// createOrUpdate). A replaced role must still admit every assignment that uses it; the
// check is the authorizer's own (authz.NewSnapshot over the tenant's roles and assignments).
// When the role is new, onCreate (if not nil) sees the tenant's custom roles in the same
// transaction, before r is added, and its error is returned as is with nothing written (a
// count limit; onCreate must be pure); replacing a role does not call it.
func (s *Store) PutRoleDefinition(ctx context.Context, tenantID string, r authz.RoleDefinition, onCreate func(existing []authz.RoleDefinition) error) (authz.RoleDefinition, bool, error) {
	if !IsUUID(r.ID) {
		return r, false, fmt.Errorf("%w: role definition name %q must be a lower-case UUID", ErrInvalidName, r.ID)
	}
	r.Type = authz.RoleTypeCustom
	for _, sc := range r.AssignableScopes {
		if !strings.HasPrefix(sc+"/", "/tenants/"+tenantID+"/") {
			return r, false, fmt.Errorf("%w: assignable scope %q is outside tenant %s", ErrInvalidName, sc, tenantID)
		}
	}
	created := false
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		ok, err := exists(ctx, tx, roleDefKey(tenantID, r.ID))
		if err != nil {
			return err
		}
		if !ok {
			created = true
			if err := reserveID(ctx, tx, roleDefIDKey(r.ID), tenantID); err != nil {
				return err
			}
		}
		roles, err := roleDefs(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if created && onCreate != nil {
			if err := onCreate(roles); err != nil {
				return err
			}
		}
		roles = replaceRole(roles, r)
		assignments, err := assignmentsIn(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if _, err := authz.NewSnapshot(roles, assignments); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidName, err)
		}
		return putJSON(ctx, tx, roleDefKey(tenantID, r.ID), r)
	})
	if err == nil {
		s.gen.Add(1)
	}
	return r, created, err
}

// DeleteRoleDefinition removes the custom role id of tenantID and returns it; a role that
// an assignment uses is ErrInUse.
func (s *Store) DeleteRoleDefinition(ctx context.Context, tenantID, id string) (authz.RoleDefinition, error) {
	var r authz.RoleDefinition
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if err := getJSON(ctx, tx, roleDefKey(tenantID, id), &r); err != nil {
			return fmt.Errorf("role definition %s: %w", id, err)
		}
		assignments, err := assignmentsIn(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		for _, a := range assignments {
			if strings.EqualFold(a.RoleDefinitionID, id) {
				return fmt.Errorf("role definition %s: assignment %s uses it: %w", id, a.ID, ErrInUse)
			}
		}
		if err := tx.Delete(ctx, roleDefIDKey(id)); err != nil {
			return err
		}
		return tx.Delete(ctx, roleDefKey(tenantID, id))
	})
	if err == nil {
		s.gen.Add(1)
	}
	return r, err
}

func replaceRole(roles []authz.RoleDefinition, r authz.RoleDefinition) []authz.RoleDefinition {
	out := make([]authz.RoleDefinition, 0, len(roles)+1)
	for _, o := range roles {
		if !strings.EqualFold(o.ID, r.ID) {
			out = append(out, o)
		}
	}
	return append(out, r)
}

func assignmentsIn(ctx context.Context, r storage.Reader, tenantID string) ([]authz.Assignment, error) {
	var out []authz.Assignment
	err := eachKey(ctx, r, "tenants/"+tenantID+"/roleassignments/", func(key string) error {
		var a authz.Assignment
		if err := getJSON(ctx, r, key, &a); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}
