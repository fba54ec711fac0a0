package certificates

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Backup blob format, version 1:
//
//	blob = 0x01 ‖ nonce (12 bytes) ‖ AES-256-GCM(backupKey, nonce, JSON backupBody, aad)
//	aad  = "coffer/certificate-backup/v1" ‖ tenant id
//
// The body holds the policy and every version with its chain and private key, so the blob
// is sealed and restores only in the same installation and tenant. Restore rebuilds the
// certificate's key and secret from it.
const (
	backupAAD = "coffer/certificate-backup/v1"
	// MaxBackupBytes bounds a backup blob.
	MaxBackupBytes    = 4 << 20
	maxBackupVersions = 1000
)

type backupBody struct {
	Name          string          `json:"name"`
	Latest        string          `json:"latest"`
	Policy        *Policy         `json:"policy"`
	PolicyCreated int64           `json:"policyCreated"`
	PolicyUpdated int64           `json:"policyUpdated"`
	Versions      []versionRecord `json:"versions"`
}

var errNoBackupKey = errors.New("certificates: backup and restore are unavailable: the server has no 32-byte backup key")

var errCorruptBlob = errorf(ErrBadParameter, "The backup blob is corrupt, truncated, or was made by another tenant or installation.")

// Backup returns a sealed blob holding the certificate with every version and key
// (BackupCertificate).
func (s *Service) Backup(ctx context.Context, v tenancy.Vault, name string) (BackupResult, error) {
	if s.backup == nil {
		return BackupResult{}, errNoBackupKey
	}
	sc, lc, err := target(v, "", name)
	if err != nil {
		return BackupResult{}, err
	}
	var body backupBody
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		meta, err := readLive(ctx, tx, sc, lc, name)
		if err != nil {
			return err
		}
		body = backupBody{Name: meta.Name, Latest: meta.Latest, Policy: meta.Policy, PolicyCreated: meta.PolicyCreated, PolicyUpdated: meta.PolicyUpdated}
		body.Versions, err = records.ReadAll[versionRecord](ctx, tx, sc.versionsPrefix(lc))
		return err
	})
	if err != nil {
		return BackupResult{}, err
	}
	for _, ver := range body.Versions {
		if len(ver.Key) == 0 {
			return BackupResult{}, badParam("Certificate %s has an HSM key, which cannot leave the HSM: its backup is not supported yet.", body.Name)
		}
	}
	plain, err := json.Marshal(body)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: encode: %w", err)
	}
	defer clear(plain)
	blob, err := s.backup.Seal(plain, []byte(backupAAD+sc.vault.TenantID))
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	if len(blob) > MaxBackupBytes {
		return BackupResult{}, badParam("The certificate is too large to back up (%d bytes; the limit is %d).", len(blob), MaxBackupBytes)
	}
	return BackupResult{Value: provider.B64(blob)}, nil
}

// openBackup authenticates, decrypts and validates a blob.
func (s *Service) openBackup(sc scope, blob []byte) (*backupBody, error) {
	if len(blob) > MaxBackupBytes {
		return nil, errCorruptBlob
	}
	plain, err := s.backup.Open(blob, []byte(backupAAD+sc.vault.TenantID))
	if err != nil {
		return nil, errCorruptBlob
	}
	defer clear(plain)
	var body backupBody
	if err := json.Unmarshal(plain, &body); err != nil {
		return nil, errCorruptBlob
	}
	if _, err := checkName(body.Name); err != nil || body.Policy == nil || len(body.Versions) == 0 || len(body.Versions) > maxBackupVersions {
		return nil, errCorruptBlob
	}
	latest := false
	for _, ver := range body.Versions {
		if !validVersion(ver.Version) || len(ver.Chain) == 0 {
			return nil, errCorruptBlob
		}
		latest = latest || ver.Version == body.Latest
	}
	if !latest {
		return nil, errCorruptBlob
	}
	return &body, nil
}

// Restore rebuilds a backed-up certificate, its key and its secret (RestoreCertificate).
// The name must be free in this vault (as certificate, key and secret).
func (s *Service) Restore(ctx context.Context, v tenancy.Vault, base string, blob []byte) (CertificateBundle, error) {
	if s.backup == nil {
		return CertificateBundle{}, errNoBackupKey
	}
	sc, err := newScope(v, base)
	if err != nil {
		return CertificateBundle{}, err
	}
	body, err := s.openBackup(sc, blob)
	if err != nil {
		return CertificateBundle{}, err
	}
	defer func() {
		for i := range body.Versions {
			clear(body.Versions[i].Key)
		}
	}()
	lc, _ := checkName(body.Name)
	// Latest last, so that it ends up the latest key and secret version.
	ordered := make([]*versionRecord, 0, len(body.Versions))
	var latest *versionRecord
	for i := range body.Versions {
		if body.Versions[i].Version == body.Latest {
			latest = &body.Versions[i]
			continue
		}
		ordered = append(ordered, &body.Versions[i])
	}
	ordered = append(ordered, latest)
	type prepared struct {
		key     *keys.PreparedKey
		content string
	}
	var preps []prepared
	discard := func() {
		for _, p := range preps {
			s.keys.DiscardManaged(ctx, p.key)
		}
	}
	exportable := body.Policy.KeyProps != nil && body.Policy.KeyProps.Exportable != nil && *body.Policy.KeyProps.Exportable
	for _, ver := range ordered {
		key, err := parseKey(ver.Key)
		if err != nil {
			discard()
			return CertificateBundle{}, errCorruptBlob
		}
		chain := make([]*x509.Certificate, 0, len(ver.Chain))
		for _, der := range ver.Chain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				discard()
				return CertificateBundle{}, errCorruptBlob
			}
			chain = append(chain, c)
		}
		var contentKey any
		if exportable {
			contentKey = key
		}
		content, err := pki.Encode(ver.ContentType, contentKey, chain)
		if err != nil {
			discard()
			return CertificateBundle{}, errCorruptBlob
		}
		jwk, err := provider.PrivateJWK(key)
		if err != nil {
			discard()
			return CertificateBundle{}, errCorruptBlob
		}
		pk, err := s.keys.PrepareManaged(ctx, sc.vault, sc.base, body.Name, keys.ManagedKey{
			Version: ver.Version, Key: jwk, KeyOps: keyOpsFor(chain[0].KeyUsage), Enabled: ver.Enabled, NotBefore: i64(ver.NotBefore), Expires: i64(ver.Expires),
		})
		if err != nil {
			discard()
			return CertificateBundle{}, err
		}
		preps = append(preps, prepared{key: pk, content: content})
	}
	var out CertificateBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		existing, err := readCert(ctx, tx, sc, lc, body.Name)
		switch {
		case err == nil && existing.Deleted != nil:
			return lifecycle.Deleted(existing.Name)
		case err == nil:
			return errorf(ErrConflict, "Certificate %s already exists in this vault; delete and purge it, or restore into another vault.", existing.Name)
		case !isNotFound(err):
			return err
		}
		meta := &certRecord{Name: body.Name, Latest: body.Latest, Policy: body.Policy, PolicyCreated: body.PolicyCreated, PolicyUpdated: body.PolicyUpdated}
		for i, ver := range ordered {
			if err := records.Put(ctx, tx, sc.versionPath(lc, ver.Version), ver); err != nil {
				return err
			}
			if err := s.keys.CommitManaged(ctx, tx, preps[i].key); err != nil {
				return err
			}
			if err := s.secrets.PutManaged(ctx, tx, sc.vault, body.Name, secrets.ManagedVersion{
				Version: ver.Version, Value: secrets.Value(preps[i].content), ContentType: ver.ContentType, KID: preps[i].key.KID(),
				Enabled: ver.Enabled, NotBefore: i64(ver.NotBefore), Expires: i64(ver.Expires),
			}); err != nil {
				return err
			}
		}
		if err := tx.Put(ctx, sc.liveIndex()+lc, nil); err != nil {
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
	if err != nil {
		discard()
		return CertificateBundle{}, mapManaged(err)
	}
	return out, nil
}
