package server

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/coffer-kms/coffer/internal/api"
	"github.com/coffer-kms/coffer/internal/identity/token"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/skr"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Secure key release (docs/ATTESTATION.md "Secure key release"): the keys domain decides
// (keys.Releaser); the server supplies the two things it cannot know — which keys verify an
// authority's tokens, and the key that signs the result.
//
// Authorities: one of this server's attestation providers (https://<p>.attest.<suffix>[:port],
// verified with the attestation signer's own key set, never fetched), or an external
// authority listed in --skr-trusted-authorities, whose OpenID metadata and JWKS are fetched
// by token.RemoteKeySet (HTTPS only, the issuer's host only, size-capped, cached, refreshes
// rate limited). Any other authority a policy names verifies nothing.
//
// Signing: the release result is signed by the attestation signer (ES256, the keys of every
// provider's /certs), with iss = the vault URL.

// releaseRoutes are the release endpoints (api.Release) over this server's releaser.
func (s *Server) releaseRoutes() []api.Route {
	rl := &api.Release{Releaser: func(tenancy.Kind) (*keys.Releaser, error) {
		id, err := s.ident()
		if err != nil {
			return nil, err
		}
		return &keys.Releaser{Keys: id.keys, Verifier: releaseVerifier{s: s, id: id}, Sign: id.attestSigner.SignClaims}, nil
	}}
	return rl.Routes()
}

// Fixed reasons of a refused authority or token (they reach the audit log and the caller).
var (
	errAuthorityUntrusted = errors.New("the authority is neither an attestation provider of this server nor listed in --skr-trusted-authorities")
	errNoSuchProvider     = errors.New("no attestation provider of this server has this URL")
	errTokenSignature     = errors.New("the token is not a valid JWS signed by the authority's keys")
	errTokenIssuer        = errors.New("the token's iss is not the authority")
)

// releaseVerifier implements keys.AttestationVerifier.
type releaseVerifier struct {
	s  *Server
	id *identity
}

// Verify checks raw against the keys of authority and requires iss to name it.
func (v releaseVerifier) Verify(ctx context.Context, authority, raw string) (map[string]any, error) {
	ks, iss, err := v.s.authorityKeys(ctx, v.id, authority)
	if err != nil {
		return nil, err
	}
	claims, err := token.VerifyClaims(raw, ks)
	if err != nil {
		return nil, errTokenSignature
	}
	if got, _ := claims["iss"].(string); got != iss {
		return nil, errTokenIssuer
	}
	return claims, nil
}

// authorityKeys returns the key set that verifies authority's tokens and the exact iss they
// carry.
func (s *Server) authorityKeys(ctx context.Context, id *identity, authority string) (token.KeySet, string, error) {
	u, err := url.Parse(authority)
	if err != nil || u.Scheme != "https" {
		return nil, "", errAuthorityUntrusted
	}
	if name, ok := attestHost(u.Host, s.cfg.DNSSuffix); ok {
		iss := s.attestURL(name)
		if !skr.SameAuthority(authority, iss) || strings.Trim(u.Path, "/") != "" {
			return nil, "", errNoSuchProvider
		}
		if _, err := s.tenants.AttestationProvider(ctx, name); err != nil {
			if errors.Is(err, tenancy.ErrNotFound) {
				return nil, "", errNoSuchProvider
			}
			return nil, "", err
		}
		return id.attestSigner.KeySet(), iss, nil
	}
	for _, t := range s.cfg.SKRTrustedAuthorities {
		if skr.SameAuthority(authority, t) {
			return s.remoteKeys(t), t, nil
		}
	}
	return nil, "", errAuthorityUntrusted
}
