package certificates

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
// certificate's key and secret from it. Body version 2 ("v":2) is a certificate with HSM
// key versions: those have no private key in the body; "hsmKey" carries them as a key
// backup body (keys.ManagedBackup: handles, and the keys wrapped inside the token by the
// tenant's certificate wrapping key when they may leave it), which the restore unwraps
// into the vault's token (docs/FORMAT.md, docs/HSM.md).
const (
	backupAAD = "coffer/certificate-backup/v1"
	// MaxBackupBytes bounds a backup blob.
	MaxBackupBytes    = 4 << 20
	maxBackupVersions = 1000
)

type backupBody struct {
	// V is the body version: absent (1) or 2 (HSMKey holds the HSM versions' keys).
	V             int             `json:"v,omitempty"`
	Name          string          `json:"name"`
	Latest        string          `json:"latest"`
	Policy        *Policy         `json:"policy"`
	PolicyCreated int64           `json:"policyCreated"`
	PolicyUpdated int64           `json:"policyUpdated"`
	Versions      []versionRecord `json:"versions"`
	// HSMKey is the key of the versions without a private key here (HSM keys).
	HSMKey *keys.ManagedBackup `json:"hsmKey,omitempty"`
}

// backupBodyHSM is the body version of certificates with HSM key versions.
const backupBodyHSM = 2

// hsmVersions are the versions whose key is an HSM key (no private key in the record).
func hsmVersions(vers []versionRecord) []string {
	var out []string
	for _, v := range vers {
		if len(v.Key) == 0 {
			out = append(out, v.Version)
		}
	}
	return out
}

var errNoBackupKey = errors.New("certificates: backup and restore are unavailable: the server has no 32-byte backup key")

// TokenWrapKeyIDLen is the length of a tenant's certificate wrapping key id.
const TokenWrapKeyIDLen = 16

// TokenWrapKey derives the tenant's certificate wrapping key, under which the HSM keys of
// the tenant's certificates leave their PKCS#11 token for certificate backups (docs/HSM.md,
// keys.WrapCertificateKeysWith): key = HKDF-SHA256(backupKey, salt none, info
// "coffer-certs/1 token-wrap " ‖ tenant id, 32 bytes), and its id (the token object's
// CKA_ID, not secret) = the first 16 bytes of the same with info "coffer-certs/1
// token-wrap-id " ‖ tenant id. backupKey is the certificates backup key, which also seals
// the backups: both stay with the installation, and each tenant has its own. The caller
// clears key.
func TokenWrapKey(backupKey []byte, tenantID string) (id, key []byte, err error) {
	if len(backupKey) != 32 {
		return nil, nil, errNoBackupKey
	}
	idk, err := hkdf.Key(sha256.New, backupKey, nil, "coffer-certs/1 token-wrap-id "+tenantID, 32)
	if err != nil {
		return nil, nil, err
	}
	if key, err = hkdf.Key(sha256.New, backupKey, nil, "coffer-certs/1 token-wrap "+tenantID, 32); err != nil {
		return nil, nil, err
	}
	return idk[:TokenWrapKeyIDLen], key, nil
}

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
		if body.Versions, err = records.ReadAll[versionRecord](ctx, tx, sc.versionsPrefix(lc)); err != nil {
			return err
		}
		if hsm := hsmVersions(body.Versions); len(hsm) > 0 {
			body.V = backupBodyHSM
			body.HSMKey, err = s.keys.BackupManaged(ctx, tx, sc.vault, meta.Name, hsm)
		}
		return err
	})
	if err != nil {
		return BackupResult{}, err
	}
	if body.HSMKey != nil {
		if err := s.keys.WrapManaged(ctx, sc.vault, body.HSMKey); err != nil {
			return BackupResult{}, err
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
		if !validVersion(ver.Version) || len(ver.Chain) == 0 || ver.LeafAt < 0 || ver.LeafAt >= len(ver.Chain) {
			return nil, errCorruptBlob
		}
		latest = latest || ver.Version == body.Latest
	}
	if !latest {
		return nil, errCorruptBlob
	}
	// Exactly the versions without a private key are in the HSM key's backup.
	hsm := hsmVersions(body.Versions)
	switch {
	case body.V == 0 && (len(hsm) > 0 || body.HSMKey != nil):
		return nil, errCorruptBlob
	case body.V == backupBodyHSM && (body.HSMKey == nil || !sameSet(hsm, body.HSMKey.Versions())):
		return nil, errCorruptBlob
	case body.V != 0 && body.V != backupBodyHSM:
		return nil, errCorruptBlob
	}
	return &body, nil
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && len(slices.Compact(a)) == len(b)
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
	if err := checkRestoreFree(ctx, s.store, sc, lc, body.Name); err != nil {
		return CertificateBundle{}, err
	}
	var rk *keys.RestoredKey
	if body.HSMKey != nil {
		if rk, err = s.keys.PrepareManagedRestore(ctx, sc.vault, sc.base, body.Name, body.HSMKey); err != nil {
			return CertificateBundle{}, err
		}
	}
	var preps []prepared
	discard := func() {
		for _, p := range preps {
			s.keys.DiscardManaged(ctx, p.key)
		}
		s.keys.DiscardManagedRestore(ctx, rk)
	}
	exportable := body.Policy.KeyProps != nil && body.Policy.KeyProps.Exportable != nil && *body.Policy.KeyProps.Exportable
	for _, ver := range ordered {
		p, err := s.restoreVersion(ctx, sc, body.Name, ver, rk, exportable)
		if err != nil {
			discard()
			return CertificateBundle{}, err
		}
		preps = append(preps, p)
	}
	var out CertificateBundle
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		if err := checkRestoreFree(ctx, tx, sc, lc, body.Name); err != nil {
			return err
		}
		if rk != nil {
			if err := s.keys.CheckManagedRestore(ctx, tx, rk); err != nil {
				return err
			}
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
				Enabled: ver.Enabled, NotBefore: i64(ver.NotBefore), Expires: i64(ver.Expires), LeafAt: ver.LeafAt,
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

// checkRestoreFree refuses a restore whose certificate name is taken in the vault, live
// (ErrConflict) or deleted (ErrDeletedButRecoverable).
func checkRestoreFree(ctx context.Context, r storage.Reader, sc scope, lc, name string) error {
	existing, err := readCert(ctx, r, sc, lc, name)
	switch {
	case err == nil && existing.Deleted != nil:
		return lifecycle.Deleted(existing.Name)
	case err == nil:
		return errorf(ErrConflict, "Certificate %s already exists in this vault; delete and purge it, or restore into another vault.", existing.Name)
	case !isNotFound(err):
		return err
	}
	return nil
}

// prepared is a restored version's key and secret content.
type prepared struct {
	key     *keys.PreparedKey
	content string
}

// restoreVersion prepares the key and secret content of one backed-up version: a software
// key is imported into the provider, an HSM key comes from rk (unwrapped into the vault's
// token, or taken by its handle) and must be the leaf's key.
func (s *Service) restoreVersion(ctx context.Context, sc scope, name string, ver *versionRecord, rk *keys.RestoredKey, exportable bool) (prepared, error) {
	chain := make([]*x509.Certificate, 0, len(ver.Chain))
	for _, der := range ver.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return prepared{}, errCorruptBlob
		}
		chain = append(chain, c)
	}
	if len(ver.Key) == 0 {
		pk := rk.Prepared(ver.Version)
		if pk == nil {
			return prepared{}, errCorruptBlob
		}
		signer, err := pk.Signer(ctx)
		if err != nil || !samePublic(chain[0].PublicKey, signer.Public()) {
			return prepared{}, errCorruptBlob
		}
		content, err := pki.EncodeAt(ver.ContentType, nil, chain, ver.LeafAt)
		if err != nil {
			return prepared{}, errCorruptBlob
		}
		return prepared{key: pk, content: content}, nil
	}
	key, err := parseKey(ver.Key)
	if err != nil {
		return prepared{}, errCorruptBlob
	}
	var contentKey any
	if exportable {
		contentKey = key
	}
	content, err := pki.EncodeAt(ver.ContentType, contentKey, chain, ver.LeafAt)
	if err != nil {
		return prepared{}, errCorruptBlob
	}
	d := newVersionDraft{version: ver.Version, key: key, chain: chain, enabled: ver.Enabled}
	pk, err := s.prepareKey(ctx, sc, name, d, "", i64(ver.NotBefore), i64(ver.Expires))
	if err != nil {
		return prepared{}, err
	}
	return prepared{key: pk, content: content}, nil
}
