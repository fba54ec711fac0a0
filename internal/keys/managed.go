package keys

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The certificates service owns the keys of certificates ("managed" keys, Key Vault's
// object model: a certificate's key is the key of the same name, version for version). It
// changes them only through the methods below, each of which works inside a transaction the
// certificates service opens, so a certificate and its key change together or not at all.
// Every other operation that would change a managed key is refused with ErrManaged.

// ManagedKey is the private key of a new certificate version.
type ManagedKey struct {
	// Version is the certificate version; the key version gets the same id.
	Version string
	// Key is the private JWK (RSA or EC; RSA-HSM or EC-HSM puts it into the token); the
	// provider validates it. PrepareManaged leaves it alone: the caller clears it.
	Key *provider.JWK
	// KeyOps are the operations the certificate's key usage allows (nil: all the key type
	// supports).
	KeyOps []string
	// Enabled, NotBefore and Expires follow the certificate.
	Enabled            bool
	NotBefore, Expires *int64
}

// PreparedKey is a managed key version whose material the provider holds, ready for
// CommitManaged; if the transaction fails, DiscardManaged destroys the material.
type PreparedKey struct {
	sc   scope
	lc   string
	name string
	rec  *versionRecord
	key  provider.Key
	// keep: DiscardManaged leaves the material alone, which this key does not own (a
	// reused object, a pending CSR's key, a restore's: certkeys.go).
	keep bool
	// reusedFrom is the version of the same key whose token object this version shares
	// (reuse_key); CommitManaged checks that version still names it.
	reusedFrom string
}

// KID is the key identifier the version will have, relative to the vault URL
// ("/keys/<name>/<version>").
func (p *PreparedKey) KID() string { return "/keys/" + p.name + "/" + p.rec.Version }

// PrepareManaged loads a certificate's private key into the provider: a software key, or
// an HSM key imported into the token (the provider wraps it there; it never leaves in
// clear).
func (s *Service) PrepareManaged(ctx context.Context, v tenancy.Vault, base, name string, mk ManagedKey) (*PreparedKey, error) {
	if mk.Key == nil {
		return nil, errors.New("keys: a managed key needs a private key")
	}
	sc, lc, err := managedTarget(v, base, name, mk.Version)
	if err != nil {
		return nil, err
	}
	jwk := *mk.Key
	jwk.KID = ""
	if err := checkKty(sc, jwk.Kty); err != nil {
		return nil, err
	}
	d := draft{ops: managedOps(jwk.Kty, mk.KeyOps), enabled: mk.Enabled, nbf: cloneI64(mk.NotBefore), exp: cloneI64(mk.Expires)}
	jwk.KeyOps = d.ops
	// An HSM key (a certificate imported under an RSA-HSM or EC-HSM policy) goes into the
	// token protected as PrepareManagedGenerate's keys are, so certificate backups can carry
	// it wrapped (certkeys.go).
	jwk.SecurityDomain = isHSM(jwk.Kty) && (sc.pool() || s.certWrapKey != nil)
	key, err := s.prov.Import(ctx, &jwk)
	if err != nil {
		return nil, provErr("import the certificate's key", err)
	}
	rec := d.record(key, 0, s.clock().Unix())
	rec.Version = mk.Version
	return &PreparedKey{sc: sc, lc: lc, name: name, rec: rec, key: key}, nil
}

// managedTarget checks where a managed key version goes.
func managedTarget(v tenancy.Vault, base, name, version string) (scope, string, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return scope{}, "", err
	}
	if !validVersion(version) {
		return scope{}, "", errors.New("keys: a managed key needs a version id")
	}
	return sc, lc, nil
}

// DiscardManaged destroys the material of a prepared key whose transaction failed, unless
// the key shares material it does not own (a reused version's object, a pending CSR's key).
func (s *Service) DiscardManaged(ctx context.Context, p *PreparedKey) {
	if p != nil && !p.keep {
		_ = s.prov.Destroy(ctx, p.rec.Handle)
	}
}

// CommitManaged stores a prepared key as the latest version of the certificate's key in tx.
// The name must be free or already a managed key: a plain key of that name is ErrConflict,
// a deleted one ErrDeletedButRecoverable.
func (s *Service) CommitManaged(ctx context.Context, tx storage.Tx, p *PreparedKey) error {
	var meta keyRecord
	found, err := records.Get(ctx, tx, p.sc.metaPath(p.lc), &meta)
	if err != nil {
		return err
	}
	switch {
	case found && meta.Deleted != nil:
		return lifecycle.Deleted(meta.Name)
	case found && !meta.Managed:
		return errorf(ErrConflict, "A key named %s already exists in this vault; a certificate needs its name free for its own key.", meta.Name)
	case !found:
		meta = keyRecord{Name: p.name, Managed: true}
	}
	if err := checkReused(ctx, tx, p, found); err != nil {
		return err
	}
	if err := records.Put(ctx, tx, p.sc.versionPath(p.lc, p.rec.Version), p.rec); err != nil {
		return err
	}
	meta.Latest = p.rec.Version
	if err := tx.Put(ctx, p.sc.liveIndex()+p.lc, nil); err != nil {
		return err
	}
	return records.Put(ctx, tx, p.sc.metaPath(p.lc), &meta)
}

// UpdateManaged sets the enabled flag and validity window of a managed key version in tx,
// following its certificate.
func (s *Service) UpdateManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name, version string, enabled bool, nbf, exp *int64) error {
	sc, lc, meta, err := s.managedMeta(ctx, tx, v, name, false)
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

// DeleteManaged soft-deletes a certificate's key in tx.
func (s *Service) DeleteManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) error {
	sc, lc, _, err := s.managedMeta(ctx, tx, v, name, false)
	if err != nil {
		return err
	}
	_, _, err = softDelete(ctx, tx, sc, lc, name, s.clock(), true)
	return err
}

// RecoverManaged recovers a certificate's deleted key in tx.
func (s *Service) RecoverManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) error {
	sc, lc, _, err := s.managedMeta(ctx, tx, v, name, true)
	if err != nil {
		return err
	}
	_, _, err = recoverKey(ctx, tx, sc, lc, name, true)
	return err
}

// PurgeManaged removes a certificate's deleted key in tx (purge protection applies as to any
// key; the key was deleted with its certificate, so their dates agree) and returns a function that destroys the key material, to be
// called once tx has committed.
func (s *Service) PurgeManaged(ctx context.Context, tx storage.Tx, v tenancy.Vault, name string) (func(context.Context) error, error) {
	sc, lc, _, err := s.managedMeta(ctx, tx, v, name, true)
	if err != nil {
		return nil, err
	}
	handles, err := s.purgeKey(ctx, tx, sc, lc, name, s.clock(), "", true)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.destroy(ctx, handles) }, nil
}

// managedMeta reads the record of a certificate's key (deleted or live as asked) and
// refuses a key that is not managed: a certificate never touches a plain key.
func (s *Service) managedMeta(ctx context.Context, r storage.Reader, v tenancy.Vault, name string, deleted bool) (scope, string, *keyRecord, error) {
	sc, lc, err := target(v, "", name)
	if err != nil {
		return scope{}, "", nil, err
	}
	meta, err := readKey(ctx, r, sc, lc, name)
	if err != nil {
		return scope{}, "", nil, err
	}
	if !meta.Managed || (meta.Deleted != nil) != deleted {
		return scope{}, "", nil, fmt.Errorf("keys: %s is not the %s key of a certificate", name, map[bool]string{true: "deleted", false: "live"}[deleted])
	}
	return sc, lc, meta, nil
}
