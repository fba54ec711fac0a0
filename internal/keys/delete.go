package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// isNotFound reports whether err is an ErrKeyNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrKeyNotFound) }

// Delete soft-deletes a key with all its versions (DeleteKey). The key keeps its name
// reserved until it is recovered or purged; it is purged by the scheduler after the
// vault's retention (fixed now: a later change of the vault's retention does not move it).
func (s *Service) Delete(ctx context.Context, v tenancy.Vault, base, name string) (DeletedKeyBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedKeyBundle{}, err
	}
	now := s.clock()
	var out DeletedKeyBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, latest, err := softDelete(ctx, tx, sc, lc, name, now, false)
		if err != nil {
			return err
		}
		out = sc.deletedBundle(meta, latest)
		return nil
	})
	return out, err
}

// softDelete marks a live key deleted in tx and schedules its purge. Only a certificate's
// own deletion (managed true) may delete a certificate-backed key.
func softDelete(ctx context.Context, tx storage.Tx, sc scope, lc, name string, now time.Time, managed bool) (*keyRecord, *versionRecord, error) {
	meta, err := readLive(ctx, tx, sc, lc, name)
	if err != nil {
		return nil, nil, err
	}
	if meta.Managed && !managed {
		return nil, nil, managedRefused("delete", meta.Name)
	}
	latest, err := readVersion(ctx, tx, sc, lc, meta, "")
	if err != nil {
		return nil, nil, err
	}
	entry := scheduleEntry{TenantID: sc.vault.TenantID, Kind: sc.vault.Kind, Vault: sc.vault.Name, Name: lc}
	if err := sc.keys().SoftDelete(ctx, tx, lc, meta, now, sc.retention(), entry); err != nil {
		return nil, nil, err
	}
	if err := reschedule(ctx, tx, sc, lc, meta, latest); err != nil { // drops the rotation
		return nil, nil, err
	}
	if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
		return nil, nil, err
	}
	return meta, latest, nil
}

// GetDeleted returns a soft-deleted key (GetDeletedKey); a key that is not deleted is
// ErrKeyNotFound.
func (s *Service) GetDeleted(ctx context.Context, v tenancy.Vault, base, name string) (DeletedKeyBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedKeyBundle{}, err
	}
	meta, latest, err := sc.keys().ReadDeleted(ctx, s.store, lc, name)
	if err != nil {
		return DeletedKeyBundle{}, err
	}
	return sc.deletedBundle(meta, latest), nil
}

// ListDeleted returns one page of the vault's soft-deleted keys (GetDeletedKeys).
func (s *Service) ListDeleted(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[DeletedKeyItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[DeletedKeyItem]{}, err
	}
	return page(records.ListDeleted(ctx, s.store, sc.keys(), opts.MaxResults, opts.SkipToken, sc.deletedItem))
}

// Recover restores a soft-deleted key with all its versions (RecoverDeletedKey) and returns
// its latest version. Its rotation schedule resumes (an overdue rotation runs at the next
// RunDue).
func (s *Service) Recover(ctx context.Context, v tenancy.Vault, base, name string) (KeyBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return KeyBundle{}, err
	}
	var out KeyBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, latest, err := recoverKey(ctx, tx, sc, lc, name, false)
		if err != nil {
			return err
		}
		out = sc.bundle(meta, latest)
		return nil
	})
	return out, err
}

// recoverKey makes a deleted key live again in tx. Only a certificate's own recovery
// (managed true) may recover a certificate-backed key.
func recoverKey(ctx context.Context, tx storage.Tx, sc scope, lc, name string, managed bool) (*keyRecord, *versionRecord, error) {
	meta, latest, err := sc.keys().ReadRecoverable(ctx, tx, lc, name)
	if err != nil {
		return nil, nil, err
	}
	if meta.Managed && !managed {
		return nil, nil, managedRefused("recover", meta.Name)
	}
	if err := sc.keys().Recover(ctx, tx, lc, meta); err != nil {
		return nil, nil, err
	}
	if err := reschedule(ctx, tx, sc, lc, meta, latest); err != nil {
		return nil, nil, err
	}
	if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
		return nil, nil, err
	}
	return meta, latest, nil
}

// Purge permanently removes a soft-deleted key and every version, and destroys their
// material in the provider (PurgeDeletedKey). While the vault has purge protection it is
// refused with ErrPurgeProtected until the scheduled purge date, when the scheduler purges
// the key itself.
func (s *Service) Purge(ctx context.Context, v tenancy.Vault, base, name string) error {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return err
	}
	_, err = s.purge(ctx, sc, lc, name, s.clock(), "")
	return err
}

// purge removes a deleted key in one transaction and then destroys the provider material of
// its versions. A user purge (index "") honours purge protection; the scheduler's (index:
// the purge entry it runs) requires the scheduled date to have passed and index to still be
// the key's purge entry, and reports records.ErrStale otherwise (records.ReadPurgeable). It
// returns the number of provider objects destroyed.
func (s *Service) purge(ctx context.Context, sc scope, lc, name string, now time.Time, index string) (int, error) {
	var handles [][]byte
	err := s.store.Txn(ctx, func(tx storage.Tx) error {
		var err error
		handles, err = s.purgeKey(ctx, tx, sc, lc, name, now, index, false)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(handles), s.destroy(ctx, handles)
}

// purgeKey removes a deleted key's records in tx and returns the provider handles to
// destroy once tx has committed. See purge for index; only a certificate's own purge
// (managed true) may purge a certificate-backed key. The purge hooks' gate may hold it
// (records.ReadPurgeable).
func (s *Service) purgeKey(ctx context.Context, tx storage.Tx, sc scope, lc, name string, now time.Time, index string, managed bool) ([][]byte, error) {
	meta, err := sc.keys().ReadPurgeable(ctx, tx, lc, name, now, index, sc.vault.PurgeProtection, s.hooks.Gate, func(m *keyRecord) error {
		if m.Managed && !managed {
			return managedRefused("purge", m.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removeKey(ctx, tx, sc, lc, meta)
}

// destroy drops purged versions from the key cache and destroys their provider material.
func (s *Service) destroy(ctx context.Context, handles [][]byte) error {
	var errs []error
	for _, h := range handles {
		s.keys.drop(h)
		if err := s.prov.Destroy(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("purge: the key's records are gone but %d of %d versions could not be destroyed in the provider: %w", len(errs), len(handles), errors.Join(errs...))
	}
	return nil
}

// removeKey deletes every record of a key and returns the provider handles of its versions,
// each once (versions of a certificate renewed with reuse_key share one).
func removeKey(ctx context.Context, tx storage.Tx, sc scope, lc string, meta *keyRecord) ([][]byte, error) {
	versions, err := records.ReadAll[versionRecord](ctx, tx, sc.versionsPrefix(lc))
	if err != nil {
		return nil, err
	}
	var handles [][]byte
	seen := map[string]bool{}
	for _, ver := range versions {
		if len(ver.Handle) > 0 && !seen[string(ver.Handle)] {
			seen[string(ver.Handle)] = true
			handles = append(handles, ver.Handle)
		}
	}
	return handles, sc.keys().Remove(ctx, tx, lc, meta, meta.RotateIndex)
}
