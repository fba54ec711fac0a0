package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Backup blob format, version 1 (docs/FORMAT.md should copy this):
//
//	blob  = 0x01 ‖ nonce (12 bytes, crypto/rand) ‖ AES-256-GCM(backupKey, nonce, plaintext, aad)
//	aad   = "coffer/secret-backup/v1" ‖ tenant id
//	plaintext = JSON backupBody: the secret's display name, latest version and every version
//	            record (value, content type, attributes, tags)
//
// The backup key is per installation (and distinct from the keys backup key), so a blob
// restores only in the installation that made it, and the tenant id in the AAD confines it
// to the tenant (any of its vaults). The blob carries the values, which is why it is sealed
// and must never be written anywhere unencrypted.
const (
	backupAAD = "coffer/secret-backup/v1"
	// MaxBackupBytes bounds a backup blob: Backup refuses to make a larger one (it could not
	// be restored) and the api layer caps the restore body accordingly.
	MaxBackupBytes = 2 << 20
	// maxBackupVersions bounds the versions a restored blob may carry.
	maxBackupVersions = 10000
)

// B64 is bytes that travel as strict unpadded base64url (SECURITY-NOTES I6): padding, '+',
// '/', whitespace, escapes and non-canonical trailing bits are refused.
type B64 []byte

var b64 = base64.RawURLEncoding

// MarshalJSON writes b as an unpadded base64url JSON string.
func (b B64) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, b64.EncodedLen(len(b))+2)
	out = append(out, '"')
	out = b64.AppendEncode(out, b)
	return append(out, '"'), nil
}

// UnmarshalJSON reads a strict unpadded base64url JSON string (strictb64.URL); null
// leaves b unchanged. Errors never repeat the input.
func (b *B64) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	v, err := strictb64.URL.DecodeJSON("", data)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// backupBody is the plaintext of a backup blob.
type backupBody struct {
	Name     string          `json:"name"`
	Latest   string          `json:"latest"`
	Versions []versionRecord `json:"versions"`
}

// errNoBackupKey is returned by Backup and Restore when the service has no usable key.
var errNoBackupKey = errors.New("secrets: backup and restore are unavailable: the server has no 32-byte backup key")

// errCorruptBlob is the one answer to every unusable backup blob.
var errCorruptBlob = badParam("The backup blob is corrupt, truncated, or was made by another tenant or installation.")

// Backup returns a sealed blob holding every version of a secret (BackupSecret). A deleted
// secret is ErrSecretNotFound. A secret whose versions exceed MaxBackupBytes is refused with
// ErrBadParameter.
func (s *Service) Backup(ctx context.Context, v tenancy.Vault, base, name string) (BackupResult, error) {
	if s.backup == nil {
		return BackupResult{}, errNoBackupKey
	}
	sc, lc, err := target(v, base, name)
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
		body = backupBody{Name: meta.Name, Latest: meta.Latest}
		body.Versions, err = records.ReadAll[versionRecord](ctx, tx, sc.versionsPrefix(lc))
		return err
	})
	if err != nil {
		return BackupResult{}, err
	}
	plain, err := json.Marshal(body)
	if err != nil {
		return BackupResult{}, errors.New("backup: the secret cannot be encoded")
	}
	defer clear(plain)
	if len(plain)+s.backup.Overhead() > MaxBackupBytes {
		return BackupResult{}, badParam("Secret %s is too large to back up: its %d versions take %d bytes and a backup holds at most %d.", body.Name, len(body.Versions), len(plain), MaxBackupBytes)
	}
	blob, err := s.backup.Seal(plain, backupAADFor(sc.vault.TenantID))
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	return BackupResult{Value: blob}, nil
}

// backupAADFor is the associated data of a tenant's backup blobs.
func backupAADFor(tenantID string) []byte { return []byte(backupAAD + tenantID) }

// openBackup authenticates, decrypts and validates a blob.
func (s *Service) openBackup(sc scope, blob []byte) (*backupBody, error) {
	if len(blob) > MaxBackupBytes {
		return nil, errCorruptBlob
	}
	plain, err := s.backup.Open(blob, backupAADFor(sc.vault.TenantID))
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
	if !names.Object(body.Name) || len(body.Versions) == 0 || len(body.Versions) > maxBackupVersions {
		return nil, errCorruptBlob
	}
	seen := map[string]bool{}
	for _, ver := range body.Versions {
		if !validVersion(ver.Version) || seen[ver.Version] || ver.Managed || ver.KID != "" ||
			checkValue(ver.Value) != nil || checkContentType(ver.ContentType) != nil ||
			checkTags(ver.Tags) != nil || checkWindow(ver.NotBefore, ver.Expires) != nil {
			return nil, errCorruptBlob
		}
		seen[ver.Version] = true
	}
	if !seen[body.Latest] {
		return nil, errCorruptBlob
	}
	return &body, nil
}

// Restore restores a secret with all its versions from a Backup blob into the vault
// (RestoreSecret) and returns its latest version without the value. The name must be free:
// an existing secret is ErrConflict and a deleted one ErrDeletedButRecoverable. A corrupt
// blob, or one made for another tenant or installation, is ErrBadParameter.
func (s *Service) Restore(ctx context.Context, v tenancy.Vault, base string, blob []byte) (SecretBundle, error) {
	if s.backup == nil {
		return SecretBundle{}, errNoBackupKey
	}
	sc, err := newScope(v, base)
	if err != nil {
		return SecretBundle{}, err
	}
	body, err := s.openBackup(sc, blob)
	if err != nil {
		return SecretBundle{}, err
	}
	lc, _ := checkName(body.Name)
	var out SecretBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		var existing secretRecord
		found, err := records.Get(ctx, tx, sc.metaPath(lc), &existing)
		if err != nil {
			return err
		}
		if found && existing.Deleted != nil {
			return lifecycle.Deleted(existing.Name)
		}
		if found {
			return errorf(ErrConflict, "Secret %s already exists in this vault: delete and purge it, or restore into another vault.", existing.Name)
		}
		meta := secretRecord{Name: body.Name, Latest: body.Latest}
		var latest *versionRecord
		for i := range body.Versions {
			ver := &body.Versions[i]
			if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
				return err
			}
			if ver.Version == body.Latest {
				latest = ver
			}
		}
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
			return err
		}
		if err := records.Put(ctx, tx, sc.metaPath(lc), &meta); err != nil {
			return err
		}
		out = sc.bundle(&meta, latest, false)
		return nil
	})
	if err != nil {
		return SecretBundle{}, err
	}
	return out, nil
}
