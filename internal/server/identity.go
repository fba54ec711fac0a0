package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/idp"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/tenancy"
	"github.com/prometheus/client_golang/prometheus"
)

// signingKeyPath is where the identity provider's token signing keys are kept (sealed).
const signingKeyPath = "identity/signing-keys"

// tokenLifetime is the lifetime of issued access tokens.
const tokenLifetime = time.Hour

// identity holds what needs an unsealed barrier: the token signer and the identity provider.
// It is built on first use after unseal and dropped on seal, so no signing key stays in
// memory while sealed.
type identity struct {
	signer *token.Signer
	idp    *idp.Service
	audit  *audit.Log
	// auditOut is the optional standard-output sink (--audit-stdout).
	auditOut *audit.Log
	keys     *keys.Service
	secrets  *secrets.Service
	certs    *certificates.Service
	// attestSigner signs attestation tokens (attest.go).
	attestSigner *token.Signer
	// failures is the server's coffer_audit_failures_total.
	failures *prometheus.CounterVec
}

// record appends ev to every audit sink; any failure fails the caller's request and is
// counted in coffer_audit_failures_total.
func (id *identity) record(ev audit.Event) error {
	return id.appendAll(ev, (*audit.Log).Append)
}

// recordLazy is record for a request that changed nothing stored: the record is written
// before it returns and synced within --audit-read-sync-interval (audit.Log.AppendLazy).
func (id *identity) recordLazy(ev audit.Event) error {
	return id.appendAll(ev, (*audit.Log).AppendLazy)
}

func (id *identity) appendAll(ev audit.Event, add func(*audit.Log, audit.Event) error) error {
	if err := add(id.audit, ev); err != nil {
		id.failures.WithLabelValues(auditSinkFile).Inc()
		return err
	}
	if id.auditOut != nil {
		if err := add(id.auditOut, ev); err != nil {
			id.failures.WithLabelValues(auditSinkStdout).Inc()
			return err
		}
	}
	return nil
}

type identityHolder struct {
	mu     sync.Mutex
	cur    *identity
	tokens *tokenCache

	snapMu  sync.Mutex
	snap    *authz.Snapshot
	snapGen uint64
	snapOK  bool
}

// ident returns the identity components, building them if needed.
func (s *Server) ident() (*identity, error) {
	s.idh.mu.Lock()
	defer s.idh.mu.Unlock()
	if s.idh.cur != nil {
		return s.idh.cur, nil
	}
	if s.barrier.Sealed() {
		return nil, barrier.ErrSealed
	}
	signer, err := token.NewSigner(s.barrier, signingKeyPath, s.now, tokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("token signer: %w", err)
	}
	attestSigner, err := token.NewSigner(s.barrier, attestSigningKeyPath, s.now, attestTokenLifetime)
	if err != nil {
		return nil, fmt.Errorf("attestation token signer: %w", err)
	}
	log, err := s.openAudit(context.Background())
	if err != nil {
		s.metrics.auditFailures.WithLabelValues(auditSinkFile).Inc()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	backupKey, err := s.sealedSecret(context.Background(), keysBackupKeyPath)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("key backup key: %w", err)
	}
	secretsBackupKey, err := s.sealedSecret(context.Background(), "secrets/backup-key")
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("secret backup key: %w", err)
	}
	certsBackupKey, err := s.sealedSecret(context.Background(), "certificates/backup-key")
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("certificate backup key: %w", err)
	}
	if err := s.purgeClock.Load(context.Background()); err != nil {
		log.Close()
		return nil, err
	}
	svc := idp.New(s.tenants, signer, s.resources(), tokenLifetime, s.now)
	svc.OnIssue = s.auditTokenRequest
	keySvc := keys.NewService(s.barrier, s.provider, s.now, backupKey)
	if s.hsm != nil {
		keySvc.RequireHSMInPools()
	}
	if s.cfg.DisableRSA15 {
		keySvc.DisableRSA15()
	}
	keySvc.ShareCPU(s.cpu)
	keySvc.LimitCreates(s.creates)
	keySvc.SealPoolBackupsWith(s.sd.BackupKey)
	keySvc.WrapPoolKeysWith(s.poolWrapKey)
	keySvc.WrapCertificateKeysWith(s.certWrapKey(certsBackupKey))
	keySvc.SetPurgeHooks(s.purgeHooks())
	secretSvc := secrets.NewService(s.barrier, s.now, secretsBackupKey)
	secretSvc.SetPurgeHooks(s.purgeHooks())
	certSvc := certificates.NewService(s.barrier, keySvc, secretSvc, s.now, certsBackupKey, s.log)
	certSvc.SetPurgeHooks(s.purgeHooks())
	cur := &identity{signer: signer, attestSigner: attestSigner, idp: svc, audit: log, keys: keySvc, secrets: secretSvc, failures: s.metrics.auditFailures,
		certs: certSvc}
	if s.cfg.AuditStdout {
		if cur.auditOut, err = s.openAuditSink(context.Background(), s.out); err != nil {
			log.Close()
			return nil, fmt.Errorf("audit stdout sink: %w", err)
		}
	}
	s.idh.cur = cur
	if ev, ok := s.sealedRefused.take(); ok {
		if err := cur.record(ev); err != nil {
			s.log.Error("audit write failed for the requests refused while sealed", "err", err)
		}
	}
	return s.idh.cur, nil
}

// dropIdentity forgets the signer and closes the audit log (on seal and shutdown).
func (s *Server) dropIdentity() {
	s.idh.mu.Lock()
	cur := s.idh.cur
	s.idh.cur = nil
	s.idh.mu.Unlock()
	s.idh.tokens.reset()
	if cur != nil {
		if err := cur.audit.Close(); err != nil {
			s.log.Error("closing the audit log", "err", err)
		}
		if cur.auditOut != nil {
			cur.auditOut.Close()
		}
	}
}

// resources describes this server's issuer and token audiences.
type resources struct {
	suffix, port  string
	base, hsmBase string // the resource names of vaults and of managed HSM pools
}

func (s *Server) resources() resources {
	if s.res.port == "" { // computed once the listener is open; the port never changes
		_, port, _ := net.SplitHostPort(s.ln.Addr().String())
		return newResources(s.cfg.DNSSuffix, port)
	}
	return s.res
}

// newResources computes the names once: they are on every data-plane request's path.
func newResources(suffix, port string) resources {
	return resources{suffix: suffix, port: port, base: idp.IssuerBase(suffix, port), hsmBase: idp.IssuerBase("managedhsm."+suffix, port)}
}

func (r resources) Base() string                  { return r.base }
func (r resources) Issuer(tenantID string) string { return r.base + "/" + tenantID + "/v2.0" }
func (r resources) Audience(resource string) bool {
	return resource == r.base || resource == r.hsmBase
}

// authenticator validates Coffer-issued bearer tokens for a key store.
type authenticator struct{ s *Server }

func (a authenticator) Authenticate(ctx context.Context, raw string, store tenancy.Vault, resource string) (api.Caller, error) {
	now := a.s.now()
	key := cacheKey(raw, store.TenantID, resource)
	if caller, ok := a.s.idh.tokens.get(key, now); ok {
		return caller, nil
	}
	if iss := peekIssuer(raw); iss != "" && iss != a.s.resources().Issuer(store.TenantID) {
		caller, exp, err := a.s.authenticateExternal(ctx, raw, iss, store, now)
		if err != nil {
			return api.Caller{}, err
		}
		a.s.idh.tokens.put(key, caller, exp, now)
		return caller, nil
	}
	id, err := a.s.ident()
	if err != nil {
		// Not the token's fault (a 401 would send the client for a new one): the token
		// signer or the audit log cannot be opened.
		a.s.log.Error("bearer tokens cannot be checked: the identity components do not open; requests refused", "err", err)
		return api.Caller{}, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable",
			"the server cannot check tokens now (its audit log or token signer cannot be opened); retry later, and ask the operator to check the server log")
	}
	c, err := token.Validator{}.Validate(raw, token.Expect{
		Issuers:   []string{a.s.resources().Issuer(store.TenantID)},
		Audiences: []string{resource},
		TenantID:  store.TenantID,
		Now:       now,
		Keys:      id.signer.KeySet(),
	})
	if err != nil {
		return api.Caller{}, fmt.Errorf("%w: %v", api.ErrUnauthenticated, err)
	}
	caller := api.Caller{TenantID: c.TenantID, ObjectID: c.ObjectID, AppID: c.AppID}
	a.s.idh.tokens.put(key, caller, time.Unix(c.ExpiresAt, 0), now)
	return caller, nil
}

// authorizer decides with a snapshot of the RBAC data, rebuilt when it changes.
type authorizer struct{ s *Server }

func (a authorizer) snapshot(ctx context.Context) (*authz.Snapshot, error) {
	h := &a.s.idh
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	gen := a.s.tenants.Generation()
	if h.snapOK && h.snapGen == gen {
		return h.snap, nil
	}
	snap, err := a.s.tenants.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	h.snap, h.snapGen, h.snapOK = snap, gen, true
	return snap, nil
}

func (a authorizer) Authorize(ctx context.Context, c api.Caller, action, scope string) error {
	snap, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	sc, err := authz.ParseScope(scope)
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "BadParameter", "the object name is not valid")
	}
	d := snap.Decide(authz.Request{
		PrincipalID: c.ObjectID, PrincipalTenant: c.TenantID, Action: authz.Action(action), Scope: sc, Now: a.s.now(),
	})
	if !d.Allowed {
		d.Caller = "appid=" + c.AppID + ";oid=" + c.ObjectID + ";iss=" + a.s.resources().Issuer(c.TenantID) // for the message only
		return &api.Error{Status: http.StatusForbidden, Code: "Forbidden", Inner: "ForbiddenByRbac", Message: d.Message()}
	}
	return nil
}

// storeResolver finds vaults and pools in the tenancy store.
type storeResolver struct{ s *Server }

func (r storeResolver) Vault(ctx context.Context, kind tenancy.Kind, name string) (tenancy.Vault, error) {
	return r.s.tenants.Vault(ctx, kind, name)
}

// kvPath reports whether a bare-host path belongs to the Key Vault data plane (served by the
// default vault in dev mode).
func kvPath(p string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	switch first {
	case "keys", "secrets", "certificates", "deletedkeys", "deletedsecrets", "deletedcertificates", "rng":
		return true
	}
	return false
}
