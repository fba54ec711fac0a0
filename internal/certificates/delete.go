package certificates

import (
	"context"

	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Delete soft-deletes a certificate with all its versions, its key and its secret
// (DeleteCertificate). The name stays reserved until it is recovered or purged; RunDue
// purges it after the vault's retention.
func (s *Service) Delete(ctx context.Context, v tenancy.Vault, base, name string) (DeletedCertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedCertificateBundle{}, err
	}
	now := s.clock()
	var out DeletedCertificateBundle
	var dropped []byte
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		latest, err := readVersion(ctx, tx, sc, lc, meta, "")
		if err != nil {
			return err
		}
		entry := scheduleEntry{TenantID: sc.vault.TenantID, Vault: sc.vault.Name, Name: lc}
		if err := sc.certs().SoftDelete(ctx, tx, lc, meta, now, sc.retention(), entry); err != nil {
			return err
		}
		dropped = dropPendingKey(meta.Pending)
		meta.Pending = nil
		if err := s.keys.DeleteManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		if err := s.secrets.DeleteManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		if err := scheduleRenewal(ctx, tx, sc, lc, meta, latest); err != nil { // drops it
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = sc.deletedBundle(meta, latest)
		return nil
	})
	if err == nil {
		s.discardPending(ctx, sc, name, dropped)
	}
	return out, err
}

// GetDeleted returns a soft-deleted certificate (GetDeletedCertificate).
func (s *Service) GetDeleted(ctx context.Context, v tenancy.Vault, base, name string) (DeletedCertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return DeletedCertificateBundle{}, err
	}
	meta, latest, err := sc.certs().ReadDeleted(ctx, s.store, lc, name)
	if err != nil {
		return DeletedCertificateBundle{}, err
	}
	return sc.deletedBundle(meta, latest), nil
}

// ListDeleted returns one page of the vault's soft-deleted certificates.
func (s *Service) ListDeleted(ctx context.Context, v tenancy.Vault, base string, opts ListOptions) (Page[DeletedCertificateItem], error) {
	sc, err := newScope(v, base)
	if err != nil {
		return Page[DeletedCertificateItem]{}, err
	}
	return page(records.ListDeleted(ctx, s.store, sc.certs(), opts.MaxResults, opts.SkipToken, sc.deletedItem))
}

// Recover restores a soft-deleted certificate with its versions, key and secret
// (RecoverDeletedCertificate).
func (s *Service) Recover(ctx context.Context, v tenancy.Vault, base, name string) (CertificateBundle, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return CertificateBundle{}, err
	}
	var out CertificateBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, latest, err := sc.certs().ReadRecoverable(ctx, tx, lc, name)
		if err != nil {
			return err
		}
		if err := sc.certs().Recover(ctx, tx, lc, meta); err != nil {
			return err
		}
		if err := s.keys.RecoverManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		if err := s.secrets.RecoverManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		if err := scheduleRenewal(ctx, tx, sc, lc, meta, latest); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), meta); err != nil {
			return err
		}
		out = sc.bundle(meta, latest)
		return nil
	})
	return out, err
}

// Purge permanently removes a soft-deleted certificate, its key (whose material the
// provider destroys) and its secret (PurgeDeletedCertificate). Purge protection refuses it
// until the scheduled purge date.
func (s *Service) Purge(ctx context.Context, v tenancy.Vault, base, name string) error {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return err
	}
	now := s.clock()
	var destroy func(context.Context) error
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := sc.certs().ReadPurgeable(ctx, tx, lc, name, now, "", sc.vault.PurgeProtection, s.hooks.Gate, nil)
		if err != nil {
			return err
		}
		if destroy, err = s.keys.PurgeManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		if err := s.secrets.PurgeManaged(ctx, tx, sc.vault, meta.Name); err != nil {
			return err
		}
		return sc.certs().Remove(ctx, tx, lc, meta, meta.RenewIndex)
	})
	if err != nil {
		return err
	}
	return destroy(ctx)
}
