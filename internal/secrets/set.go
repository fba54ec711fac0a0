package secrets

import (
	"context"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Set stores a value as a new version of a secret, creating the secret if the name is free
// (SetSecret), and returns the new version with its value. The version is enabled unless the
// attributes say otherwise. A soft-deleted name is refused with ErrDeletedButRecoverable.
func (s *Service) Set(ctx context.Context, v tenancy.Vault, base, name string, p SetParams) (SecretBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return SecretBundle{}, err
	}
	if p.Value == nil {
		return SecretBundle{}, badParam("The secret value is missing: a set request needs a value.")
	}
	if err := checkValue(string(*p.Value)); err != nil {
		return SecretBundle{}, err
	}
	if err := checkContentType(p.ContentType); err != nil {
		return SecretBundle{}, err
	}
	if err := checkTags(p.Tags); err != nil {
		return SecretBundle{}, err
	}
	now := s.clock().Unix()
	rec := versionRecord{
		Version:     records.NewVersion(),
		Value:       string(*p.Value),
		ContentType: p.ContentType,
		Enabled:     true,
		Created:     now,
		Updated:     now,
		Tags:        copyTags(p.Tags),
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			rec.Enabled = *a.Enabled
		}
		rec.NotBefore, rec.Expires = cloneI64(a.NotBefore), cloneI64(a.Expires)
	}
	if err := checkWindow(rec.NotBefore, rec.Expires); err != nil {
		return SecretBundle{}, err
	}
	var out SecretBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		var meta secretRecord
		found, err := records.Get(ctx, tx, sc.metaPath(lc), &meta)
		if err != nil {
			return err
		}
		if found && meta.Deleted != nil {
			return lifecycle.Deleted(meta.Name)
		}
		if found && meta.Managed {
			return managedRefused("set", meta.Name)
		}
		if !found {
			meta = secretRecord{Name: name}
		}
		if err := records.Put(ctx, tx, sc.versionPath(lc, rec.Version), &rec); err != nil {
			return err
		}
		meta.Latest = rec.Version
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), &meta); err != nil {
			return err
		}
		out = sc.bundle(&meta, &rec, true)
		return nil
	})
	if err != nil {
		return SecretBundle{}, err
	}
	return out, nil
}
