package secrets

import (
	"context"
	"fmt"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The certificates service owns the secrets of certificates ("managed" secrets, Key Vault's
// object model: a certificate's content is the secret of the same name, version for
// version). It changes them only through the methods below, each inside a transaction the
// certificates service opens, so a certificate and its secret change together or not at
// all. Every other operation that would change a managed secret is refused with ErrManaged.

// ManagedVersion is the content of a new certificate version.
type ManagedVersion struct {
	// Version is the certificate version; the secret version gets the same id.
	Version string
	// Value is the certificate content (PFX base64 or PEM text), with the private key only
	// when the certificate's key is exportable.
	Value       Value
	ContentType string
	// KID is the identifier of the certificate's key version, relative to the vault URL
	// ("/keys/<name>/<version>").
	KID                string
	Enabled            bool
	NotBefore, Expires *int64
	// LeafAt is where the leaf was in the chain as given when the certificate keeps that
	// order (preserveCertOrder), 0 otherwise: outContentType conversions put it there again.
	LeafAt int
}

// PutManaged stores a certificate's content as the latest version of its secret in tx. The
// name must be free or already a managed secret: a plain secret of that name is
// ErrConflict, a deleted one ErrDeletedButRecoverable.
func (s *Service) PutManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string, mv ManagedVersion) error {
	sc, lc, err := target(v, "", name)
	if err != nil {
		return err
	}
	if !names.Version(mv.Version) {
		return fmt.Errorf("secrets: managed version %q is not a version id", mv.Version)
	}
	var meta secretRecord
	found, err := records.Get(ctx, tx, sc.metaPath(lc), &meta)
	if err != nil {
		return err
	}
	switch {
	case found && meta.Deleted != nil:
		return lifecycle.Deleted(meta.Name)
	case found && !meta.Managed:
		return errorf(ErrConflict, "A secret named %s already exists in this vault; a certificate needs its name free for its own secret.", meta.Name)
	case !found:
		meta = secretRecord{Name: name, Managed: true}
	}
	now := s.clock().Unix()
	rec := versionRecord{
		Version:     mv.Version,
		Value:       string(mv.Value),
		ContentType: mv.ContentType,
		Enabled:     mv.Enabled,
		NotBefore:   cloneI64(mv.NotBefore),
		Expires:     cloneI64(mv.Expires),
		Created:     now,
		Updated:     now,
		Managed:     true,
		KID:         mv.KID,
		LeafAt:      max(mv.LeafAt, 0),
	}
	if err := records.Put(ctx, tx, sc.versionPath(lc, rec.Version), &rec); err != nil {
		return err
	}
	meta.Latest = rec.Version
	if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
		return err
	}
	return records.Put(ctx, tx, sc.metaPath(lc), &meta)
}

// UpdateManaged sets the enabled flag and validity window of a managed secret version in
// tx, following its certificate.
func (s *Service) UpdateManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name, version string, enabled bool, nbf, exp *int64) error {
	sc, lc, meta, err := managedMeta(ctx, tx, v, name, false)
	if err != nil {
		return err
	}
	ver, err := readVersion(ctx, tx, sc, lc, meta, version)
	if err != nil {
		return err
	}
	ver.Enabled, ver.NotBefore, ver.Expires = enabled, cloneI64(nbf), cloneI64(exp)
	ver.Updated = s.clock().Unix()
	return records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver)
}

// DeleteManaged soft-deletes a certificate's secret in tx.
func (s *Service) DeleteManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) error {
	sc, lc, _, err := managedMeta(ctx, tx, v, name, false)
	if err != nil {
		return err
	}
	_, _, err = softDelete(ctx, tx, sc, lc, name, s.clock(), true)
	return err
}

// RecoverManaged recovers a certificate's deleted secret in tx.
func (s *Service) RecoverManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) error {
	sc, lc, _, err := managedMeta(ctx, tx, v, name, true)
	if err != nil {
		return err
	}
	_, _, err = recoverSecret(ctx, tx, sc, lc, name, true)
	return err
}

// PurgeManaged removes a certificate's deleted secret in tx (purge protection applies as to
// any secret; it was deleted with its certificate, so their dates agree).
func (s *Service) PurgeManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) error {
	sc, lc, _, err := managedMeta(ctx, tx, v, name, true)
	if err != nil {
		return err
	}
	return s.purgeSecret(ctx, tx, sc, lc, name, s.clock(), "", true)
}

// managedMeta reads the record of a certificate's secret (deleted or live as asked) and
// refuses a secret that is not managed: a certificate never touches a plain secret.
func managedMeta(ctx context.Context, r storage.Reader, v tenancy.Vault, name string, deleted bool) (scope, string, *secretRecord, error) {
	sc, lc, err := target(v, "", name)
	if err != nil {
		return scope{}, "", nil, err
	}
	meta, err := readSecret(ctx, r, sc, lc, name)
	if err != nil {
		return scope{}, "", nil, err
	}
	if !meta.Managed || (meta.Deleted != nil) != deleted {
		return scope{}, "", nil, fmt.Errorf("secrets: %s is not the %s secret of a certificate", name, map[bool]string{true: "deleted", false: "live"}[deleted])
	}
	return sc, lc, meta, nil
}
