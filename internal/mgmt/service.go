package mgmt

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// MaxBody is the largest management request body, in bytes; larger bodies get 413.
const MaxBody = 64 << 10

// Store is what the management API reads and writes: the tenancy store.
type Store interface {
	CreateTenant(ctx context.Context, id, name string) (tenancy.Tenant, error)
	Tenant(ctx context.Context, id string) (tenancy.Tenant, error)
	Tenants(ctx context.Context) ([]tenancy.Tenant, error)
	CreateVault(ctx context.Context, tenantID string, kind tenancy.Kind, name string, opts tenancy.VaultOptions) (tenancy.Vault, error)
	Vault(ctx context.Context, kind tenancy.Kind, name string) (tenancy.Vault, error)
	Vaults(ctx context.Context, tenantID string, kind tenancy.Kind) ([]tenancy.Vault, error)
	CreateServicePrincipal(ctx context.Context, tenantID, displayName string) (tenancy.Principal, string, error)
	AddSecret(ctx context.Context, tenantID, objectID string) (string, tenancy.SecretCred, error)
	AddCertificate(ctx context.Context, tenantID, objectID string, der []byte) (tenancy.CertificateCred, error)
	Principal(ctx context.Context, tenantID, objectID string) (tenancy.Principal, error)
	Principals(ctx context.Context, tenantID string) ([]tenancy.Principal, error)
	CreateRoleAssignmentIf(ctx context.Context, a authz.Assignment, check func(existing []authz.Assignment) error) (authz.Assignment, error)
	DeleteRoleAssignment(ctx context.Context, tenantID, id string) (authz.Assignment, error)
	RoleAssignments(ctx context.Context, tenantID string) ([]authz.Assignment, error)
	CreateRoleDefinitionIf(ctx context.Context, tenantID string, r authz.RoleDefinition, check func(existing []authz.RoleDefinition) error) (authz.RoleDefinition, error)
	DeleteRoleDefinition(ctx context.Context, tenantID, id string) (authz.RoleDefinition, error)
	RoleDefinitions(ctx context.Context, tenantID string) ([]authz.RoleDefinition, error)
	Snapshot(ctx context.Context) (*authz.Snapshot, error)
	RequestAccess(ctx context.Context, tenantID, scope, roleID string, d time.Duration, justification, requestedBy string) (tenancy.AccessRequest, error)
	AccessRequests(ctx context.Context, tenantID string) ([]tenancy.AccessRequest, error)
	DecideAccess(ctx context.Context, tenantID, id, approver string, approve bool) (tenancy.AccessRequest, error)
	RevokeAccess(ctx context.Context, tenantID, id, by string) (tenancy.AccessRequest, error)
	ClaimAccessCredential(ctx context.Context, tenantID, id, requester string) (string, error)
	CreateIssuer(ctx context.Context, tenantID, issuerURL, audience string) (tenancy.Issuer, error)
	Issuers(ctx context.Context, tenantID string) ([]tenancy.Issuer, error)
	CreateUser(ctx context.Context, tenantID, issuerID, subject, displayName string) (tenancy.Principal, error)
	PutAttestationProvider(ctx context.Context, tenantID, name string, policy json.RawMessage) (tenancy.AttestationProvider, bool, error)
	AttestationProvider(ctx context.Context, name string) (tenancy.AttestationProvider, error)
	AttestationProviders(ctx context.Context, tenantID string) ([]tenancy.AttestationProvider, error)
}

var _ Store = (*tenancy.Store)(nil)

// ErrUnauthenticated is wrapped by an Identity for a credential that is not valid. Any other
// error means the Identity could not decide (for example while sealed) and fails the request
// as it is.
var ErrUnauthenticated = errors.New("credential not valid")

// Identity authenticates management callers.
type Identity interface {
	// CheckOperator returns nil if raw is the operator token, an error wrapping
	// ErrUnauthenticated if it is not.
	CheckOperator(ctx context.Context, raw string) error
	// Authenticate validates raw as an access token of tenantID for Audience (issuer, audience,
	// tid, signature and lifetime) and returns its principal, or an error wrapping
	// ErrUnauthenticated.
	Authenticate(ctx context.Context, raw, tenantID string) (api.Caller, error)
	// Audience is the resource management tokens are requested for: the identity provider's
	// base URL.
	Audience() string
}

// AuditTrail is the audit log as the management API uses it.
type AuditTrail interface {
	// Append records one event durably; if it fails the request must not succeed.
	Append(ctx context.Context, ev audit.Event) error
	// Open returns the log for reading (audit.Query) with records from since (inclusive) to
	// until (exclusive), a zero bound being open: every rotated file that may hold such
	// records (audit.Log.OpenFiles), oldest first, then the current one.
	Open(ctx context.Context, since, until time.Time) (io.ReadCloser, error)
	// PublicKey returns the key that verifies the log's checkpoints and the log's current head.
	PublicKey(ctx context.Context) (crypto.PublicKey, audit.Head, error)
}

// Config holds the Service's dependencies.
type Config struct {
	Store      Store
	Identity   Identity
	Authorizer api.Authorizer // the data plane's: 403 ForbiddenByRbac naming the action
	Audit      AuditTrail
	// StoreURL returns the URL a vault or managed HSM pool is served at.
	StoreURL func(kind tenancy.Kind, name string) string
	// AttestURL returns the URL an attestation provider is served at; may be nil.
	AttestURL func(name string) string
	// MapError maps errors of the wiring (sealed, storage) to wire errors; may be nil.
	MapError api.Mapping
	// Log receives server-side failures (never request bodies); may be nil.
	Log func(msg string, args ...any)
	// CA creates, rotates and describes tenants' certificate authorities; nil answers 503
	// on those routes.
	CA CertificateAuthorities
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Service serves the management API. It is safe for concurrent use.
type Service struct {
	cfg    Config
	routes map[string]*Route
	// rbacMu serialises role assignment and definition writes, so the cross-tenant
	// uniqueness checks and the writes they guard are one step.
	rbacMu sync.Mutex
}

// New returns a Service over cfg.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if cfg.StoreURL == nil {
		cfg.StoreURL = func(tenancy.Kind, string) string { return "" }
	}
	s := &Service{cfg: cfg, routes: make(map[string]*Route)}
	for _, rt := range s.Routes() {
		s.routes[rt.Pattern] = &rt
	}
	return s
}

// Serve answers a request the server's mux matched to one of Routes (by r.Pattern). It always
// writes the response itself and returns nil, except for a pattern it does not serve.
func (s *Service) Serve(w http.ResponseWriter, r *http.Request) error {
	rt, ok := s.routes[r.Pattern]
	if !ok {
		return api.ErrNotFound
	}
	s.serve(rt, w, r)
	return nil
}
