package token

import (
	"encoding/json"
	"time"
)

// Leeway bounds for Expect.Leeway.
const (
	// DefaultLeeway is the clock skew Validate allows when Expect.Leeway is zero.
	DefaultLeeway = 2 * time.Minute
	// MaxLeeway is the most clock skew Validate allows; larger values are clamped to it.
	MaxLeeway = 5 * time.Minute
)

// Expect is what a token must satisfy to be accepted by Validate.
type Expect struct {
	// Issuers are the accepted iss values, compared exactly (no trailing-slash or case
	// variants). At least one is required.
	Issuers []string
	// Audiences are the accepted aud values, compared exactly; the token's aud (a string or
	// an array) must contain one of them. At least one is required.
	Audiences []string
	// TenantID, if not empty, must equal the token's tid.
	TenantID string
	// Now is the time to check exp, nbf and iat against. Required: there is no default
	// clock, so tests and callers always say which time they mean.
	Now time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat: 0 means DefaultLeeway, negative
	// means none, and more than MaxLeeway means MaxLeeway.
	Leeway time.Duration
	// Keys are the keys tokens may be signed with, and the algorithms allowed for each.
	Keys KeySet
}

var (
	errMisconfigured = invalid("validator misconfigured: Expect needs Issuers, Audiences, Keys and Now")
	errPayload       = invalid("malformed claims")
	errIssuer        = invalid("issuer not accepted")
	errAudience      = invalid("audience not accepted")
	errTenant        = invalid("tenant not accepted")
	errExpMissing    = invalid("exp missing")
	errExpired       = invalid("expired")
	errNotYetValid   = invalid("not yet valid (nbf)")
	errIssuedFuture  = invalid("issued in the future (iat)")
)

func (e *Expect) leeway() int64 {
	switch {
	case e.Leeway == 0:
		return int64(DefaultLeeway / time.Second)
	case e.Leeway < 0:
		return 0
	case e.Leeway > MaxLeeway:
		return int64(MaxLeeway / time.Second)
	}
	return int64(e.Leeway / time.Second)
}

func (e *Expect) usable() bool {
	if len(e.Issuers) == 0 || len(e.Audiences) == 0 || e.Keys == nil || e.Now.IsZero() {
		return false
	}
	for _, s := range e.Issuers {
		if s == "" {
			return false
		}
	}
	for _, s := range e.Audiences {
		if s == "" {
			return false
		}
	}
	return true
}

// Validator validates bearer tokens. The zero value is ready to use; it holds no state, so
// one Validator may serve any number of goroutines.
type Validator struct{}

// Validate checks raw, a compact JWS, against exp and returns its claims. Every failure is
// ErrInvalidToken wrapped with a short reason; an Expect missing Issuers, Audiences, Keys or
// Now also fails this way, so a misconfiguration rejects every token rather than none.
//
// The signature is verified (with an algorithm the key allows) before the payload is parsed.
// The payload must then be a JSON object without duplicate or case-variant member names with
// iss among exp.Issuers, aud containing one of exp.Audiences, tid equal to exp.TenantID when
// that is set, an integer exp later than exp.Now minus the leeway, and nbf and iat (when
// present) no later than exp.Now plus the leeway.
func (Validator) Validate(raw string, exp Expect) (*Claims, error) {
	if !exp.usable() {
		return nil, errMisconfigured
	}
	payload, err := verifyJWS(raw, exp.Keys)
	if err != nil {
		return nil, err
	}
	if err := checkJSONObject(payload, claimNames); err != nil {
		return nil, invalidJSON(err)
	}
	c := new(Claims)
	if err := json.Unmarshal(payload, c); err != nil {
		return nil, errPayload
	}
	if !allowed(exp.Issuers, c.Issuer) {
		return nil, errIssuer
	}
	if !c.Audience.Contains(exp.Audiences) {
		return nil, errAudience
	}
	if exp.TenantID != "" && c.TenantID != exp.TenantID {
		return nil, errTenant
	}
	now, leeway := exp.Now.Unix(), exp.leeway()
	switch {
	case c.ExpiresAt == 0:
		return nil, errExpMissing
	case now-leeway >= c.ExpiresAt:
		return nil, errExpired
	case c.NotBefore != 0 && c.NotBefore > now+leeway:
		return nil, errNotYetValid
	case c.IssuedAt != 0 && c.IssuedAt > now+leeway:
		return nil, errIssuedFuture
	}
	return c, nil
}
