package certificates

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/attrs"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Service implements the Key Vault certificates operations. The keys and secrets services it
// is given must work on the same storage backend: a certificate's key and secret are written
// in the certificate's own transactions. It is safe for concurrent use.
type Service struct {
	store   storage.Backend
	keys    *keys.Service
	secrets *secrets.Service
	now     func() time.Time
	backup  *records.Sealer // nil when the backup key is not 32 bytes
	log     *slog.Logger
	// hooks gate purges on the clock and report scheduled purges (SetPurgeHooks).
	hooks records.PurgeHooks
}

// SetPurgeHooks connects purges to the server: h.Gate may hold every purge only the clock
// allows (scheduled purges, and user purges of purge-protected certificates past their
// date), and h.Purged is told of each scheduled purge. The certificate's key and secret are
// gated by the keys' and secrets' own hooks. Call it before the Service is used.
func (s *Service) SetPurgeHooks(h records.PurgeHooks) { s.hooks = h }

// NewService returns a Service. clock is the time source (nil means time.Now); backupKey is
// the 32-byte AES-256 key that seals backup blobs (sealed by the barrier in the server).
func NewService(store storage.Backend, keysSvc *keys.Service, secretsSvc *secrets.Service, clock func() time.Time, backupKey []byte, log *slog.Logger) *Service {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, keys: keysSvc, secrets: secretsSvc, now: clock, log: log, backup: records.NewSealer(backupKey)}
	return s
}

// clock returns the current time truncated to seconds (Key Vault times are unix seconds).
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

// checkName validates a certificate (or issuer) name and returns its lower-cased form.
func checkName(name string) (string, error) {
	if !names.Object(name) {
		return "", badParam("Certificate name %.140q is invalid: use 1-127 letters, digits and '-'.", name)
	}
	return strings.ToLower(name), nil
}

// checkVersion validates a version ("" means latest).
func checkVersion(version string) (string, error) {
	if version == "" {
		return "", nil
	}
	v := strings.ToLower(version)
	if !names.Version(v) {
		return "", badParam("Certificate version %.40q is invalid: a version is 32 hexadecimal characters.", version)
	}
	return v, nil
}

func validVersion(s string) bool { return names.Version(s) }

// scope is one vault's namespace and the URL its identifiers start with.
type scope struct {
	vault  tenancy.Vault
	prefix string // tenants/<tenant>/vaults/<vault>/
	base   string // https://<vault host>[:port], no trailing slash
}

// newScope checks the vault the caller resolved. Only vaults hold certificates.
func newScope(v tenancy.Vault, base string) (scope, error) {
	if v.Kind != tenancy.KindVault && v.Kind != "" {
		return scope{}, errors.New("certificates: only vaults hold certificates")
	}
	v.Kind = tenancy.KindVault
	if !names.Segment(v.TenantID) || !names.Segment(v.Name) {
		return scope{}, errors.New("certificates: the vault has no valid tenant id or name")
	}
	v.Name = strings.ToLower(v.Name)
	return scope{vault: v, prefix: "tenants/" + v.TenantID + "/vaults/" + v.Name + "/", base: strings.TrimRight(base, "/")}, nil
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

// A vault's certificate records, under its prefix (<name> lower-cased):
//
//	certs/<name>/meta                 certRecord: display name, latest version, policy,
//	                                  pending operation, deletion
//	certs/<name>/versions/<version>   versionRecord: certificate chain, private key, attributes
//	certindex/live/<name>             empty: listed (also while only a CSR is pending)
//	certindex/deleted/<name>          empty: soft-deleted
//	certcontacts                      Contacts
//	certissuers/<name>                issuerRecord
//	certevents/<time>-<random>        Event
//
// The version records hold private keys: this layout is only ever stored through the
// barrier. records.Objects holds the lifecycle code certificates share with keys and
// secrets.
var certKind = records.Kind[certRecord, versionRecord]{
	Object: "certs/", Index: "certindex/", PurgePrefix: purgePrefix,
	Head: func(m *certRecord) records.Head {
		return records.Head{Name: &m.Name, Latest: &m.Latest, Deleted: &m.Deleted, PurgeIndex: &m.PurgeIndex}
	},
	Usable:         func(v *versionRecord) bool { return len(v.Chain) > 0 },
	NotFound:       lifecycle.Missing,
	NotDeleted:     lifecycle.NotDeleted,
	PurgeProtected: lifecycle.PurgeProtected,
	PurgeHeld:      lifecycle.PurgeHeld,
}

// certs are the vault's certificate records.
func (sc scope) certs() records.Objects[certRecord, versionRecord] {
	return records.Objects[certRecord, versionRecord]{Kind: &certKind, Prefix: sc.prefix}
}

func (sc scope) metaPath(lc string) string         { return sc.certs().MetaPath(lc) }
func (sc scope) versionsPrefix(lc string) string   { return sc.certs().VersionsPrefix(lc) }
func (sc scope) versionPath(lc, ver string) string { return sc.certs().VersionPath(lc, ver) }
func (sc scope) liveIndex() string                 { return sc.certs().LiveIndex() }
func (sc scope) contactsPath() string              { return sc.prefix + "certcontacts" }
func (sc scope) issuersPrefix() string             { return sc.prefix + "certissuers/" }
func (sc scope) eventsPrefix() string              { return sc.prefix + "certevents/" }

// id is a certificate identifier; with version "" the versionless one.
func (sc scope) id(name, version string) string {
	if version == "" {
		return sc.base + "/certificates/" + name
	}
	return sc.base + "/certificates/" + name + "/" + version
}

func (sc scope) retention() int { return records.Retention(sc.vault) }

func (sc scope) recoveryLevel() string { return records.RecoveryLevel(sc.vault) }

// certRecord is the per-name record at certs/<name>/meta.
type certRecord struct {
	Name   string `json:"name"`
	Latest string `json:"latest,omitempty"` // "" while only a CSR is pending
	// Policy is the current policy (normalised, without id); PolicyCreated/Updated date it.
	Policy        *Policy           `json:"policy"`
	PolicyCreated int64             `json:"policyCreated"`
	PolicyUpdated int64             `json:"policyUpdated"`
	Pending       *pendingRecord    `json:"pending,omitempty"`
	Deleted       *records.Deletion `json:"deleted,omitempty"`
	// PurgeIndex and RenewIndex are the scheduler entries written for this certificate;
	// Notified is the latest version an EmailContacts notice was recorded for.
	PurgeIndex string `json:"purgeIndex,omitempty"`
	RenewIndex string `json:"renewIndex,omitempty"`
	Notified   string `json:"notified,omitempty"`
}

// versionRecord is one certificate version. Key is the PKCS#8 private key of a software
// key (kept for reuse_key renewals and backups; empty for an HSM key, which only the
// managed key version refers to); the record must only be stored through the barrier.
// PreserveOrder is the preserveCertOrder the version was made with; then LeafAt is the
// position the leaf had in the chain as given (the others keep their order in Chain).
type versionRecord struct {
	Version       string            `json:"version"`
	Chain         [][]byte          `json:"chain"` // DER, leaf first
	Key           []byte            `json:"key"`
	PreserveOrder bool              `json:"preserveCertOrder,omitempty"`
	LeafAt        int               `json:"leafAt,omitempty"`
	ContentType   string            `json:"contentType"`
	Enabled       bool              `json:"enabled"`
	NotBefore     int64             `json:"nbf"`
	Expires       int64             `json:"exp"`
	Created       int64             `json:"created"`
	Updated       int64             `json:"updated"`
	Tags          map[string]string `json:"tags,omitempty"`
}

// pendingRecord is a certificate operation. For the Unknown issuer it holds the CSR's
// private key until the signed certificate is merged: a software key as PKCS#8 (Key), an
// HSM key by its provider handle (KeyHandle), which names a token object; KeyReused is the
// version whose object that is when the policy reuses keys (the object is then that
// version's, never destroyed with the operation).
type pendingRecord struct {
	RequestID     string            `json:"requestId"`
	Status        string            `json:"status"`
	StatusDetails string            `json:"statusDetails,omitempty"`
	Error         *OpError          `json:"error,omitempty"`
	Issuer        IssuerParams      `json:"issuer"`
	CSR           []byte            `json:"csr,omitempty"`
	Key           []byte            `json:"key,omitempty"`
	KeyHandle     []byte            `json:"keyHandle,omitempty"`
	KeyReused     string            `json:"keyReused,omitempty"`
	PreserveOrder bool              `json:"preserveCertOrder,omitempty"`
	Cancel        bool              `json:"cancel,omitempty"`
	Target        string            `json:"target,omitempty"`
	Enabled       bool              `json:"enabled"`
	Tags          map[string]string `json:"tags,omitempty"`
}

// Operation statuses.
const (
	statusInProgress = "inProgress"
	statusCompleted  = "completed"
	statusFailed     = "failed"
	statusCancelled  = "cancelled"
)

func i64(v int64) *int64 { return &v }
func boolp(b bool) *bool { return &b }

// attributes renders a version's attributes.
func (sc scope) attributes(ver *versionRecord) Attributes {
	days := sc.retention()
	return Attributes{
		Enabled:         boolp(ver.Enabled),
		NotBefore:       i64(ver.NotBefore),
		Expires:         i64(ver.Expires),
		Created:         i64(ver.Created),
		Updated:         i64(ver.Updated),
		RecoverableDays: &days,
		RecoveryLevel:   sc.recoveryLevel(),
	}
}

// policy renders the current policy with its id and attributes.
func (sc scope) policy(meta *certRecord, enabled bool) *Policy {
	p := clonePolicy(meta.Policy)
	p.ID = sc.id(meta.Name, "") + "/policy"
	p.Attributes = &Attributes{Enabled: boolp(enabled), Created: i64(meta.PolicyCreated), Updated: i64(meta.PolicyUpdated)}
	return p
}

// bundle renders a version.
func (sc scope) bundle(meta *certRecord, ver *versionRecord) CertificateBundle {
	return CertificateBundle{
		ID:          sc.id(meta.Name, ver.Version),
		KID:         sc.base + "/keys/" + meta.Name + "/" + ver.Version,
		SID:         sc.base + "/secrets/" + meta.Name + "/" + ver.Version,
		X5T:         pki.Thumbprint(ver.Chain[0]),
		Policy:      sc.policy(meta, ver.Enabled),
		CER:         append([]byte(nil), ver.Chain[0]...),
		ContentType: ver.ContentType,
		Attributes:  sc.attributes(ver),
		Tags:        attrs.CopyTags(ver.Tags),
		Preserve:    ver.PreserveOrder,
	}
}

// deletedBundle renders the latest version of a deleted certificate.
func (sc scope) deletedBundle(meta *certRecord, ver *versionRecord) DeletedCertificateBundle {
	return DeletedCertificateBundle{
		CertificateBundle:  sc.bundle(meta, ver),
		RecoveryID:         sc.base + "/deletedcertificates/" + meta.Name,
		ScheduledPurgeDate: i64(meta.Deleted.PurgeDate),
		DeletedDate:        i64(meta.Deleted.Date),
	}
}

// item renders a version as a listing entry.
func (sc scope) item(meta *certRecord, ver *versionRecord, withVersion bool) CertificateItem {
	v := ""
	if withVersion {
		v = ver.Version
	}
	return CertificateItem{ID: sc.id(meta.Name, v), Attributes: sc.attributes(ver), Tags: attrs.CopyTags(ver.Tags), X5T: pki.Thumbprint(ver.Chain[0])}
}

// deletedItem renders the latest version of a deleted certificate as a listing entry.
func (sc scope) deletedItem(meta *certRecord, ver *versionRecord) DeletedCertificateItem {
	b := sc.deletedBundle(meta, ver)
	return DeletedCertificateItem{CertificateItem: sc.item(meta, ver, false), RecoveryID: b.RecoveryID, ScheduledPurgeDate: b.ScheduledPurgeDate, DeletedDate: b.DeletedDate}
}

// operation renders a pending record.
func (sc scope) operation(meta *certRecord) Operation {
	p := meta.Pending
	issuer := p.Issuer
	op := Operation{
		ID:                    sc.id(meta.Name, "") + "/pending",
		Issuer:                &issuer,
		CSR:                   append([]byte(nil), p.CSR...),
		CancellationRequested: p.Cancel,
		Status:                p.Status,
		StatusDetails:         p.StatusDetails,
		Error:                 p.Error,
		Target:                p.Target,
		RequestID:             p.RequestID,
		Preserve:              p.PreserveOrder,
	}
	return op
}

// readCert reads a certificate's record, deleted or not; ErrNotFound if there is none.
func readCert(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*certRecord, error) {
	return sc.certs().Read(ctx, r, lc, name)
}

// readLive reads a certificate that is not deleted and has at least one version.
func readLive(ctx context.Context, r storage.Reader, sc scope, lc, name string) (*certRecord, error) {
	return sc.certs().ReadLive(ctx, r, lc, name)
}

// readVersion reads one version ("" is the latest).
func readVersion(ctx context.Context, r storage.Reader, sc scope, lc string, meta *certRecord, version string) (*versionRecord, error) {
	return sc.certs().ReadVersion(ctx, r, lc, meta, version)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// checkTags wraps the shared tag rules.
func checkTags(tags map[string]string) error {
	if err := attrs.CheckTags("certificate", tags); err != nil {
		return badParam("%s", err.Error())
	}
	return nil
}
