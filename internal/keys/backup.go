package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Backup blob format, version 1 (docs/FORMAT.md should copy this):
//
//	blob  = 0x01 ‖ nonce (12 bytes, crypto/rand) ‖ AES-256-GCM(backupKey, nonce, plaintext, aad)
//	aad   = "coffer/key-backup/v1" ‖ tenant id
//	plaintext = JSON backupBody: the provider name, the key's display name, latest version,
//	            rotation policy and every version record (attributes, tags, release policy,
//	            public JWK and the provider handle); in a pool's blob, "v":2 and
//	            "sdWrapped" (by version: the HSM key wrapped in its token under the pool's
//	            security domain, sdwrap.go) when any version could be wrapped
//
// The backup key is per installation, so a blob restores only in the installation that made
// it, and the tenant id in the AAD confines it to the tenant (any of its vaults). A managed
// HSM pool's blobs are sealed instead under its pool key (SealPoolBackupsWith: derived from
// the pool's security domain), so they restore only into pools holding that domain. The blob
// carries provider handles: for the software provider those hold private keys, which is why
// the blob is sealed and must never be written anywhere unencrypted.
const (
	backupAAD = "coffer/key-backup/v1"
	// maxBackupVersions bounds the versions a restored blob may carry.
	maxBackupVersions = 10000
)

// backupBody is the plaintext of a backup blob.
type backupBody struct {
	// V is the body version: absent (1) or 2 (Wrapped may be present).
	V        int                `json:"v,omitempty"`
	Provider string             `json:"provider"`
	Name     string             `json:"name"`
	Latest   string             `json:"latest"`
	Policy   *KeyRotationPolicy `json:"policy,omitempty"`
	Versions []versionRecord    `json:"versions"`
	// Wrapped holds, by version, keys wrapped under the pool's security domain (sdwrap.go).
	Wrapped map[string]*wrappedKey `json:"sdWrapped,omitempty"`
	// made are the handles of keys a restore made in the key store (undoRestore).
	made [][]byte
	// unwrapped are the keys a restore made, by the handle the blob gave them.
	unwrapped map[string]provider.Key
	// byRef are the HSM versions a restore takes by their handle alone (sharedByRef).
	byRef []string
	// managed marks the key of a certificate (certkeys.go), wrapped in a vault by the
	// tenant's certificate wrapping key.
	managed bool
}

// errNoBackupKey is returned by Backup and Restore when the service has no usable key.
var errNoBackupKey = errors.New("keys: backup and restore are unavailable: the server has no 32-byte backup key")

// errCorruptBlob is the one answer to every unusable backup blob.
var errCorruptBlob = badParam("the backup blob is corrupt, truncated, or was made by another tenant or installation")

// Backup returns a sealed blob holding every version of a key (BackupKey). A deleted key is
// ErrKeyNotFound.
func (s *Service) Backup(ctx context.Context, v tenancy.Vault, name string) (BackupResult, error) {
	sealer, err := s.sealerFor(ctx, v)
	if err != nil {
		return BackupResult{}, err
	}
	sc, lc, err := target(v, "", name)
	if err != nil {
		return BackupResult{}, err
	}
	var body backupBody
	err = s.store.Txn(ctx, func(tx storage.Tx) error { // a consistent snapshot
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		if meta.Managed {
			return managedRefused("backup", meta.Name)
		}
		body = backupBody{Provider: s.prov.Name(), Name: meta.Name, Latest: meta.Latest, Policy: meta.Policy}
		body.Versions, err = records.ReadAll[versionRecord](ctx, tx, sc.versionsPrefix(lc))
		return err
	})
	if err != nil {
		return BackupResult{}, err
	}
	if err := s.wrapVersions(ctx, sc, &body); err != nil {
		return BackupResult{}, err
	}
	plain, err := json.Marshal(body)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: encode: %w", err)
	}
	blob, err := sealer.Seal(plain, backupAADFor(sc.vault.TenantID))
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	clear(plain)
	return BackupResult{Value: blob}, nil
}

// backupAADFor is the associated data of a tenant's backup blobs.
func backupAADFor(tenantID string) []byte { return []byte(backupAAD + tenantID) }

// openBackup authenticates, decrypts and validates a blob.
func (s *Service) openBackup(sealer *records.Sealer, sc scope, blob []byte) (*backupBody, error) {
	plain, err := sealer.Open(blob, backupAADFor(sc.vault.TenantID))
	if err != nil {
		return nil, errCorruptBlob
	}
	defer clear(plain)
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	var body backupBody
	if err := dec.Decode(&body); err != nil || dec.More() {
		return nil, errCorruptBlob
	}
	if err := s.checkBody(sc, &body); err != nil {
		return nil, err
	}
	return &body, nil
}

// checkBody validates an opened backup body for a restore into sc.
func (s *Service) checkBody(sc scope, body *backupBody) error {
	if body.Provider != s.prov.Name() {
		return badParam("the backup was made with the %q crypto provider, this server uses %q", body.Provider, s.prov.Name())
	}
	if !names.Object(body.Name) || len(body.Versions) == 0 || len(body.Versions) > maxBackupVersions {
		return errCorruptBlob
	}
	if body.V != 0 && body.V != backupBodyWrapped || body.V == 0 && body.Wrapped != nil {
		return errCorruptBlob
	}
	seen := map[string]bool{}
	for _, ver := range body.Versions {
		if !validVersion(ver.Version) || seen[ver.Version] || len(ver.Handle) == 0 {
			return errCorruptBlob
		}
		if err := checkKty(sc, ver.Kty); err != nil {
			return err
		}
		seen[ver.Version] = true
	}
	if !seen[body.Latest] {
		return errCorruptBlob
	}
	for ver, w := range body.Wrapped {
		if !seen[ver] || w == nil || len(w.Value) == 0 {
			return errCorruptBlob
		}
	}
	return nil
}

// Restore restores a key with all its versions from a Backup blob into the vault
// (RestoreKey) and returns its latest version. The name must be free: an existing key is
// ErrConflict and a deleted one ErrDeletedButRecoverable. A corrupt blob, or one made for
// another tenant or installation, is ErrBadParameter.
func (s *Service) Restore(ctx context.Context, v tenancy.Vault, base string, blob []byte) (KeyBundle, error) {
	sealer, err := s.sealerFor(ctx, v)
	if err != nil {
		return KeyBundle{}, err
	}
	sc, err := newScope(v, base)
	if err != nil {
		return KeyBundle{}, err
	}
	body, err := s.prepareRestore(ctx, sealer, sc, blob)
	if err != nil {
		return KeyBundle{}, err
	}
	defer body.clear()
	var out KeyBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		out, err = restoreTx(ctx, tx, sc, body)
		return err
	})
	if err != nil {
		s.undoRestore(ctx, body)
	}
	return out, err
}

// prepareRestore opens a blob, checks that its name is free in sc and makes every version's
// key usable there: wrapped keys are unwrapped into the pool's key store, other handles
// must load (restoreVersion). The public key is taken from the provider, not from the blob.
// On failure, keys it made are destroyed again.
func (s *Service) prepareRestore(ctx context.Context, sealer *records.Sealer, sc scope, blob []byte) (*backupBody, error) {
	body, err := s.openBackup(sealer, sc, blob)
	if err != nil {
		return nil, err
	}
	lc, _ := checkName(body.Name)
	if err := checkFree(ctx, s.store, sc, lc); err != nil {
		body.clear()
		return nil, err
	}
	var id []byte
	for i := range body.Versions {
		key, err := s.restoreVersion(ctx, sc, body, &body.Versions[i], &id)
		if err != nil {
			s.undoRestore(ctx, body)
			body.clear()
			return nil, err
		}
		body.Versions[i].Public = (*storedJWK)(publicJWK(key.Public()))
	}
	return body, nil
}

// clear wipes the provider handles and wrapped keys of a restored body.
func (b *backupBody) clear() {
	for i := range b.Versions {
		clear(b.Versions[i].Handle)
	}
	for _, w := range b.Wrapped {
		clear(w.Value)
	}
}

// checkFree refuses a name that a live (ErrConflict) or deleted (ErrDeletedButRecoverable)
// key has in sc.
func checkFree(ctx context.Context, r storage.Reader, sc scope, lc string) error {
	var existing keyRecord
	found, err := records.Get(ctx, r, sc.metaPath(lc), &existing)
	if err != nil {
		return err
	}
	if found && existing.Deleted != nil {
		return lifecycle.Deleted(existing.Name)
	}
	if found {
		return errorf(ErrConflict, "Key %s already exists in this vault; delete and purge it, or restore into another vault.", existing.Name)
	}
	return nil
}

// restoreTx writes a prepared backup into sc; the name must be free.
func restoreTx(ctx context.Context, tx storage.Tx, sc scope, body *backupBody) (KeyBundle, error) {
	lc, _ := checkName(body.Name)
	if err := checkFree(ctx, tx, sc, lc); err != nil {
		return KeyBundle{}, err
	}
	if err := sharedByRef(ctx, tx, sc, body); err != nil {
		return KeyBundle{}, err
	}
	meta := keyRecord{Name: body.Name, Latest: body.Latest, Policy: body.Policy}
	var latest *versionRecord
	for i := range body.Versions {
		ver := &body.Versions[i]
		if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
			return KeyBundle{}, err
		}
		if ver.Version == body.Latest {
			latest = ver
		}
	}
	if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
		return KeyBundle{}, err
	}
	if err := reschedule(ctx, tx, sc, lc, &meta, latest); err != nil {
		return KeyBundle{}, err
	}
	if err := records.Put(ctx, tx, sc.metaPath(lc), &meta); err != nil {
		return KeyBundle{}, err
	}
	return sc.bundle(&meta, latest), nil
}
