package tenancy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Issuer is an external OpenID Connect issuer a tenant trusts (Entra ID, Keycloak, Dex…).
// Tokens it signs are accepted for the tenant's stores when their audience is Audience; the
// subject must be registered as a user principal to be granted anything.
type Issuer struct {
	ID       string    `json:"id"`
	TenantID string    `json:"tenantId"`
	URL      string    `json:"issuer"`
	Audience string    `json:"audience"`
	Created  time.Time `json:"created"`
}

func issuerKey(tenantID, id string) string { return "tenants/" + tenantID + "/issuers/" + id }

// subjectKey indexes user principals by (issuer, subject); the subject is hashed so any
// string an issuer uses is a safe storage path.
func subjectKey(tenantID, issuerID, subject string) string {
	h := sha256.Sum256([]byte(subject))
	return "tenants/" + tenantID + "/issuers/" + issuerID + "/subjects/" + hex.EncodeToString(h[:])
}

// CheckIssuerURL validates an issuer URL: https, a host, no query, fragment or user info.
func CheckIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || len(raw) > 512 {
		return fmt.Errorf("%w: issuer %q must be an https URL without query, fragment or user info", ErrInvalidName, raw)
	}
	return nil
}

// CreateIssuer makes tenantID trust an external issuer for tokens with the given audience.
func (s *Store) CreateIssuer(ctx context.Context, tenantID, issuerURL, audience string) (Issuer, error) {
	if err := CheckIssuerURL(issuerURL); err != nil {
		return Issuer{}, err
	}
	if audience == "" || len(audience) > 512 {
		return Issuer{}, fmt.Errorf("%w: audience must be 1-512 characters", ErrInvalidName)
	}
	is := Issuer{ID: NewUUID(), TenantID: tenantID, URL: issuerURL, Audience: audience, Created: s.now().UTC()}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		existing, err := issuersIn(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		for _, e := range existing {
			if e.URL == issuerURL {
				return fmt.Errorf("issuer %s: %w", issuerURL, ErrExists)
			}
		}
		if len(existing) >= 20 {
			return fmt.Errorf("%w: a tenant trusts at most 20 issuers", ErrInvalidName)
		}
		return putJSON(ctx, tx, issuerKey(tenantID, is.ID), is)
	})
	return is, err
}

func issuersIn(ctx context.Context, r storage.Reader, tenantID string) ([]Issuer, error) {
	prefix := "tenants/" + tenantID + "/issuers/"
	var out []Issuer
	err := eachKey(ctx, r, prefix, func(key string) error {
		if strings.Contains(key[len(prefix):], "/") {
			return nil // subject index entries
		}
		var is Issuer
		if err := getJSON(ctx, r, key, &is); err != nil {
			return err
		}
		out = append(out, is)
		return nil
	})
	return out, err
}

// Issuers lists the external issuers tenantID trusts.
func (s *Store) Issuers(ctx context.Context, tenantID string) ([]Issuer, error) {
	return issuersIn(ctx, s.db, tenantID)
}

// CreateUser registers the subject (sub or oid claim) of an external issuer as a user
// principal of the tenant, so that role assignments can name it.
func (s *Store) CreateUser(ctx context.Context, tenantID, issuerID, subject, displayName string) (Principal, error) {
	if subject == "" || len(subject) > 256 || displayName == "" || len(displayName) > 120 {
		return Principal{}, fmt.Errorf("%w: subject must be 1-256 and display name 1-120 characters", ErrInvalidName)
	}
	p := Principal{ObjectID: NewUUID(), TenantID: tenantID, Type: User, DisplayName: displayName, Created: s.now().UTC()}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, issuerKey(tenantID, issuerID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("issuer %s: %w", issuerID, ErrNotFound))
		}
		if ok, err := exists(ctx, tx, subjectKey(tenantID, issuerID, subject)); err != nil || ok {
			return errors.Join(err, fmt.Errorf("user of issuer %s: %w", issuerID, ErrExists))
		}
		if err := putJSON(ctx, tx, principalKey(tenantID, p.ObjectID), p); err != nil {
			return err
		}
		return putJSON(ctx, tx, subjectKey(tenantID, issuerID, subject), p.ObjectID)
	})
	return p, err
}

// UserBySubject finds the user principal registered for an issuer's subject.
func (s *Store) UserBySubject(ctx context.Context, tenantID, issuerID, subject string) (Principal, error) {
	var oid string
	if err := getJSON(ctx, s.db, subjectKey(tenantID, issuerID, subject), &oid); err != nil {
		return Principal{}, err
	}
	return s.Principal(ctx, tenantID, oid)
}
