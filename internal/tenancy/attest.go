package tenancy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/storage"
)

// AttestationProvider is a tenant's attestation service instance, served at
// https://<name>.attest.<dns-suffix>. Its policy (internal/attest's Policy, validated by the
// management API) says which evidence it turns into tokens. Names are global host names.
type AttestationProvider struct {
	Name     string          `json:"name"`
	TenantID string          `json:"tenantId"`
	Policy   json.RawMessage `json:"policy"`
	Created  time.Time       `json:"created"`
	Updated  time.Time       `json:"updated"`
}

func attestKey(name string) string { return "attestation/providers/" + normalize(name) }

func tenantAttestKey(tenantID, name string) string {
	return "tenants/" + tenantID + "/attestation/" + normalize(name)
}

// PutAttestationProvider creates the provider called name for tenantID, or replaces its
// policy if the tenant already owns it. created reports which. A name another tenant owns is
// ErrExists.
func (s *Store) PutAttestationProvider(ctx context.Context, tenantID, name string, policy json.RawMessage) (p AttestationProvider, created bool, err error) {
	if !names.Store(name) {
		return p, false, fmt.Errorf("%w: attestation provider name %q must be 1-24 letters, digits and '-', start with a letter and not end with '-'", ErrInvalidName, name)
	}
	now := s.now().UTC()
	err = s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		var old AttestationProvider
		switch err := getJSON(ctx, tx, attestKey(name), &old); {
		case err == nil && old.TenantID != tenantID:
			return fmt.Errorf("attestation provider %s: %w", name, ErrExists)
		case err == nil:
			p, created = old, false
		case errors.Is(err, ErrNotFound):
			p = AttestationProvider{Name: normalize(name), TenantID: tenantID, Created: now}
			created = true
			if err := tx.Put(ctx, tenantAttestKey(tenantID, name), nil); err != nil {
				return err
			}
		default:
			return err
		}
		p.Policy, p.Updated = policy, now
		return putJSON(ctx, tx, attestKey(name), p)
	})
	return p, created, err
}

// AttestationProvider returns the provider called name (any tenant's: the data plane resolves
// providers by host name; callers confine management reads to the owner).
func (s *Store) AttestationProvider(ctx context.Context, name string) (AttestationProvider, error) {
	var p AttestationProvider
	if !names.Store(name) {
		return p, ErrNotFound
	}
	err := getJSON(ctx, s.db, attestKey(name), &p)
	return p, err
}

// AttestationProviders lists a tenant's providers.
func (s *Store) AttestationProviders(ctx context.Context, tenantID string) ([]AttestationProvider, error) {
	prefix := "tenants/" + tenantID + "/attestation/"
	var out []AttestationProvider
	err := eachKey(ctx, s.db, prefix, func(key string) error {
		p, err := s.AttestationProvider(ctx, key[len(prefix):])
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}
