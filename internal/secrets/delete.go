package secrets

import (
	"context"
	"time"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Delete soft-deletes a secret with all its versions (DeleteSecret) and returns its latest
// version without the value. The secret keeps its name reserved until it is recovered or
// purged; it is purged by RunDue after the vault's retention (fixed now: a later change of
// the vault's retention does not move it).
func (s *Service) Delete(ctx context.Context, v tenancy.Vault, base, name string) (DeletedSecretBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedSecretBundle{}, err
	}
	now := s.clock()
	var out DeletedSecretBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, latest, err := softDelete(ctx, tx, sc, lc, name, now, false)
		if err != nil {
			return err
		}
		out = sc.deletedBundle(meta, latest)
		return nil
	})
	if err != nil {
		return DeletedSecretBundle{}, err
	}
	return out, nil
}

// softDelete marks a live secret deleted in tx and schedules its purge. Only a certificate's
// own deletion (managed true) may delete a certificate-backed secret.
func softDelete(ctx context.Context, tx storage.Tx, sc scope, lc, name string, now time.Time, managed bool) (*secretRecord, *versionRecord, error) {
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
	entry := scheduleEntry{TenantID: sc.vault.TenantID, Vault: sc.vault.Name, Name: lc}
	if err := sc.secrets().SoftDelete(ctx, tx, lc, meta, now, sc.retention(), entry); err != nil {
		return nil, nil, err
	}
	if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
		return nil, nil, err
	}
	return meta, latest, nil
}

// GetDeleted returns a soft-deleted secret's latest version without its value
// (GetDeletedSecret); a secret that is not deleted is ErrSecretNotFound.
func (s *Service) GetDeleted(ctx context.Context, v tenancy.Vault, base, name string) (DeletedSecretBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedSecretBundle{}, err
	}
	meta, latest, err := sc.secrets().ReadDeleted(ctx, s.store, lc, name)
	if err != nil {
		return DeletedSecretBundle{}, err
	}
	return sc.deletedBundle(meta, latest), nil
}

// ListDeleted returns one page of the vault's soft-deleted secrets (GetDeletedSecrets).
func (s *Service) ListDeleted(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[DeletedSecretItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[DeletedSecretItem]{}, err
	}
	return page(records.ListDeleted(ctx, s.store, sc.secrets(), opts.MaxResults, opts.SkipToken, sc.deletedItem))
}

// Recover restores a soft-deleted secret with all its versions (RecoverDeletedSecret) and
// returns its latest version without the value (reading it needs Get).
func (s *Service) Recover(ctx context.Context, v tenancy.Vault, base, name string) (SecretBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return SecretBundle{}, err
	}
	var out SecretBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, latest, err := recoverSecret(ctx, tx, sc, lc, name, false)
		if err != nil {
			return err
		}
		out = sc.bundle(meta, latest, false)
		return nil
	})
	if err != nil {
		return SecretBundle{}, err
	}
	return out, nil
}

// recoverSecret makes a deleted secret live again in tx. Only a certificate's own recovery
// (managed true) may recover a certificate-backed secret.
func recoverSecret(ctx context.Context, tx storage.Tx, sc scope, lc, name string, managed bool) (*secretRecord, *versionRecord, error) {
	meta, latest, err := sc.secrets().ReadRecoverable(ctx, tx, lc, name)
	if err != nil {
		return nil, nil, err
	}
	if meta.Managed && !managed {
		return nil, nil, managedRefused("recover", meta.Name)
	}
	if err := sc.secrets().Recover(ctx, tx, lc, meta); err != nil {
		return nil, nil, err
	}
	if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
		return nil, nil, err
	}
	return meta, latest, nil
}

// Purge permanently removes a soft-deleted secret and every version (PurgeDeletedSecret).
// While the vault has purge protection it is refused with ErrPurgeProtected until the
// scheduled purge date, when RunDue purges the secret itself.
func (s *Service) Purge(ctx context.Context, v tenancy.Vault, base, name string) error {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return err
	}
	return s.purge(ctx, sc, lc, name, s.clock(), "")
}

// purge removes a deleted secret in one transaction. A user purge (index "") honours purge
// protection; the scheduler's (index: the purge entry it runs) requires the scheduled date
// to have passed and index to still be the secret's purge entry, and reports
// records.ErrStale otherwise (records.ReadPurgeable).
func (s *Service) purge(ctx context.Context, sc scope, lc, name string, now time.Time, index string) error {
	return s.store.Txn(ctx, func(tx storage.Tx) error {
		return s.purgeSecret(ctx, tx, sc, lc, name, now, index, false)
	})
}

// purgeSecret removes a deleted secret's records in tx. See purge for index; only a
// certificate's own purge (managed true) may purge a certificate-backed secret. The purge
// hooks' gate may hold it (records.ReadPurgeable).
func (s *Service) purgeSecret(ctx context.Context, tx storage.Tx, sc scope, lc, name string, now time.Time, index string, managed bool) error {
	meta, err := sc.secrets().ReadPurgeable(ctx, tx, lc, name, now, index, sc.vault.PurgeProtection, s.hooks.Gate, func(m *secretRecord) error {
		if m.Managed && !managed {
			return managedRefused("purge", m.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return sc.secrets().Remove(ctx, tx, lc, meta)
}
