package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Service implements the Key Vault keys operations over a storage backend (the barrier in the
// server) and a crypto provider. It is safe for concurrent use; all state lives in storage.
type Service struct {
	store  storage.Backend
	prov   provider.Provider
	now    func() time.Time
	backup *records.Sealer // nil when the backup key is not 32 bytes
	keys   keyCache
	// versions and metas keep decoded records (versioncache.go).
	versions *records.Decoded[versionRecord]
	metas    *records.Decoded[keyRecord]
	// hsmPools: managed HSM pools hold HSM key types only (RequireHSMInPools).
	hsmPools bool
	// rsa15Off: RSA1_5 encrypt, decrypt, wrapKey and unwrapKey are refused (DisableRSA15).
	rsa15Off bool
	// poolBackupKey, if set, seals managed HSM pools' backups (poolbackup.go).
	poolBackupKey PoolBackupKey
	// poolWrapKey, if set, wraps pools' HSM keys into their backups (sdwrap.go).
	poolWrapKey PoolWrapKey
	// certWrapKey, if set, wraps the HSM keys of vaults' certificates into certificate
	// backups (certkeys.go).
	certWrapKey PoolWrapKey
	// cpu, if set, shares the CPU of software RSA work among tenants (ShareCPU).
	cpu CPUShare
	// creates, if set, limits key creations per vault (LimitCreates).
	creates CreateLimiter
	// hooks gate purges on the clock and report scheduled purges (SetPurgeHooks).
	hooks records.PurgeHooks
	// gcm counts oct-HSM keys' AES-GCM encryptions (gcmlimit.go).
	gcm *gcmCounters
}

// SetPurgeHooks connects purges to the server: h.Gate may hold every purge only the clock
// allows (scheduled purges, and user purges of purge-protected keys past their date), and
// h.Purged is told of each scheduled purge. Call it before the Service is used.
func (s *Service) SetPurgeHooks(h records.PurgeHooks) { s.hooks = h }

// NewService returns a Service. clock is the time source (nil means time.Now); backupKey is
// the 32-byte AES-256 key that seals backup blobs (the server keeps it sealed by the barrier
// and it must be the same on every node of an installation). With a key of another length
// Backup and Restore fail and everything else works.
func NewService(store storage.Backend, prov provider.Provider, clock func() time.Time, backupKey []byte) *Service {
	if clock == nil {
		clock = time.Now
	}
	s := &Service{store: store, prov: prov, now: clock, keys: keyCache{max: 4096}, versions: records.NewDecoded(4096, cloneVersion), metas: records.NewDecoded(4096, cloneKeyRecord), backup: records.NewSealer(backupKey), gcm: newGCMCounters()}
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

// store names the vault as provider.KeySpec.Store does: "vaults/<vault>" or
// "managedhsms/<pool>", lower case (vault names are unique across tenants).
func (sc scope) store() string {
	seg, _ := kindSegment(sc.vault.Kind) // checked by newScope
	return seg + "/" + sc.vault.Name
}

// pool reports whether the scope is a managed HSM pool, whose HSM keys are protected by its
// security domain (provider.KeySpec.SecurityDomain).
func (sc scope) pool() bool { return sc.vault.Kind == tenancy.KindManagedHSM }

// kindSegment is the path segment of a vault kind.
func kindSegment(k tenancy.Kind) (string, error) {
	switch k {
	case tenancy.KindVault, "":
		return "vaults", nil
	case tenancy.KindManagedHSM:
		return "managedhsms", nil
	}
	return "", fmt.Errorf("keys: vault kind %q is unknown", k)
}

// newScope checks the vault the caller resolved and returns its namespace. An invalid vault
// is a programming error in the caller, so it is not a BadParameter.
func newScope(v tenancy.Vault, base string) (scope, error) {
	seg, err := kindSegment(v.Kind)
	if err != nil {
		return scope{}, err
	}
	if !names.Segment(v.TenantID) || !names.Segment(v.Name) {
		return scope{}, errors.New("keys: the vault has no valid tenant id or name")
	}
	v.Name = strings.ToLower(v.Name)
	return scope{
		vault:  v,
		prefix: "tenants/" + v.TenantID + "/" + seg + "/" + v.Name + "/",
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

// A vault's key records, under its prefix (<name> is the lower-cased key name):
//
//	keys/<name>/meta                 keyRecord: display name, latest version, deletion, rotation policy
//	keys/<name>/versions/<version>   versionRecord: attributes, tags, public JWK, provider handle
//	keyindex/live/<name>             empty: the key is live (List pages over these)
//	keyindex/deleted/<name>          empty: the key is soft-deleted (ListDeleted pages over these)
//
// Every change to a key rewrites its records and index entries in one transaction;
// records.Objects holds the lifecycle code keys share with secrets and certificates.
var keyKind = records.Kind[keyRecord, versionRecord]{
	Object: "keys/", Index: "keyindex/", PurgePrefix: purgePrefix,
	Head: func(m *keyRecord) records.Head {
		return records.Head{Name: &m.Name, Latest: &m.Latest, Deleted: &m.Deleted, PurgeIndex: &m.PurgeIndex}
	},
	NotFound:       lifecycle.Missing,
	NotDeleted:     lifecycle.NotDeleted,
	PurgeProtected: lifecycle.PurgeProtected,
	PurgeHeld:      lifecycle.PurgeHeld,
}

// keys are the vault's key records.
func (sc scope) keys() records.Objects[keyRecord, versionRecord] {
	return records.Objects[keyRecord, versionRecord]{Kind: &keyKind, Prefix: sc.prefix}
}

func (sc scope) metaPath(lc string) string         { return sc.keys().MetaPath(lc) }
func (sc scope) versionsPrefix(lc string) string   { return sc.keys().VersionsPrefix(lc) }
func (sc scope) versionPath(lc, ver string) string { return sc.keys().VersionPath(lc, ver) }
func (sc scope) liveIndex() string                 { return sc.keys().LiveIndex() }

// kid is a version's key identifier; with version "" it is the versionless identifier.
func (sc scope) kid(name, version string) string {
	if version == "" {
		return sc.base + "/keys/" + name
	}
	return sc.base + "/keys/" + name + "/" + version
}

// retention is the vault's soft-delete retention in days.
func (sc scope) retention() int { return records.Retention(sc.vault) }

// recoveryLevel is the DeletionRecoveryLevel of the vault's keys.
func (sc scope) recoveryLevel() string { return records.RecoveryLevel(sc.vault) }

// keyRecord is the per-name record at keys/<name>/meta.
type keyRecord struct {
	Name    string            `json:"name"`   // display casing
	Latest  string            `json:"latest"` // current version
	Deleted *records.Deletion `json:"deleted,omitempty"`
	// Policy is the rotation policy, without its id.
	Policy *KeyRotationPolicy `json:"policy,omitempty"`
	// RotateIndex and PurgeIndex are the scheduler index entries written for this key.
	RotateIndex string `json:"rotateIndex,omitempty"`
	PurgeIndex  string `json:"purgeIndex,omitempty"`
	// Managed marks the key of a certificate: only the certificates service changes it
	// (managed.go); every other change is refused with ErrManaged.
	Managed bool `json:"managed,omitempty"`
}

// versionRecord is one key version at keys/<name>/versions/<version>. Handle is the
// provider's handle: for the software provider it holds the private key, so this record
// must only ever be stored through the barrier.
type versionRecord struct {
	Version        string            `json:"version"`
	Kty            provider.KeyType  `json:"kty"`
	Size           int               `json:"size,omitempty"`
	Curve          provider.Curve    `json:"crv,omitempty"`
	PublicExponent int               `json:"publicExponent,omitempty"`
	Handle         []byte            `json:"handle"`
	Public         *storedJWK        `json:"public"`
	KeyOps         []string          `json:"keyOps"`
	Enabled        bool              `json:"enabled"`
	NotBefore      *int64            `json:"nbf,omitempty"`
	Expires        *int64            `json:"exp,omitempty"`
	Exportable     bool              `json:"exportable,omitempty"`
	Created        int64             `json:"created"`
	Updated        int64             `json:"updated"`
	Tags           map[string]string `json:"tags,omitempty"`
	ReleasePolicy  *ReleasePolicy    `json:"releasePolicy,omitempty"`
}

// storedJWK is a version's public JWK as stored: the record is authenticated by the
// barrier, so it is decoded with plain encoding/json rather than provider.ParseJWK's strict
// request parser (which scans for duplicate members and was a fifth of a key read's CPU).
type storedJWK provider.JWK

// publicJWK copies only the public members of a JWK, whatever the provider returned.
func publicJWK(j *provider.JWK) *provider.JWK {
	if j == nil {
		return nil
	}
	cp := func(b provider.B64) provider.B64 {
		if len(b) == 0 {
			return nil
		}
		return append(provider.B64(nil), b...)
	}
	return &provider.JWK{Kty: j.Kty, N: cp(j.N), E: cp(j.E), Crv: j.Crv, X: cp(j.X), Y: cp(j.Y)}
}

func i64(v int64) *int64 { return &v }

func cloneI64(p *int64) *int64 {
	if p == nil {
		return nil
	}
	return i64(*p)
}

// attributes renders a version's attributes in the vault.
func (sc scope) attributes(ver *versionRecord) KeyAttributes {
	enabled, exportable, days := ver.Enabled, ver.Exportable, sc.retention()
	a := KeyAttributes{
		Enabled:         &enabled,
		NotBefore:       cloneI64(ver.NotBefore),
		Expires:         cloneI64(ver.Expires),
		Created:         i64(ver.Created),
		Updated:         i64(ver.Updated),
		RecoverableDays: &days,
		RecoveryLevel:   sc.recoveryLevel(),
		Exportable:      &exportable,
	}
	if baseType(ver.Kty) == provider.Oct && ver.Size > 0 {
		size := ver.Size
		a.KeySize = &size
	}
	return a
}

// bundle renders a version as a KeyBundle.
func (sc scope) bundle(meta *keyRecord, ver *versionRecord) KeyBundle {
	jwk := publicJWK((*provider.JWK)(ver.Public))
	if jwk == nil {
		jwk = &provider.JWK{Kty: ver.Kty}
	}
	jwk.KID = sc.kid(meta.Name, ver.Version)
	jwk.KeyOps = append([]string(nil), ver.KeyOps...)
	return KeyBundle{
		Key:           jwk,
		Attributes:    sc.attributes(ver),
		Tags:          copyTags(ver.Tags),
		Managed:       meta.Managed,
		ReleasePolicy: copyPolicy(ver.ReleasePolicy),
	}
}

// deletedBundle renders the latest version of a deleted key.
func (sc scope) deletedBundle(meta *keyRecord, ver *versionRecord) DeletedKeyBundle {
	return DeletedKeyBundle{
		KeyBundle:          sc.bundle(meta, ver),
		RecoveryID:         sc.base + "/deletedkeys/" + meta.Name,
		ScheduledPurgeDate: i64(meta.Deleted.PurgeDate),
		DeletedDate:        i64(meta.Deleted.Date),
	}
}

// item renders a version as a KeyItem; withVersion puts the version into the kid.
func (sc scope) item(meta *keyRecord, ver *versionRecord, withVersion bool) KeyItem {
	v := ""
	if withVersion {
		v = ver.Version
	}
	return KeyItem{KID: sc.kid(meta.Name, v), Attributes: sc.attributes(ver), Tags: copyTags(ver.Tags), Managed: meta.Managed}
}

// deletedItem renders the latest version of a deleted key as a listing entry.
func (sc scope) deletedItem(meta *keyRecord, ver *versionRecord) DeletedKeyItem {
	b := sc.deletedBundle(meta, ver)
	return DeletedKeyItem{KeyItem: sc.item(meta, ver, false), RecoveryID: b.RecoveryID, ScheduledPurgeDate: b.ScheduledPurgeDate, DeletedDate: b.DeletedDate}
}

// readKey reads a key's record, deleted or not; it returns ErrKeyNotFound if there is none.
func readKey(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*keyRecord, error) {
	return sc.keys().Read(ctx, r, lc, name)
}

// readLive reads a key that is not deleted.
func readLive(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*keyRecord, error) {
	return sc.keys().ReadLive(ctx, r, lc, name)
}

// readVersion reads one version of a key ("" is the latest).
func readVersion(ctx context.Context, r storage.Reader, sc scope, lc string, meta *keyRecord, version string) (*versionRecord, error) {
	return sc.keys().ReadVersion(ctx, r, lc, meta, version)
}

// resolve validates name and version and reads a live key's version.
func (s *Service) resolve(ctx context.Context, sc scope, name, version string) (*keyRecord, *versionRecord, error) {
	return s.resolveAs(ctx, sc, name, version, false)
}

// resolveShared is resolve for callers that only read the records (records.GetShared):
// a GET that renders them into a fresh bundle, an operation that loads the key.
func (s *Service) resolveShared(ctx context.Context, sc scope, name, version string) (*keyRecord, *versionRecord, error) {
	return s.resolveAs(ctx, sc, name, version, true)
}

func (s *Service) resolveAs(ctx context.Context, sc scope, name, version string, shared bool) (*keyRecord, *versionRecord, error) {
	lc, err := checkName(name)
	if err != nil {
		return nil, nil, err
	}
	if version, err = checkVersion(version); err != nil {
		return nil, nil, err
	}
	meta, err := s.readLiveCached(ctx, sc, lc, name, shared)
	if err != nil {
		return nil, nil, err
	}
	ver, err := s.readVersionCached(ctx, sc, lc, meta, version, shared)
	if err != nil {
		return nil, nil, err
	}
	return meta, ver, nil
}
