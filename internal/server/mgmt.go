package server

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/mgmt"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The management API (internal/mgmt, docs/MANAGEMENT.md) is wired here: its routes are
// mounted in routes() with Handle: s.manage, and it authenticates and authorises with the
// same token validation and RBAC snapshot as the data plane.

// mgmtHolder builds the management service once, on its first request (after Start).
type mgmtHolder struct {
	once sync.Once
	svc  *mgmt.Service
}

func (s *Server) management() *mgmt.Service {
	s.mgmt.once.Do(func() {
		s.mgmt.svc = mgmt.New(mgmt.Config{
			Store:      s.tenants,
			Identity:   mgmtIdentity{s},
			Authorizer: authorizer{s},
			Audit:      mgmtAudit{s},
			StoreURL:   s.storeURL,
			AttestURL:  s.attestURL,
			MapError:   mapDomainError,
			Log:        func(msg string, args ...any) { s.log.Error(msg, args...) },
			CA:         certAuthorities{s},
			Now:        s.now,
		})
	})
	return s.mgmt.svc
}

// certAuthorities reaches the certificates service, which exists only while unsealed.
type certAuthorities struct{ s *Server }

func (c certAuthorities) GetCA(ctx context.Context, tenantID string) (certificates.CAInfo, error) {
	id, err := c.s.ident()
	if err != nil {
		return certificates.CAInfo{}, err
	}
	return id.certs.GetCA(ctx, tenantID)
}

func (c certAuthorities) RotateCA(ctx context.Context, tenantID, subject string, months int) (certificates.CAInfo, error) {
	id, err := c.s.ident()
	if err != nil {
		return certificates.CAInfo{}, err
	}
	return id.certs.RotateCA(ctx, tenantID, subject, months)
}

// manage hands a management route to the management service, which answers it itself.
func (s *Server) manage(w http.ResponseWriter, r *http.Request) error {
	return s.management().Serve(w, r)
}

// storeURL is the URL a vault or managed HSM pool is served at.
func (s *Server) storeURL(kind tenancy.Kind, name string) string {
	host := name + "." + s.cfg.DNSSuffix
	if kind == tenancy.KindManagedHSM {
		host = name + ".managedhsm." + s.cfg.DNSSuffix
	}
	return hostURL(host, s.resources().port)
}

// mgmtIdentity checks the operator token and validates access tokens for the management
// audience (the identity provider's base URL) exactly as the data plane's authenticator does.
type mgmtIdentity struct{ s *Server }

func (m mgmtIdentity) CheckOperator(ctx context.Context, raw string) error {
	err := m.s.manager.CheckRootToken(ctx, raw)
	if errors.Is(err, barrier.ErrBadRootToken) {
		return fmt.Errorf("%w: %v", mgmt.ErrUnauthenticated, err)
	}
	return err
}

func (m mgmtIdentity) Authenticate(ctx context.Context, raw, tenantID string) (api.Caller, error) {
	c, err := authenticator{m.s}.Authenticate(ctx, raw, tenancy.Vault{TenantID: tenantID}, m.Audience())
	if errors.Is(err, api.ErrUnauthenticated) {
		m.s.log.Info("management bearer token refused", "tenant", tenantID, "reason", err)
		return api.Caller{}, fmt.Errorf("%w: %v", mgmt.ErrUnauthenticated, err)
	}
	return c, err
}

func (m mgmtIdentity) Audience() string { return m.s.resources().Base() }

// mgmtAudit is the server's audit log as the management service uses it.
type mgmtAudit struct{ s *Server }

func (a mgmtAudit) Append(ctx context.Context, ev audit.Event) error {
	id, err := a.s.ident()
	if err != nil {
		return err
	}
	return id.record(ev)
}

// Open reads the log's files that may hold records from since to until: the rotated ones,
// oldest first, then the current one.
func (a mgmtAudit) Open(ctx context.Context, since, until time.Time) (io.ReadCloser, error) {
	id, err := a.s.ident()
	if err != nil {
		return nil, err
	}
	return id.audit.OpenFiles(since, until)
}

func (a mgmtAudit) PublicKey(ctx context.Context) (crypto.PublicKey, audit.Head, error) {
	id, err := a.s.ident() // creates the audit keys on first use
	if err != nil {
		return nil, audit.Head{}, err
	}
	pub, err := a.s.AuditPublicKey(ctx)
	if err != nil {
		return nil, audit.Head{}, err
	}
	return pub, id.audit.Head(), nil
}
