package server

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/audit"
	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/certificates"
	"github.com/coffer-kms/coffer/internal/failcount"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secrets"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// route is one HTTP endpoint, declared as data. One wrapper (s.wrap) runs the shared steps
// in order: recover → metrics → sealed gate → body limit → operator auth → handler.
type route struct {
	Pattern string
	// WhileSealed routes answer while the barrier is sealed (health, seal status, unseal);
	// every other route answers 503 then.
	WhileSealed bool
	// Operator routes require the operator token made at init.
	Operator bool
	// Audit, if set, is the operation name under which wrap records the request: for the
	// routes whose handlers write no audit record of their own (probes, metrics, public
	// discovery documents), so that every request leaves one.
	Audit  string
	Handle func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) routes() []route {
	return []route{
		{Pattern: "GET /healthz", Audit: "Health", WhileSealed: true, Handle: s.healthz},
		{Pattern: "GET /readyz", Audit: "Ready", WhileSealed: true, Handle: s.readyz},
		{Pattern: "GET /metrics", Audit: "Metrics", WhileSealed: true, Handle: s.serveMetrics},
		{Pattern: "GET /v1/sys/seal-status", Audit: "SealStatus", WhileSealed: true, Handle: s.sealStatus},
		{Pattern: "POST /v1/sys/init", WhileSealed: true, Handle: s.initSys},
		{Pattern: "POST /v1/sys/unseal", WhileSealed: true, Handle: s.unseal},
		{Pattern: "POST /v1/sys/seal", WhileSealed: true, Handle: s.seal},
		{Pattern: "POST /v1/sys/rotate", Operator: true, Handle: s.rotate},
		{Pattern: "POST /v1/sys/verify-store", Operator: true, Handle: s.verifyStore},
		{Pattern: "GET /v1/sys/purge-clock", Operator: true, Audit: "SysPurgeClockGet", Handle: s.purgeClockStatus},
		{Pattern: "POST /v1/sys/purge-clock/confirm", Operator: true, Handle: s.confirmPurgeClock},
		{Pattern: "GET /{tenant}/v2.0/.well-known/openid-configuration", Audit: "OpenIDConfiguration", Handle: s.idp},
		{Pattern: "GET /{tenant}/discovery/v2.0/keys", Audit: "JWKS", Handle: s.idp},
		{Pattern: "POST /{tenant}/oauth2/v2.0/token", Handle: s.idp},
		{Pattern: "GET /common/discovery/instance", Audit: "InstanceDiscovery", Handle: s.idp},
		// The management API (internal/mgmt, docs/MANAGEMENT.md); TestManagementRoutesMounted
		// keeps this list equal to mgmt's routes.
		{Pattern: "POST /v1/tenants", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/issuers", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/issuers", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/ca", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/ca", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/issuers/{id}/users", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/accessRequests", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/approve", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/deny", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/revoke", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/accessRequests/{id}/credential", Handle: s.manage},
		{Pattern: "GET /v1/tenants", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}", Handle: s.manage},
		{Pattern: "GET /v1/audit/public-key", Handle: s.manage},
		{Pattern: "PUT /v1/tenants/{tenant}/vaults/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/vaults/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/vaults", Handle: s.manage},
		{Pattern: "PUT /v1/tenants/{tenant}/managedHsms/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/managedHsms/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/managedHsms", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/principals", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/principals", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/principals/{oid}", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/principals/{oid}/secrets", Handle: s.manage},
		{Pattern: "POST /v1/tenants/{tenant}/principals/{oid}/certificates", Handle: s.manage},
		{Pattern: "PUT /v1/tenants/{tenant}/roleAssignments/{id}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/roleAssignments/{id}", Handle: s.manage},
		{Pattern: "DELETE /v1/tenants/{tenant}/roleAssignments/{id}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/roleAssignments", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/roleDefinitions", Handle: s.manage},
		{Pattern: "PUT /v1/tenants/{tenant}/roleDefinitions/{id}", Handle: s.manage},
		{Pattern: "DELETE /v1/tenants/{tenant}/roleDefinitions/{id}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/audit", Handle: s.manage},
		{Pattern: "PUT /v1/tenants/{tenant}/attestationProviders/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/attestationProviders/{name}", Handle: s.manage},
		{Pattern: "GET /v1/tenants/{tenant}/attestationProviders", Handle: s.manage},
		{Pattern: "/", Handle: notFound},
	}
}

// idp hands identity-provider routes to the identity provider (built once unsealed).
func (s *Server) idp(w http.ResponseWriter, r *http.Request) error {
	id, err := s.ident()
	if err != nil {
		return err
	}
	for _, rt := range id.idp.Routes() {
		if rt.Pattern == r.Pattern {
			rt.Handler(w, r)
			return nil
		}
	}
	return api.ErrNotFound
}

// dataRoutes are the Key Vault data-plane endpoints served on vault and pool hosts.
func (s *Server) dataRoutes() []api.Route {
	rs := []api.Route{
		{Pattern: "POST /rng", Kinds: []tenancy.Kind{tenancy.KindManagedHSM}, Operation: "GetRandomBytes",
			Action: map[tenancy.Kind]string{tenancy.KindManagedHSM: string(authz.HSMRNG)}, MaxBody: 4 << 10, Handle: api.GetRandomBytes},
	}
	k := &api.Keys{Svc: func(tenancy.Kind) (*keys.Service, error) {
		id, err := s.ident()
		if err != nil {
			return nil, err
		}
		return id.keys, nil
	}}
	sec := &api.Secrets{Svc: func() (*secrets.Service, error) {
		id, err := s.ident()
		if err != nil {
			return nil, err
		}
		return id.secrets, nil
	}}
	certs := &api.Certificates{Svc: func() (*certificates.Service, error) {
		id, err := s.ident()
		if err != nil {
			return nil, err
		}
		return id.certs, nil
	}}
	rs = append(rs, s.requireActive(k.Routes())...)
	rs = append(rs, s.requireActive(s.releaseRoutes())...)
	rs = append(rs, s.securityDomainRoutes()...)
	rs = append(rs, s.requireActive(s.hsmb.Routes())...)
	rs = append(rs, sec.Routes()...)
	rs = append(rs, (&api.HSMRBAC{Store: s.tenants}).Routes()...)
	return append(rs, certs.Routes()...)
}

func notFound(http.ResponseWriter, *http.Request) error { return api.ErrNotFound }

// handler builds the server's root handler: requests to a vault or pool host go to the
// data plane; the bare host serves health, operator, identity-provider and (later)
// management routes, and in dev mode also the default vault.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.wrap(rt))
	}
	s.data = &api.DataPlane{
		Stores: storeResolver{s}, Authn: authenticator{s}, Authz: authorizer{s}, Audit: s.auditor(),
		Sealed: s.barrier.Sealed, Authority: s.resources().Base(), DNSSuffix: s.cfg.DNSSuffix,
		TenantSecret: s.challengeSecret, MaxBody: s.cfg.RequestBodyLimit,
		Log:      func(msg string, args ...any) { s.log.Info(msg, args...) },
		LogError: func(msg string, args ...any) { s.log.Error(msg, args...) },
		Limits:   api.NewLimiter(s.cfg.TenantRate, s.cfg.TenantBurst, int(s.cfg.TenantConcurrent)),
	}
	if s.cfg.AuthFailureLimit > 0 {
		s.data.AuthFailures, s.data.MaxAuthFailures = failcount.New(s.now, time.Minute), s.cfg.AuthFailureLimit
	}
	if benchNoAudit {
		s.log.Warn("BENCHMARK BUILD: data-plane requests are not audited (built with -tags coffer_bench_noaudit)")
		s.data.Audit = nil
	}
	data := s.metricsByPattern(s.data.Handler(s.dataRoutes(), nil))
	attestH := s.attestHandler()
	var devData http.Handler
	if s.devVault != nil {
		devData = s.metricsByPattern(s.data.Handler(s.dataRoutes(), s.devVault))
	}
	return warmStacks(securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if misdirected(r) {
			s.writeError(w, r, api.Errorf(http.StatusMisdirectedRequest, "MisdirectedRequest", "the TLS server name and the Host header name different hosts; connect to the host you address"))
			return
		}
		if _, ok := attestHost(r.Host, s.cfg.DNSSuffix); ok {
			attestH.ServeHTTP(w, r)
			return
		}
		if _, _, ok := api.StoreHost(r.Host, s.cfg.DNSSuffix); ok {
			data.ServeHTTP(w, r)
			return
		}
		if devData != nil && kvPath(r.URL.Path) {
			devData.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})), cmp.Or(s.warmKeep, warmIdle))
}

// metricsByPattern records requests under the route pattern the inner mux matched, and
// recovers their handlers' panics as wrap does.
func (s *Server) metricsByPattern(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			label := "data " + r.Pattern
			if r.Pattern == "" || r.Pattern == "/" {
				label = "data unmatched"
			}
			if p := recover(); p != nil {
				s.recovered(sw, r, label, p)
			}
			s.metrics.observe(label, sw.status, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

// recovered handles a handler's panic p: counted, logged with its type and stack only (the
// value may hold request data, a secret among them: SECURITY-NOTES C9), answered 500 if
// nothing was written yet. http.ErrAbortHandler goes on up: it asks net/http to abort.
func (s *Server) recovered(sw *statusWriter, r *http.Request, label string, p any) {
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.metrics.panics.Inc()
	s.log.Error("handler panic", "route", label, "panic_type", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
	if sw.status == 0 {
		s.writeError(sw, r, api.ErrInternal)
	}
}

var (
	hstsValue    = []string{"max-age=31536000; includeSubDomains"}
	nosniffValue = []string{"nosniff"}
	noStoreValue = []string{"no-store"}
)

// securityHeaders sets the headers every response carries (SECURITY-NOTES N4).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Shared value slices (len == cap, so an Add copies rather than writes into them)
		// instead of Set's one allocation per header per response.
		h["Strict-Transport-Security"] = hstsValue
		h["X-Content-Type-Options"] = nosniffValue
		h["Cache-Control"] = noStoreValue
		next.ServeHTTP(w, r)
	})
}

// wrap applies the shared request pipeline to one route.
func (s *Server) wrap(rt route) http.Handler {
	label := rt.Pattern
	if label == "/" {
		label = "unmatched"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.recovered(sw, r, label, p)
			}
			s.metrics.observe(label, sw.status, time.Since(start))
		}()
		if !rt.WhileSealed && s.barrier.Sealed() {
			s.writeError(sw, r, barrier.ErrSealed)
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.RequestBodyLimit)
		if rt.Operator {
			if err := s.checkOperator(r); err != nil {
				s.writeError(sw, r, err)
				return
			}
		}
		if rt.Audit != "" {
			s.serveAudited(sw, r, rt)
			return
		}
		if err := rt.Handle(sw, r); err != nil {
			s.writeError(sw, r, err)
		}
	})
}

// serveAudited runs a route whose handler keeps no audit record and records it before the
// response leaves: if the record cannot be written the request fails with 503. While
// sealed the log is closed (its keys are sealed): these read-only requests are then answered
// without a record.
func (s *Server) serveAudited(w http.ResponseWriter, r *http.Request, rt route) {
	bw := api.NewBufferedWriter()
	if err := rt.Handle(bw, r); err != nil {
		s.writeError(bw, r, err)
	}
	rec := api.AuditRecord{Time: time.Now().UTC(), Operation: rt.Audit, ClientAddr: r.RemoteAddr, ObjectID: audit.Clip(r.URL.Path), Status: bw.Status()}
	if s.barrier.Sealed() {
		bw.Flush(w)
		return
	}
	id, err := s.ident()
	if err == nil {
		result := audit.ResultSuccess
		if rec.Status >= 400 {
			result = audit.ResultError
		}
		err = id.record(audit.Event{Time: rec.Time, Operation: rec.Operation, ObjectID: rec.ObjectID, ClientAddr: rec.ClientAddr, Status: rec.Status, Result: result})
	}
	if err != nil {
		s.log.Error("audit record could not be written; request refused", "operation", rt.Audit, "err", err)
		s.writeError(w, r, api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the request could not be audited"))
		return
	}
	bw.Flush(w)
}

// writeError renders err in Key Vault's shape and logs server-side failures.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := api.WriteError(w, err, mapDomainError)
	if e.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	}
}

// mapDomainError is the one table from domain errors to wire errors.
func mapDomainError(err error) *api.Error {
	switch {
	case errors.Is(err, barrier.ErrSealed):
		return api.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", barrier.ErrSealed.Error())
	case errors.Is(err, barrier.ErrNotInitialized):
		return api.Errorf(http.StatusServiceUnavailable, "NotInitialized", err.Error())
	case errors.Is(err, barrier.ErrAlreadyInitialized):
		return api.Errorf(http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, barrier.ErrWrongShares), errors.Is(err, barrier.ErrDuplicateShare),
		errors.Is(err, barrier.ErrShareMismatch), errors.Is(err, barrier.ErrAutoUnseal):
		return api.Errorf(http.StatusBadRequest, "BadParameter", err.Error())
	case errors.Is(err, barrier.ErrBadRootToken):
		return api.Errorf(http.StatusForbidden, "Forbidden", "the operator token is not valid")
	case errors.Is(err, barrier.ErrIntegrity):
		// Name the damaged record to the operator log, not to the caller.
		return api.Errorf(http.StatusInternalServerError, "StorageIntegrity", "a stored record failed its integrity check; the server refuses to serve it (see the server log)")
	case errors.Is(err, storage.ErrInvalidKey):
		return api.Errorf(http.StatusBadRequest, "BadParameter", "invalid name")
	}
	return nil
}

// checkOperator requires "Authorization: Bearer <operator token>".
func (s *Server) checkOperator(r *http.Request) error {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		return api.Errorf(http.StatusUnauthorized, "Unauthorized", "this operation needs the operator token: send Authorization: Bearer <token> (coffer operator --token or COFFER_TOKEN)")
	}
	return s.manager.CheckRootToken(r.Context(), strings.TrimPrefix(auth[0], "Bearer "))
}

// newLogger builds the structured logger for format and level.
func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// misdirected reports a request whose Host names another host than the TLS server name
// (SNI) the connection was opened for (SECURITY-NOTES T2). Clients that send no SNI (IP
// literals) are not checked.
func misdirected(r *http.Request) bool {
	if r.TLS == nil || r.TLS.ServerName == "" {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return !strings.EqualFold(strings.TrimSuffix(host, "."), r.TLS.ServerName)
}
