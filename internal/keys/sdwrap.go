package keys

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Key material in managed HSM pools' backups (docs/HSM.md, FORMAT.md "Key backup blobs").
// A pool's backup carries, beside each HSM version's handle, the key itself wrapped inside
// its token by the pool's security-domain wrapping key (provider.DomainWrapper); a restore
// into a pool holding the same domain unwraps it into that pool's token as a new object, so
// the backup no longer depends on the token it was made in. Versions the provider cannot
// wrap (keys made before their token had a security officer PIN: not extractable) keep
// only their handle and restore as before, into an installation reaching that token.

// PoolWrapKey installs, if it is not there yet, the security-domain wrapping key of a pool
// in the pool's key store and returns its id (the server derives it from the pool's domain
// key, internal/secdomain). A store that cannot hold one answers an error wrapping
// provider.ErrUnsupported.
type PoolWrapKey func(ctx context.Context, pool tenancy.Vault) ([]byte, error)

// WrapPoolKeysWith makes pools' key backups carry their HSM keys wrapped under the pool's
// security domain, and their restores unwrap them into the target pool's token. Call it
// before the service is used.
func (s *Service) WrapPoolKeysWith(f PoolWrapKey) { s.poolWrapKey = f }

// backupBodyWrapped is the body version of blobs whose versions carry wrapped keys.
const backupBodyWrapped = 2

// wrappedKey is one version's key wrapped under the pool's security-domain wrapping key.
type wrappedKey struct {
	KeyID string `json:"kid"` // hex id of the wrapping key (secdomain.TokenWrapKey)
	Alg   string `json:"alg"` // CKM_AES_KEY_WRAP_PAD
	Value []byte `json:"value"`
}

// domainWrapper is the provider as a DomainWrapper and the function that installs the
// wrapping key body's versions go under: a pool's security-domain key (WrapPoolKeysWith),
// or for the key of a vault's certificate the tenant's certificate wrapping key
// (WrapCertificateKeysWith, certkeys.go). ok is false when there is none: a vault's plain
// key, a software provider, a setter not called.
func (s *Service) domainWrapper(sc scope, body *backupBody) (provider.DomainWrapper, PoolWrapKey, bool) {
	dw, ok := s.prov.(provider.DomainWrapper)
	wk := s.poolWrapKey
	if !sc.pool() {
		wk = nil
		if body.managed {
			wk = s.certWrapKey
		}
	}
	return dw, wk, ok && wk != nil
}

// isHSM reports whether kty is an HSM key type (its key lives in a token).
func isHSM(kty provider.KeyType) bool { return strings.HasSuffix(string(kty), "-HSM") }

// wrapVersions adds to body the HSM versions wrapped under the pool's security domain. A
// version that cannot be wrapped (provider.ErrNotExportable, ErrUnsupported) keeps only
// its handle; a store that cannot hold the wrapping key leaves the body as it is.
func (s *Service) wrapVersions(ctx context.Context, sc scope, body *backupBody) error {
	dw, wrapKey, ok := s.domainWrapper(sc, body)
	if !ok {
		return nil
	}
	var id []byte
	// Versions of a certificate renewed with reuse_key share one token object: it is
	// wrapped once, and the restore unwraps it once (restoreVersion).
	done := map[string]*wrappedKey{}
	for _, ver := range body.Versions {
		if !isHSM(ver.Kty) {
			continue
		}
		if w, ok := done[string(ver.Handle)]; ok {
			if w != nil {
				body.Wrapped[ver.Version] = w
			}
			continue
		}
		if id == nil {
			var err error
			if id, err = wrapKey(ctx, sc.vault); errors.Is(err, provider.ErrUnsupported) {
				return nil
			} else if err != nil {
				return provErr("back up key", err)
			}
		}
		w, err := dw.WrapForDomain(ctx, ver.Handle, id)
		if errors.Is(err, provider.ErrNotExportable) || errors.Is(err, provider.ErrUnsupported) {
			done[string(ver.Handle)] = nil
			continue
		}
		if err != nil {
			return provErr("back up key", err)
		}
		if body.Wrapped == nil {
			body.Wrapped = map[string]*wrappedKey{}
		}
		body.Wrapped[ver.Version] = &wrappedKey{KeyID: hex.EncodeToString(id), Alg: w.Alg, Value: w.Value}
		done[string(ver.Handle)] = body.Wrapped[ver.Version]
	}
	if len(body.Wrapped) > 0 {
		body.V = backupBodyWrapped
	}
	return nil
}

// restoreVersion makes the key of one version of a blob usable in sc: a wrapped key is
// unwrapped into the pool's store as a new key (recorded in body.made), anything else is
// loaded from its handle. A store that cannot hold the wrapping key falls back to the
// handle. Versions that shared one object (a certificate's reuse_key) share the one
// object unwrapped for them. Refusals of the blob's content are errCorruptBlob; an
// unavailable store passes.
func (s *Service) restoreVersion(ctx context.Context, sc scope, body *backupBody, ver *versionRecord, id *[]byte) (provider.Key, error) {
	w := body.Wrapped[ver.Version]
	if key, ok := body.unwrapped[string(ver.Handle)]; ok && w != nil {
		ver.Handle = append([]byte(nil), key.Handle()...)
		return key, nil
	}
	dw, wrapKey, ok := s.domainWrapper(sc, body)
	if w != nil && ok && *id == nil {
		got, err := wrapKey(ctx, sc.vault)
		switch {
		case errors.Is(err, provider.ErrUnsupported):
			ok = false
		case err != nil:
			return nil, provErr("restore key", err)
		default:
			*id = got
		}
	}
	if w == nil || !ok || *id == nil {
		key, err := s.prov.Load(ctx, ver.Handle)
		switch {
		case errors.Is(err, provider.ErrUnavailable):
			return nil, provErr("restore key", err)
		case errors.Is(err, provider.ErrKeyGone):
			return nil, badParam("key %s version %s: %s", body.Name, ver.Version, byRefGone)
		case err != nil:
			return nil, errCorruptBlob
		}
		if isHSM(ver.Kty) {
			body.byRef = append(body.byRef, ver.Version)
		}
		return key, nil
	}
	if w.KeyID != hex.EncodeToString(*id) {
		return nil, errCorruptBlob
	}
	key, err := dw.UnwrapForDomain(ctx, sc.store(), *id, ver.Handle, provider.DomainWrapped{Alg: w.Alg, Value: w.Value})
	if errors.Is(err, provider.ErrUnavailable) {
		return nil, provErr("restore key", err)
	}
	if err != nil {
		return nil, errCorruptBlob
	}
	h := key.Handle()
	body.made = append(body.made, h)
	if body.unwrapped == nil {
		body.unwrapped = map[string]provider.Key{}
	}
	body.unwrapped[string(ver.Handle)] = key
	ver.Handle = append([]byte(nil), h...)
	return key, nil
}

// Restores by reference. A version restored from its handle alone (no wrapped key: a
// vault's HSM key, or a pool's made before its token had a security officer PIN) does not
// get a key of its own: its record would name the same token object as the key it was
// backed up from, and purging either key would destroy the other's key material. So such
// a restore is refused while any key of the tenant (live or deleted, in any vault or pool)
// still names that object (sharedByRef), and once the object is gone there is nothing to
// restore (byRefGone). What remains possible is the recovery it is for: bringing back a
// key whose record was lost while its token object was kept.
const (
	byRefGone = "the backup holds only a reference to the key's HSM token object, not the key (the key cannot leave its token: " +
		"a vault's HSM key, or a managed HSM pool's key made before its token had a security officer PIN), and that object " +
		"is no longer in the token; this backup cannot be restored"
	byRefShared = "the backup holds only a reference to the key's HSM token object, not the key (the key cannot leave its token: " +
		"a vault's HSM key, or a managed HSM pool's key made before its token had a security officer PIN), and that object " +
		"still belongs to a key of this tenant (live or deleted); restoring it here would make two keys share one key, and " +
		"purging either would destroy the other's: keep using the original"
)

// sharedByRef refuses a restore (ErrBadParameter) when a version body restores by
// reference names a token object that a key of the tenant already names. It reads every
// key version record of the tenant; it runs in the restore's transaction, so two restores
// of one backup cannot both pass.
func sharedByRef(ctx context.Context, r storage.Reader, sc scope, body *backupBody) error {
	if len(body.byRef) == 0 {
		return nil
	}
	mine := map[string][]byte{}
	for _, ver := range body.Versions {
		if slices.Contains(body.byRef, ver.Version) {
			mine[ver.Version] = ver.Handle
		}
	}
	paths, err := records.ListAll(ctx, r, "tenants/"+sc.vault.TenantID+"/")
	if err != nil {
		return err
	}
	for _, path := range paths {
		// tenants/<tenant>/<vaults|managedhsms>/<vault>/keys/<name>/versions/<version>
		parts := strings.Split(path, "/")
		if len(parts) != 8 || parts[4] != "keys" || parts[6] != "versions" {
			continue
		}
		var other versionRecord
		if found, err := records.Get(ctx, r, path, &other); err != nil || !found {
			return errors.Join(err, fmt.Errorf("record %s vanished", path))
		}
		for version, h := range mine {
			if bytes.Equal(other.Handle, h) {
				return badParam("key %s version %s: %s", body.Name, version, byRefShared)
			}
		}
	}
	return nil
}

// undoRestore destroys the keys a failed restore made in the key store (best effort: a
// failure leaves an orphan object, never a record).
func (s *Service) undoRestore(ctx context.Context, body *backupBody) {
	for _, h := range body.made {
		_ = s.prov.Destroy(context.WithoutCancel(ctx), h)
	}
	body.made = nil
}
