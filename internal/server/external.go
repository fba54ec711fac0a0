package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// peekIssuer reads the iss claim of a compact JWS without verifying it, only to choose the key
// set that will verify it. Anything malformed yields "" (the built-in issuer path then
// rejects the token).
func peekIssuer(raw string) string {
	if len(raw) > token.MaxTokenLen {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := strictb64.URL.DecodeString("", parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

// externalClient fetches external issuers' discovery documents and key sets.
func (s *Server) externalClient() *http.Client {
	if s.ExternalHTTPClient != nil {
		return s.ExternalHTTPClient
	}
	return &http.Client{Timeout: token.RemoteTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
}

// remoteKeys returns the cached key set of an external issuer.
func (s *Server) remoteKeys(issuer string) *token.RemoteKeySet {
	s.remoteMu.Lock()
	defer s.remoteMu.Unlock()
	if s.remote == nil {
		s.remote = map[string]*token.RemoteKeySet{}
	}
	ks, ok := s.remote[issuer]
	if !ok {
		ks = token.NewRemoteKeySet(issuer, s.externalClient(), token.RemoteOptions{Now: s.now})
		s.remote[issuer] = ks
	}
	return ks
}

// authenticateExternal validates a token from an external issuer the store's tenant trusts,
// and maps its subject (oid, else sub) to a registered user principal. A subject nobody
// registered authenticates but holds no role, so every action is refused with 403.
func (s *Server) authenticateExternal(ctx context.Context, raw, iss string, store tenancy.Vault, now time.Time) (api.Caller, time.Time, error) {
	issuers, err := s.tenants.Issuers(ctx, store.TenantID)
	if err != nil {
		return api.Caller{}, time.Time{}, err
	}
	var trusted *tenancy.Issuer
	for i := range issuers {
		if issuers[i].URL == iss {
			trusted = &issuers[i]
		}
	}
	if trusted == nil {
		return api.Caller{}, time.Time{}, fmt.Errorf("%w: issuer is not trusted by the tenant", api.ErrUnauthenticated)
	}
	c, err := token.Validator{}.Validate(raw, token.Expect{
		Issuers: []string{trusted.URL}, Audiences: []string{trusted.Audience}, Now: now, Keys: s.remoteKeys(trusted.URL),
	})
	if err != nil {
		return api.Caller{}, time.Time{}, fmt.Errorf("%w: %v", api.ErrUnauthenticated, err)
	}
	subject := c.ObjectID
	if subject == "" {
		subject = c.Subject
	}
	app := c.AppID
	if app == "" {
		app = c.AZP
	}
	caller := api.Caller{TenantID: store.TenantID, ObjectID: "unregistered-user", AppID: app}
	if u, err := s.tenants.UserBySubject(ctx, store.TenantID, trusted.ID, subject); err == nil {
		caller.ObjectID = u.ObjectID
	} else if !errors.Is(err, tenancy.ErrNotFound) {
		return api.Caller{}, time.Time{}, err
	}
	return caller, time.Unix(c.ExpiresAt, 0), nil
}
