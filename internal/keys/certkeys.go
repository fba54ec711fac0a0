package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// HSM keys of certificates (RSA-HSM and EC-HSM policies), beyond PrepareManagedGenerate:
//
//   - reuse_key: a new version shares the token object of the version it renews
//     (PrepareManagedReuse), so one object can belong to several versions of a key. Only
//     purging the whole key destroys it, once; a failed renewal never does (the prepared
//     key does not own it), and a restore by handle that would make two keys share an
//     object is refused (sharedByRef).
//   - the Unknown issuer: the key made for a CSR is kept, by its handle, in the
//     certificate's pending operation until the signed certificate is merged
//     (PreparedKey.Handle, PrepareManagedPending) or the operation is dropped
//     (DiscardPending).
//   - backups: a certificate's backup carries its HSM key versions as a key backup body
//     (ManagedBackup), wrapped inside the token as a managed HSM pool's keys are
//     (sdwrap.go), by the tenant's certificate wrapping key (WrapCertificateKeysWith):
//     restored, they are new objects of the token, bound to trusted wrapping keys as
//     before (docs/HSM.md).

// WrapCertificateKeysWith makes the HSM keys of vaults' certificates leave their token,
// for certificate backups, wrapped by the key f installs in the vault's token and names (the
// server derives it per tenant from the certificates backup key), and makes new ones
// wrappable by such a trusted key only. Call it before the service is used.
func (s *Service) WrapCertificateKeysWith(f PoolWrapKey) { s.certWrapKey = f }

// Handle is the provider handle of the prepared key: for an HSM key a reference to its
// token object, which a pending CSR keeps until the merge (PrepareManagedPending).
func (p *PreparedKey) Handle() []byte { return append([]byte(nil), p.rec.Handle...) }

// ReusedFrom is the version whose token object the prepared key shares ("" for a key of
// its own).
func (p *PreparedKey) ReusedFrom() string { return p.reusedFrom }

// PrepareManagedReuse prepares version mk.Version of a certificate's key as the token
// object of its version from, for a new certificate version with reuse_key. ok is false
// when from's key is not an HSM key of spec's type, size and curve: the caller then makes
// a new key. The object stays from's: DiscardManaged leaves it, and CommitManaged refuses
// the version if from no longer names it.
func (s *Service) PrepareManagedReuse(ctx context.Context, v tenancy.Vault, base, name string, mk ManagedKey, from string, spec provider.KeySpec) (*PreparedKey, bool, error) {
	sc, lc, err := managedTarget(v, base, name, mk.Version)
	if err != nil {
		return nil, false, err
	}
	_, _, meta, err := s.managedMeta(ctx, s.store, v, name, false)
	if err != nil {
		return nil, false, err
	}
	ver, err := readVersion(ctx, s.store, sc, lc, meta, from)
	if err != nil {
		return nil, false, err
	}
	if !isHSM(ver.Kty) || ver.Kty != spec.Type || ver.Curve != spec.Curve || (spec.Curve == "" && ver.Size != spec.Size) {
		return nil, false, nil
	}
	p, err := s.prepareShared(ctx, sc, lc, name, mk, ver.Handle)
	if err != nil {
		return nil, false, err
	}
	p.reusedFrom = ver.Version
	return p, true, nil
}

// PrepareManagedPending prepares version mk.Version of a certificate's key from the handle
// its pending CSR kept (PreparedKey.Handle at create), for the merge; reusedFrom is what
// ReusedFrom said then. The object stays the operation's until CommitManaged stores the
// version: DiscardManaged leaves it.
func (s *Service) PrepareManagedPending(ctx context.Context, v tenancy.Vault, base, name string, mk ManagedKey, handle []byte, reusedFrom string) (*PreparedKey, error) {
	sc, lc, err := managedTarget(v, base, name, mk.Version)
	if err != nil {
		return nil, err
	}
	if reusedFrom != "" && !validVersion(reusedFrom) {
		return nil, errors.New("keys: a reused key names no valid version")
	}
	p, err := s.prepareShared(ctx, sc, lc, name, mk, handle)
	if err != nil {
		return nil, err
	}
	p.reusedFrom = reusedFrom
	return p, nil
}

// prepareShared loads an HSM key the prepared version does not own.
func (s *Service) prepareShared(ctx context.Context, sc scope, lc, name string, mk ManagedKey, handle []byte) (*PreparedKey, error) {
	key, err := s.prov.Load(ctx, handle)
	if err != nil {
		return nil, provErr("load the certificate's key", err)
	}
	if !isHSM(key.Type()) {
		return nil, errors.New("keys: only HSM keys are shared between certificate versions")
	}
	d := draft{ops: managedOps(key.Type(), mk.KeyOps), enabled: mk.Enabled, nbf: cloneI64(mk.NotBefore), exp: cloneI64(mk.Expires)}
	rec := d.record(key, 0, s.clock().Unix())
	rec.Version = mk.Version
	return &PreparedKey{sc: sc, lc: lc, name: name, rec: rec, key: key, keep: true}, nil
}

// checkReused refuses (ErrConflict) a prepared version reusing an object that its source
// version, in r, no longer names (the key was purged or replaced meanwhile).
func checkReused(ctx context.Context, r storage.Reader, p *PreparedKey, found bool) error {
	if p.reusedFrom == "" {
		return nil
	}
	var src versionRecord
	ok, err := records.Get(ctx, r, p.sc.versionPath(p.lc, p.reusedFrom), &src)
	if err != nil {
		return err
	}
	if !found || !ok || !bytes.Equal(src.Handle, p.rec.Handle) {
		return errorf(ErrConflict, "Version %s of key %s, whose HSM key the new version reuses, changed meanwhile; try again.", p.reusedFrom, p.name)
	}
	return nil
}

// DiscardPending destroys the HSM key a pending CSR kept, once the operation is cancelled
// or dropped. It must not be given a reused key's handle.
func (s *Service) DiscardPending(ctx context.Context, handle []byte) error {
	s.keys.drop(handle)
	return s.prov.Destroy(ctx, handle)
}

// ManagedBackup is the key part of a certificate's backup: versions of the certificate's
// HSM key as a key backup body (docs/FORMAT.md), with each key wrapped in its token when
// it can be (WrapManaged). It is JSON inside the certificate's sealed blob, never alone.
type ManagedBackup struct{ body backupBody }

// MarshalJSON encodes the key backup body.
func (m *ManagedBackup) MarshalJSON() ([]byte, error) { return json.Marshal(&m.body) }

// UnmarshalJSON decodes a key backup body strictly (unknown members are refused).
func (m *ManagedBackup) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var body backupBody
	if err := dec.Decode(&body); err != nil || dec.More() {
		return errCorruptBlob
	}
	m.body = body
	return nil
}

// Versions are the versions the backup holds.
func (m *ManagedBackup) Versions() []string {
	out := make([]string, len(m.body.Versions))
	for i, v := range m.body.Versions {
		out[i] = v.Version
	}
	return out
}

// BackupManaged reads, in r (the certificate backup's transaction), the given HSM versions
// of a certificate's key. WrapManaged then wraps them, outside the transaction.
func (s *Service) BackupManaged(ctx context.Context, r storage.Reader, v tenancy.Vault, name string, versions []string) (*ManagedBackup, error) {
	sc, lc, meta, err := s.managedMeta(ctx, r, v, name, false)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, errors.New("keys: a certificate key backup needs versions")
	}
	body := backupBody{Provider: s.prov.Name(), Name: meta.Name, Latest: versions[len(versions)-1], managed: true}
	for _, version := range versions {
		ver, err := readVersion(ctx, r, sc, lc, meta, version)
		if err != nil {
			return nil, err
		}
		if !isHSM(ver.Kty) {
			return nil, fmt.Errorf("keys: version %s of %s is not an HSM key", version, meta.Name)
		}
		body.Versions = append(body.Versions, *ver)
	}
	return &ManagedBackup{body: body}, nil
}

// WrapManaged wraps the keys of m inside their token under the tenant's certificate
// wrapping key. A key that may not leave its token (made before an SO PIN was configured)
// keeps only its handle, and restores only by reference, under sharedByRef's rules.
func (s *Service) WrapManaged(ctx context.Context, v tenancy.Vault, m *ManagedBackup) error {
	sc, err := newScope(v, "")
	if err != nil {
		return err
	}
	m.body.managed = true
	return s.wrapVersions(ctx, sc, &m.body)
}

// RestoredKey is a certificate's key rebuilt from a ManagedBackup: CheckManagedRestore runs
// in the certificate restore's transaction, then CommitManaged stores each version
// (Prepared); after a failure DiscardManagedRestore destroys the objects it made.
type RestoredKey struct {
	sc       scope
	body     *backupBody
	prepared map[string]*PreparedKey
}

// Prepared is the restored version ver (nil if the backup has no such version).
func (r *RestoredKey) Prepared(ver string) *PreparedKey { return r.prepared[ver] }

// PrepareManagedRestore makes the key versions of m usable in v under name: wrapped keys
// are unwrapped into the vault's token as new objects, checked to be the backed-up keys;
// others are taken by their handle. A backup that is not a certificate key's (a version
// that is not an HSM key, another name) is ErrBadParameter.
func (s *Service) PrepareManagedRestore(ctx context.Context, v tenancy.Vault, base, name string, m *ManagedBackup) (*RestoredKey, error) {
	sc, lc, err := target(v, base, name)
	if err != nil {
		return nil, err
	}
	body := &m.body
	body.managed = true
	if err := s.checkBody(sc, body); err != nil {
		return nil, err
	}
	if !strings.EqualFold(body.Name, name) {
		return nil, errCorruptBlob
	}
	rk := &RestoredKey{sc: sc, body: body, prepared: map[string]*PreparedKey{}}
	var id []byte
	for i := range body.Versions {
		ver := &body.Versions[i]
		if !isHSM(ver.Kty) {
			s.undoRestore(ctx, body)
			return nil, errCorruptBlob
		}
		key, err := s.restoreVersion(ctx, sc, body, ver, &id)
		if err != nil {
			s.undoRestore(ctx, body)
			return nil, err
		}
		ver.Public = (*storedJWK)(publicJWK(key.Public()))
		rk.prepared[ver.Version] = &PreparedKey{sc: sc, lc: lc, name: name, rec: ver, key: key, keep: true}
	}
	return rk, nil
}

// CheckManagedRestore refuses, in the restore's transaction, versions taken by handle whose
// token object a key of the tenant already names (sharedByRef).
func (s *Service) CheckManagedRestore(ctx context.Context, r storage.Reader, rk *RestoredKey) error {
	return sharedByRef(ctx, r, rk.sc, rk.body)
}

// DiscardManagedRestore destroys the objects a restore made, after its transaction failed.
func (s *Service) DiscardManagedRestore(ctx context.Context, rk *RestoredKey) {
	if rk != nil {
		s.undoRestore(ctx, rk.body)
	}
}

// SetKeyOps narrows the prepared version's operations to ops (nil: all its key type
// supports), once its certificate is known (a merge: the signed certificate's key usage).
func (p *PreparedKey) SetKeyOps(ops []string) { p.rec.KeyOps = managedOps(p.rec.Kty, ops) }
