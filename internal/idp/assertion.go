package idp

import (
	"context"
	"crypto/sha1" // #nosec G505 -- x5t is SHA-1 by definition (RFC 7515 §4.1.7); only used to find a certificate
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// maxAssertion caps a client assertion; MSAL's are about 1 KB (2 KB with x5c).
const maxAssertion = 16 << 10

// assertionChecker remembers the jti of every accepted client assertion until it expires, so
// that an assertion is single-use (SECURITY-NOTES A14).
type assertionChecker struct {
	now  func() time.Time
	mu   sync.Mutex
	seen map[string]time.Time
}

func newAssertionChecker(now func() time.Time) *assertionChecker {
	return &assertionChecker{now: now, seen: map[string]time.Time{}}
}

// use records jti until exp and reports whether it was fresh.
func (c *assertionChecker) use(jti string, exp time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.seen) > 10000 {
		for k, e := range c.seen {
			if now.After(e) {
				delete(c.seen, k)
			}
		}
	}
	if e, ok := c.seen[jti]; ok && !now.After(e) {
		return false
	}
	c.seen[jti] = exp
	return true
}

// verifyAssertion authenticates a client by a JWT signed with the key of one of its
// registered certificates (RFC 7523, as MSAL sends it: PS256 with x5t#S256, or RS256 with x5t).
// Every failure is tenancy.ErrInvalidClient.
func (s *Service) verifyAssertion(ctx context.Context, tenantID, appID, assertion, audience string) (tenancy.Principal, error) {
	if len(assertion) > maxAssertion {
		return tenancy.Principal{}, tenancy.ErrInvalidClient
	}
	p, err := s.tenants.PrincipalByAppID(ctx, tenantID, appID)
	if errors.Is(err, tenancy.ErrNotFound) {
		return tenancy.Principal{}, tenancy.ErrInvalidClient
	}
	if err != nil {
		return tenancy.Principal{}, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"PS256", "RS256", "ES256"}),
		jwt.WithAudience(audience), jwt.WithIssuer(appID), jwt.WithSubject(appID),
		jwt.WithExpirationRequired(), jwt.WithLeeway(2*time.Minute), jwt.WithTimeFunc(s.now),
	)
	var claims jwt.RegisteredClaims
	_, err = parser.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		for _, c := range p.Certificates {
			if thumbprintMatches(t.Header, c.DER) {
				cert, err := x509.ParseCertificate(c.DER)
				if err != nil {
					return nil, err
				}
				if now := s.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
					return nil, errors.New("certificate is not valid now")
				}
				return cert.PublicKey, nil
			}
		}
		return nil, errors.New("no registered certificate matches the assertion's thumbprint")
	})
	if err != nil || claims.ID == "" || claims.ExpiresAt == nil || claims.ExpiresAt.Sub(s.now()) > time.Hour {
		return tenancy.Principal{}, tenancy.ErrInvalidClient
	}
	if !s.assertion.use(appID+"|"+claims.ID, claims.ExpiresAt.Time.Add(2*time.Minute)) {
		return tenancy.Principal{}, tenancy.ErrInvalidClient
	}
	return p, nil
}

// thumbprintMatches compares the x5t#S256 (or x5t) header with the certificate. MSAL encodes
// thumbprints with standard base64; RFC 7515 says base64url: accept both, padded or not,
// each strictly (strictb64: no whitespace, canonical).
func thumbprintMatches(h map[string]any, der []byte) bool {
	decode := func(v any) []byte {
		s, _ := v.(string)
		for _, enc := range []*strictb64.Encoding{strictb64.Std, strictb64.RawStd, strictb64.URL, strictb64.PaddedURL} {
			if b, err := enc.DecodeString("", s); err == nil {
				return b
			}
		}
		return nil
	}
	if v, ok := h["x5t#S256"]; ok {
		sum := sha256.Sum256(der)
		return string(decode(v)) == string(sum[:])
	}
	if v, ok := h["x5t"]; ok {
		sum := sha1.Sum(der)
		return string(decode(v)) == string(sum[:])
	}
	return false
}
