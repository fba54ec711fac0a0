// Package idp is Coffer's built-in identity provider, wire-compatible with the Microsoft
// identity platform v2.0 endpoints that MSAL and azidentity use for the client-credentials
// flow: OpenID discovery, JWKS, the token endpoint (client secret or certificate assertion),
// and instance discovery. It owns the OAuth2 wire format; principals come from tenancy and
// tokens are signed by identity/token.
//
// Threat model: the token endpoint is exposed to the network and brute-forceable; it answers
// every authentication failure with the same OAuth2 error after the same work, never says
// whether a client exists, caps its body, and never logs secrets or assertions.
package idp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Tokens are issued for these audiences (resources); Resources returns them for a request.
type Resources interface {
	// Issuer is the issuer URL of tenantID's tokens: <base>/<tenant>/v2.0.
	Issuer(tenantID string) string
	// Base is the identity provider's base URL (the authority host), without a slash.
	Base() string
	// Audience reports whether resource (a scope without "/.default") may be requested.
	Audience(resource string) bool
}

// Service serves the identity-provider endpoints.
type Service struct {
	tenants   *tenancy.Store
	signer    *token.Signer
	resources Resources
	lifetime  time.Duration
	now       func() time.Time
	assertion *assertionChecker
	failures  *failureLimiter
	// OnIssue is called after every token request with the outcome, for the audit log. If it
	// fails for an issued token, the token is withheld and the request answered 503: no
	// token leaves unaudited (SECURITY-NOTES L1).
	OnIssue func(ctx context.Context, r *http.Request, tenantID, appID, objectID string, status int, reason string) error
}

// New returns the identity provider.
func New(tenants *tenancy.Store, signer *token.Signer, resources Resources, lifetime time.Duration, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{tenants: tenants, signer: signer, resources: resources, lifetime: lifetime, now: now,
		assertion: newAssertionChecker(now), failures: newFailureLimiter(now)}
}

// Route is one endpoint of the identity provider.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes lists the endpoints; the server mounts them on the bare host.
func (s *Service) Routes() []Route {
	return []Route{
		{"GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfiguration},
		{"GET /{tenant}/discovery/v2.0/keys", s.keys},
		{"POST /{tenant}/oauth2/v2.0/token", s.token},
		{"GET /common/discovery/instance", s.instanceDiscovery},
	}
}

func (s *Service) tenantFromPath(r *http.Request) (string, bool) {
	t := r.PathValue("tenant")
	if !tenancy.IsUUID(t) {
		return "", false
	}
	if _, err := s.tenants.Tenant(r.Context(), t); err != nil {
		return "", false
	}
	return t, true
}

func (s *Service) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	t, ok := s.tenantFromPath(r)
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found. Check the tenant id in the authority URL.")
		return
	}
	base := s.resources.Base()
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.resources.Issuer(t),
		"token_endpoint":                        base + "/" + t + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/" + t + "/oauth2/v2.0/authorize",
		"jwks_uri":                              base + "/" + t + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"token"},
		"grant_types_supported":                 []string{"client_credentials"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt"},
		"tenant_region_scope":                   "coffer",
		"cloud_instance_name":                   "coffer",
	})
}

func (s *Service) keys(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tenantFromPath(r); !ok {
		oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found. Check the tenant id in the URL.")
		return
	}
	b, err := s.signer.JWKS()
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "the signing keys are unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// instanceDiscovery answers MSAL's authority validation for this host. It vouches only for
// an authorization_endpoint on this server (https, this host and port): for any other it
// answers as Entra does for an unknown authority, 400 invalid_instance (AADSTS50049), which
// MSAL reports as "invalid_instance" and stops. Without an authorization_endpoint it
// describes this host for the "common" tenant.
func (s *Service) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	base := s.resources.Base()
	host := strings.TrimPrefix(base, "https://")
	tenant := "common"
	if auth := r.URL.Query().Get("authorization_endpoint"); auth != "" {
		u, err := url.Parse(auth)
		if err != nil || !strings.EqualFold(u.Scheme, "https") || u.User != nil || !sameHost(u.Host, host) {
			oauthError(w, http.StatusBadRequest, "invalid_instance", "AADSTS50049: Unknown or invalid instance. This server is the authority "+base+" only: use an authority on it, or disable instance discovery.")
			return
		}
		if t, _, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); ok && tenancy.IsUUID(t) {
			tenant = t
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": base + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []map[string]any{{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

// sameHost reports whether the URL hosts a and b are the same host and port (443 when
// absent), host names compared case-insensitively.
func sameHost(a, b string) bool {
	withPort := func(h string) string {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return net.JoinHostPort(h, "443")
		}
		return h
	}
	return a != "" && strings.EqualFold(withPort(a), withPort(b))
}

// maxTokenRequest caps the token endpoint's form body.
const maxTokenRequest = 64 << 10

func (s *Service) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenantID := r.PathValue("tenant")
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, tenantID, "", http.StatusBadRequest, "invalid_request", "AADSTS900144: the request body must be application/x-www-form-urlencoded and at most 64 KiB.", "bad form")
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) != 1 {
			s.refuse(w, r, tenantID, "", http.StatusBadRequest, "invalid_request", "AADSTS90015: parameter "+k+" is duplicated.", "duplicate parameter")
			return
		}
	}
	appID := form.Get("client_id")
	client, source := tenantID+"/"+appID, sourceOf(r.RemoteAddr)
	if wait := s.failures.blocked(client, source); wait > 0 {
		secs := int(wait.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.refuse(w, r, tenantID, appID, http.StatusTooManyRequests, "temporarily_unavailable", "AADSTS90055: too many failed sign-in attempts for this client or from this address; retry after "+strconv.Itoa(secs)+" seconds.", "throttled")
		return
	}
	if form.Get("grant_type") != "client_credentials" {
		s.refuse(w, r, tenantID, appID, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: only grant_type=client_credentials is supported.", "grant type")
		return
	}
	resource, ok := s.resourceFromScope(form.Get("scope"))
	if !ok {
		s.refuse(w, r, tenantID, appID, http.StatusBadRequest, "invalid_scope", "AADSTS70011: the scope must be one resource followed by /.default, e.g. "+s.resources.Base()+"/.default.", "scope")
		return
	}
	if _, ok := s.tenantFromPath(r); !ok {
		s.refuse(w, r, tenantID, appID, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant not found. Check the tenant id in the authority URL.", "tenant")
		return
	}
	var p tenancy.Principal
	var err error
	switch {
	case form.Has("client_secret") && !form.Has("client_assertion"):
		p, err = s.tenants.VerifySecret(ctx, tenantID, appID, form.Get("client_secret"))
	case form.Has("client_assertion") && !form.Has("client_secret"):
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			err = tenancy.ErrInvalidClient
			break
		}
		p, err = s.verifyAssertion(ctx, tenantID, appID, form.Get("client_assertion"), s.resources.Base()+"/"+tenantID+"/oauth2/v2.0/token")
	default:
		err = tenancy.ErrInvalidClient
	}
	if errors.Is(err, tenancy.ErrInvalidClient) {
		s.failures.fail(client, source)
		s.refuse(w, r, tenantID, appID, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret or assertion provided, or the client is not in this tenant.", "invalid client")
		return
	}
	if err != nil {
		s.refuse(w, r, tenantID, appID, http.StatusInternalServerError, "server_error", "the token could not be issued; retry later.", "store: "+err.Error())
		return
	}
	now := s.now()
	tok, err := s.signer.Sign(token.Claims{
		Issuer:    s.resources.Issuer(tenantID),
		Audience:  []string{resource},
		TenantID:  tenantID,
		ObjectID:  p.ObjectID,
		Subject:   p.ObjectID,
		AppID:     p.AppID,
		AZP:       p.AppID,
		Version:   "2.0",
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ExpiresAt: now.Add(s.lifetime).Unix(),
	})
	if err != nil {
		s.refuse(w, r, tenantID, appID, http.StatusInternalServerError, "server_error", "the token could not be signed; retry later.", "sign: "+err.Error())
		return
	}
	secs := int(s.lifetime.Seconds())
	if s.OnIssue != nil {
		if err := s.OnIssue(ctx, r, tenantID, appID, p.ObjectID, http.StatusOK, ""); err != nil {
			oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the token request could not be written to the audit log, so no token was issued; retry later, and ask the operator to check the audit log's disk and output.")
			return
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// resourceFromScope accepts "<resource>/.default" plus MSAL's own openid, profile and
// offline_access scopes, and returns the resource.
func (s *Service) resourceFromScope(scope string) (string, bool) {
	var resource string
	for _, sc := range strings.Fields(scope) {
		switch sc {
		case "openid", "profile", "offline_access":
			continue
		}
		r, ok := strings.CutSuffix(sc, "/.default")
		if !ok || resource != "" || !s.resources.Audience(r) {
			return "", false
		}
		resource = r
	}
	return resource, resource != ""
}

func (s *Service) refuse(w http.ResponseWriter, r *http.Request, tenantID, appID string, status int, code, desc, reason string) {
	if s.OnIssue != nil {
		// A refusal carries no token: it is answered even if its record fails (OnIssue logs that).
		_ = s.OnIssue(r.Context(), r, tenantID, appID, "", status, reason)
	}
	oauthError(w, status, code, desc)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	api.WriteJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc,
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"error_codes":       []int{},
	})
}

// IssuerBase derives "https://host[:port]" from a host and a port ("443" is left out).
func IssuerBase(host, port string) string {
	if port == "" || port == "443" {
		return "https://" + host
	}
	return fmt.Sprintf("https://%s:%s", host, port)
}
