package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/coffer-kms/coffer/internal/storage"
)

// PrincipalType tells service principals from users of an external issuer.
type PrincipalType string

// The principal types.
const (
	ServicePrincipal PrincipalType = "ServicePrincipal"
	User             PrincipalType = "User"
)

// Principal is an identity of a tenant: its object id (oid) and, for service principals, the
// application (client) id it authenticates with.
type Principal struct {
	ObjectID     string            `json:"objectId"`
	AppID        string            `json:"appId,omitempty"`
	TenantID     string            `json:"tenantId"`
	Type         PrincipalType     `json:"type"`
	DisplayName  string            `json:"displayName"`
	Secrets      []SecretCred      `json:"secrets,omitempty"`
	Certificates []CertificateCred `json:"certificates,omitempty"`
	Created      time.Time         `json:"created"`
}

// SecretCred is a client secret, stored only as an argon2id hash.
type SecretCred struct {
	ID      string    `json:"id"`
	Hint    string    `json:"hint"` // first three characters, as Entra shows them
	Salt    []byte    `json:"salt"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// CertificateCred is a client certificate for client_assertion authentication.
type CertificateCred struct {
	Thumbprint string `json:"thumbprint"` // hex SHA-1 as Entra (x5t); SHA-256 kept too
	SHA256     string `json:"sha256"`
	DER        []byte `json:"der"`
}

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane). Client secrets are
// 256-bit random strings, so the hash guards against offline guessing of nothing weaker.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashSecret(secret string, salt []byte) []byte {
	return argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
}

func principalKey(tenantID, oid string) string {
	return "tenants/" + tenantID + "/principals/" + oid
}

func appKey(appID string) string { return "apps/" + appID }

// appRef is the global index from client id to tenant and object id.
type appRef struct {
	TenantID string `json:"tenantId"`
	ObjectID string `json:"objectId"`
}

// newSecret returns a fresh client secret: 40 characters of base64url over 30 random bytes
// with a "~" in Entra's style.
func newSecret() string {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	return s[:3] + "8Q~" + s[3:]
}

// SecretLifetime is how long a new client secret is valid.
const SecretLifetime = 2 * 365 * 24 * time.Hour

// CreateServicePrincipal creates a service principal in tenantID with a first client secret,
// which is returned once and never stored.
func (s *Store) CreateServicePrincipal(ctx context.Context, tenantID, displayName string) (Principal, string, error) {
	if displayName == "" || len(displayName) > 120 {
		return Principal{}, "", fmt.Errorf("%w: display name must be 1-120 characters", ErrInvalidName)
	}
	p := Principal{ObjectID: NewUUID(), AppID: NewUUID(), TenantID: tenantID, Type: ServicePrincipal, DisplayName: displayName, Created: s.now().UTC()}
	secret, cred := s.newSecretCred()
	p.Secrets = []SecretCred{cred}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		if err := putJSON(ctx, tx, principalKey(tenantID, p.ObjectID), p); err != nil {
			return err
		}
		return putJSON(ctx, tx, appKey(p.AppID), appRef{TenantID: tenantID, ObjectID: p.ObjectID})
	})
	if err != nil {
		return Principal{}, "", err
	}
	return p, secret, nil
}

func (s *Store) newSecretCred() (string, SecretCred) {
	secret := newSecret()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	now := s.now().UTC()
	return secret, SecretCred{ID: NewUUID(), Hint: secret[:3], Salt: salt, Hash: hashSecret(secret, salt), Created: now, Expires: now.Add(SecretLifetime)}
}

// AddSecret adds a client secret to a service principal and returns it (once).
func (s *Store) AddSecret(ctx context.Context, tenantID, objectID string) (string, SecretCred, error) {
	secret, cred := s.newSecretCred()
	err := s.updatePrincipal(ctx, tenantID, objectID, func(p *Principal) error {
		if p.Type != ServicePrincipal {
			return fmt.Errorf("%w: only service principals have client secrets", ErrInvalidName)
		}
		if len(p.Secrets) >= 10 {
			return fmt.Errorf("%w: a principal has at most 10 client secrets; remove one first", ErrInvalidName)
		}
		p.Secrets = append(p.Secrets, cred)
		return nil
	})
	return secret, cred, err
}

// AddCertificate registers a client certificate (DER) for client_assertion authentication.
func (s *Store) AddCertificate(ctx context.Context, tenantID, objectID string, der []byte) (CertificateCred, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CertificateCred{}, fmt.Errorf("%w: not an X.509 certificate", ErrInvalidName)
	}
	cred := CertificateCred{Thumbprint: thumbprintSHA1(cert.Raw), SHA256: hexSHA256(cert.Raw), DER: cert.Raw}
	err = s.updatePrincipal(ctx, tenantID, objectID, func(p *Principal) error {
		for _, c := range p.Certificates {
			if c.SHA256 == cred.SHA256 {
				return fmt.Errorf("certificate: %w", ErrExists)
			}
		}
		p.Certificates = append(p.Certificates, cred)
		return nil
	})
	return cred, err
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (s *Store) updatePrincipal(ctx context.Context, tenantID, objectID string, fn func(p *Principal) error) error {
	return s.db.Txn(ctx, func(tx storage.Tx) error {
		var p Principal
		if err := getJSON(ctx, tx, principalKey(tenantID, objectID), &p); err != nil {
			return fmt.Errorf("principal %s: %w", objectID, err)
		}
		if err := fn(&p); err != nil {
			return err
		}
		return putJSON(ctx, tx, principalKey(tenantID, objectID), p)
	})
}

// Principal returns a principal of tenantID.
func (s *Store) Principal(ctx context.Context, tenantID, objectID string) (Principal, error) {
	var p Principal
	if !IsUUID(tenantID) || !IsUUID(objectID) {
		return p, ErrNotFound
	}
	err := getJSON(ctx, s.db, principalKey(tenantID, objectID), &p)
	return p, err
}

// Principals lists the principals of a tenant.
func (s *Store) Principals(ctx context.Context, tenantID string) ([]Principal, error) {
	prefix := "tenants/" + tenantID + "/principals/"
	var out []Principal
	err := eachKey(ctx, s.db, prefix, func(key string) error {
		var p Principal
		if err := getJSON(ctx, s.db, key, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// PrincipalByAppID finds the service principal of a client id within tenantID.
func (s *Store) PrincipalByAppID(ctx context.Context, tenantID, appID string) (Principal, error) {
	var ref appRef
	if !IsUUID(appID) {
		return Principal{}, ErrNotFound
	}
	if err := getJSON(ctx, s.db, appKey(appID), &ref); err != nil {
		return Principal{}, err
	}
	if ref.TenantID != tenantID {
		return Principal{}, ErrNotFound
	}
	return s.Principal(ctx, ref.TenantID, ref.ObjectID)
}

// dummySalt makes an unknown client cost as much as a known one.
var dummySalt = make([]byte, 16)

// VerifySecret authenticates a client id and secret in tenantID. Unknown clients, other
// tenants' clients, expired and wrong secrets all return ErrInvalidClient after the same work.
func (s *Store) VerifySecret(ctx context.Context, tenantID, appID, secret string) (Principal, error) {
	p, err := s.PrincipalByAppID(ctx, tenantID, appID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Principal{}, err
	}
	if err != nil || len(p.Secrets) == 0 || len(secret) > 256 {
		hashSecret(secret, dummySalt)
		return Principal{}, ErrInvalidClient
	}
	// Hash only against the live secrets whose public hint matches (normally one), and against
	// a dummy when none does, so the work per request is one hash whatever the outcome.
	now := s.now()
	ok, tried := 0, 0
	for _, c := range p.Secrets {
		if now.After(c.Expires) || !strings.HasPrefix(secret, c.Hint) {
			continue
		}
		tried++
		ok |= subtle.ConstantTimeCompare(hashSecret(secret, c.Salt), c.Hash)
	}
	if tried == 0 {
		hashSecret(secret, dummySalt)
	}
	if ok != 1 {
		return Principal{}, ErrInvalidClient
	}
	return p, nil
}
