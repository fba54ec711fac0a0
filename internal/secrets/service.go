package secrets

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Service implements the Key Vault secrets operations over a storage backend (the barrier in
// the server). It is safe for concurrent use; all state lives in storage.
type Service struct {
	store  storage.Backend
	now    func() time.Time
	backup *records.Sealer // nil when the backup key is not 32 bytes
	// metas and versions keep decoded records for reads (resolve).
	metas    *records.Decoded[secretRecord]
	versions *records.Decoded[versionRecord]
	// hooks gate purges on the clock and report scheduled purges (SetPurgeHooks).
	hooks records.PurgeHooks
}

// SetPurgeHooks connects purges to the server: h.Gate may hold every purge only the clock
// allows (scheduled purges, and user purges of purge-protected secrets past their date), and
// h.Purged is told of each scheduled purge. Call it before the Service is used.
func (s *Service) SetPurgeHooks(h records.PurgeHooks) { s.hooks = h }

// NewService returns a Service. clock is the time source (nil means time.Now); backupKey is
// the 32-byte AES-256 key that seals backup blobs (the server keeps it sealed by the barrier
// and it must be the same on every node of an installation). With a key of another length
// Backup and Restore fail and everything else works.
func NewService(store storage.Backend, clock func() time.Time, backupKey []byte) *Service {
	if clock == nil {
		clock = time.Now
	}
	s := &Service{store: store, now: clock, backup: records.NewSealer(backupKey),
		metas: records.NewDecoded(4096, cloneSecretRecord), versions: records.NewDecoded(4096, cloneVersionRecord)}
	return s
}

// clock returns the current time truncated to seconds (Key Vault times are unix seconds).
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

// scope is one vault's namespace and the URL its identifiers start with.
type scope struct {
	vault  tenancy.Vault
	prefix string // tenants/<tenant>/vaults/<vault>/
	base   string // https://<vault host>[:port], no trailing slash
}

// errNotVault is returned for a managed HSM pool (or an unknown kind): only vaults hold
// secrets, and the api layer routes secrets requests to vaults only.
var errNotVault = errors.New("secrets: only vaults hold secrets")

// newScope checks the vault the caller resolved and returns its namespace. An invalid vault
// is a programming error in the caller, so it is not a BadParameter.
func newScope(v tenancy.Vault, base string) (scope, error) {
	if v.Kind != tenancy.KindVault && v.Kind != "" {
		return scope{}, errNotVault
	}
	v.Kind = tenancy.KindVault
	if !names.Segment(v.TenantID) || !names.Segment(v.Name) {
		return scope{}, errors.New("secrets: the vault has no valid tenant id or name")
	}
	v.Name = strings.ToLower(v.Name)
	return scope{
		vault:  v,
		prefix: "tenants/" + v.TenantID + "/vaults/" + v.Name + "/",
		base:   strings.TrimRight(base, "/"),
	}, nil
}

// target is newScope and checkName together: the vault's scope and the lower-cased name.
func target(v tenancy.Vault, base, name string) (scope, string, error) {
	sc, err := newScope(v, base)
	if err != nil {
		return scope{}, "", err
	}
	lc, err := checkName(name)
	return sc, lc, err
}

// A vault's secret records, under its prefix (<name> is the lower-cased secret name):
//
//	secrets/<name>/meta                 secretRecord: display name, latest version, deletion
//	secrets/<name>/versions/<version>   versionRecord: value, content type, attributes, tags
//	secretindex/live/<name>             empty: the secret is live (List pages over these)
//	secretindex/deleted/<name>          empty: the secret is soft-deleted (ListDeleted pages)
//
// Every change to a secret rewrites its records and index entries in one transaction. The
// version records hold the values, so this layout must only ever be stored through the
// barrier. records.Objects holds the lifecycle code secrets share with keys and
// certificates.
var secretKind = records.Kind[secretRecord, versionRecord]{
	Object: "secrets/", Index: "secretindex/", PurgePrefix: purgePrefix,
	Head: func(m *secretRecord) records.Head {
		return records.Head{Name: &m.Name, Latest: &m.Latest, Deleted: &m.Deleted, PurgeIndex: &m.PurgeIndex}
	},
	NotFound:       lifecycle.Missing,
	NotDeleted:     lifecycle.NotDeleted,
	PurgeProtected: lifecycle.PurgeProtected,
	PurgeHeld:      lifecycle.PurgeHeld,
}

// secrets are the vault's secret records.
func (sc scope) secrets() records.Objects[secretRecord, versionRecord] {
	return records.Objects[secretRecord, versionRecord]{Kind: &secretKind, Prefix: sc.prefix}
}

func (sc scope) metaPath(lc string) string         { return sc.secrets().MetaPath(lc) }
func (sc scope) versionsPrefix(lc string) string   { return sc.secrets().VersionsPrefix(lc) }
func (sc scope) versionPath(lc, ver string) string { return sc.secrets().VersionPath(lc, ver) }
func (sc scope) liveIndex() string                 { return sc.secrets().LiveIndex() }

// id is a version's secret identifier; with version "" it is the versionless identifier.
func (sc scope) id(name, version string) string {
	if version == "" {
		return sc.base + "/secrets/" + name
	}
	return sc.base + "/secrets/" + name + "/" + version
}

// retention is the vault's soft-delete retention in days.
func (sc scope) retention() int { return records.Retention(sc.vault) }

// recoveryLevel is the DeletionRecoveryLevel of the vault's secrets.
func (sc scope) recoveryLevel() string { return records.RecoveryLevel(sc.vault) }

// secretRecord is the per-name record at secrets/<name>/meta.
type secretRecord struct {
	Name    string            `json:"name"`   // display casing
	Latest  string            `json:"latest"` // current version
	Deleted *records.Deletion `json:"deleted,omitempty"`
	// PurgeIndex is the scheduler index entry written for this secret's deletion.
	PurgeIndex string `json:"purgeIndex,omitempty"`
	// Managed marks the secret of a certificate: only the certificates service changes it
	// (managed.go); every other change is refused with ErrManaged.
	Managed bool `json:"managed,omitempty"`
}

// versionRecord is one secret version at secrets/<name>/versions/<version>. Value is the
// secret: this record must only ever be stored through the barrier.
type versionRecord struct {
	Version     string            `json:"version"`
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     int64             `json:"created"`
	Updated     int64             `json:"updated"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Managed and KID are set on the versions of certificate-backed secrets; LeafAt, on
	// those whose certificate keeps its chain's order (preserveCertOrder), is where the leaf
	// goes among the certificates when the value is converted (GetAs).
	Managed bool   `json:"managed,omitempty"`
	KID     string `json:"kid,omitempty"`
	LeafAt  int    `json:"leafAt,omitempty"`
}

func i64(v int64) *int64 { return &v }

func cloneI64(p *int64) *int64 {
	if p == nil {
		return nil
	}
	return i64(*p)
}

// kidURL renders a certificate secret's key id, stored relative to the vault URL.
func (sc scope) kidURL(kid string) string {
	if strings.HasPrefix(kid, "/") {
		return sc.base + kid
	}
	return kid
}

// attributes renders a version's attributes in the vault.
func (sc scope) attributes(ver *versionRecord) SecretAttributes {
	enabled, days := ver.Enabled, sc.retention()
	return SecretAttributes{
		Enabled:         &enabled,
		NotBefore:       cloneI64(ver.NotBefore),
		Expires:         cloneI64(ver.Expires),
		Created:         i64(ver.Created),
		Updated:         i64(ver.Updated),
		RecoverableDays: &days,
		RecoveryLevel:   sc.recoveryLevel(),
	}
}

// bundle renders a version as a SecretBundle; only withValue puts the value in.
func (sc scope) bundle(meta *secretRecord, ver *versionRecord, withValue bool) SecretBundle {
	b := SecretBundle{
		ID:          sc.id(meta.Name, ver.Version),
		ContentType: ver.ContentType,
		Attributes:  sc.attributes(ver),
		Tags:        copyTags(ver.Tags),
		KID:         sc.kidURL(ver.KID),
		Managed:     ver.Managed,
	}
	if withValue {
		v := Value(ver.Value)
		b.Value = &v
	}
	return b
}

// deletedBundle renders the latest version of a deleted secret, without its value.
func (sc scope) deletedBundle(meta *secretRecord, ver *versionRecord) DeletedSecretBundle {
	return DeletedSecretBundle{
		SecretBundle:       sc.bundle(meta, ver, false),
		RecoveryID:         sc.base + "/deletedsecrets/" + meta.Name,
		ScheduledPurgeDate: i64(meta.Deleted.PurgeDate),
		DeletedDate:        i64(meta.Deleted.Date),
	}
}

// item renders a version as a SecretItem; withVersion puts the version into the id.
func (sc scope) item(meta *secretRecord, ver *versionRecord, withVersion bool) SecretItem {
	v := ""
	if withVersion {
		v = ver.Version
	}
	return SecretItem{
		ID:          sc.id(meta.Name, v),
		Attributes:  sc.attributes(ver),
		Tags:        copyTags(ver.Tags),
		ContentType: ver.ContentType,
		Managed:     ver.Managed,
	}
}

// readSecret reads a secret's record, deleted or not; it returns ErrSecretNotFound if there
// is none.
func readSecret(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*secretRecord, error) {
	return sc.secrets().Read(ctx, r, lc, name)
}

// cloneSecretRecord copies m and everything it points to.
func cloneSecretRecord(m *secretRecord) *secretRecord {
	c := *m
	if m.Deleted != nil {
		d := *m.Deleted
		c.Deleted = &d
	}
	return &c
}

// cloneVersionRecord copies v and everything it points to.
func cloneVersionRecord(v *versionRecord) *versionRecord {
	c := *v
	c.NotBefore, c.Expires = cloneI64(v.NotBefore), cloneI64(v.Expires)
	c.Tags = maps.Clone(v.Tags)
	return &c
}

// readLive reads a secret that is not deleted.
func readLive(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*secretRecord, error) {
	return sc.secrets().ReadLive(ctx, r, lc, name)
}

// readVersion reads one version of a secret ("" is the latest).
func readVersion(ctx context.Context, r storage.Reader, sc scope, lc string, meta *secretRecord, version string) (*versionRecord, error) {
	return sc.secrets().ReadVersion(ctx, r, lc, meta, version)
}

// deletedItem renders the latest version of a deleted secret as a listing entry.
func (sc scope) deletedItem(meta *secretRecord, ver *versionRecord) DeletedSecretItem {
	b := sc.deletedBundle(meta, ver)
	return DeletedSecretItem{SecretItem: sc.item(meta, ver, false), RecoveryID: b.RecoveryID, ScheduledPurgeDate: b.ScheduledPurgeDate, DeletedDate: b.DeletedDate}
}

// isNotFound reports whether err is an ErrSecretNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrSecretNotFound) }
