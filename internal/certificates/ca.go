package certificates

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/pki"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/storage"
)

// A tenant's certificate authority (one per tenant, shared by its vaults), outside any
// vault:
//
//	tenants/<tenant>/certca/current             caRecord: certificate and PKCS#8 key
//	tenants/<tenant>/certca/previous/<created>  caRecord of a rotated-out authority
//
// Certificates whose policy names an issuer object with provider TenantCA are signed by the
// current authority. Rotation makes a new key and certificate; certificates issued before
// keep chaining to the old one, which stays stored.
type caRecord struct {
	Cert    []byte `json:"cert"`
	Key     []byte `json:"key"`
	Created int64  `json:"created"`
}

// CAInfo describes a tenant's certificate authority (no key material).
type CAInfo struct {
	Subject        string    `json:"subject"`
	NotBefore      time.Time `json:"notBefore"`
	NotAfter       time.Time `json:"notAfter"`
	Thumbprint     string    `json:"x5t"`
	CertificatePEM string    `json:"certificatePem"`
}

// ErrNoCA: the tenant has no certificate authority yet.
var ErrNoCA = errors.New("the tenant has no certificate authority")

const defaultCAMonths = 120

func caPath(tenantID string) string { return "tenants/" + tenantID + "/certca/current" }

type loadedCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func caInfo(c *x509.Certificate) CAInfo {
	return CAInfo{
		Subject: pki.FormatSubject(c.Subject), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		Thumbprint:     fmt.Sprintf("%X", pki.Thumbprint(c.Raw)),
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
	}
}

// loadCA reads a tenant's current authority.
func (s *Service) loadCA(ctx context.Context, r storage.Reader, tenantID string) (*loadedCA, error) {
	if !names.Segment(tenantID) {
		return nil, errors.New("certificates: invalid tenant id")
	}
	var rec caRecord
	found, err := records.Get(ctx, r, caPath(tenantID), &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errorf(ErrBadParameter, "The tenant has no certificate authority: an administrator creates one with `coffer tenant ca rotate` (POST /v1/tenants/{tenant}/ca).")
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, errors.New("certificates: the tenant CA certificate is damaged")
	}
	key, err := parseKey(rec.Key)
	if err != nil {
		return nil, err
	}
	return &loadedCA{cert: cert, key: key}, nil
}

// GetCA describes a tenant's current certificate authority; ErrNoCA if it has none.
func (s *Service) GetCA(ctx context.Context, tenantID string) (CAInfo, error) {
	ca, err := s.loadCA(ctx, s.store, tenantID)
	if errors.Is(err, ErrBadParameter) {
		return CAInfo{}, ErrNoCA
	}
	if err != nil {
		return CAInfo{}, err
	}
	return caInfo(ca.cert), nil
}

// RotateCA creates the tenant's certificate authority, or replaces it with a new key and
// self-signed certificate (ECDSA P-384). subject "" means "CN=Coffer Tenant CA <tenant>";
// months 0 means 120.
func (s *Service) RotateCA(ctx context.Context, tenantID, subject string, months int) (CAInfo, error) {
	if !names.Segment(tenantID) {
		return CAInfo{}, errors.New("certificates: invalid tenant id")
	}
	if subject == "" {
		subject = "CN=Coffer Tenant CA " + tenantID
	}
	if months == 0 {
		months = defaultCAMonths
	}
	prof := pki.Profile{Subject: subject, KeyUsage: []string{"digitalSignature", "keyCertSign", "cRLSign"}, EKUs: []string{}, ValidityMonths: months}
	if err := prof.Check(); err != nil {
		return CAInfo{}, badParam("The CA profile is invalid: %s", err.Error())
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return CAInfo{}, fmt.Errorf("certificates: CA key: %w", err)
	}
	tmpl, err := pki.Template(prof, key.Public(), s.clock())
	if err != nil {
		return CAInfo{}, badParam("The CA certificate cannot be built: %s", err.Error())
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.MaxPathLenZero = true, true, true
	der, err := pki.Issue(tmpl, key.Public(), nil, key)
	if err != nil {
		return CAInfo{}, fmt.Errorf("certificates: CA certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return CAInfo{}, fmt.Errorf("certificates: CA key: %w", err)
	}
	defer clear(pkcs8)
	now := s.clock().Unix()
	err = s.store.Txn(ctx, func(tx storage.Tx) error {
		var old caRecord
		found, err := records.Get(ctx, tx, caPath(tenantID), &old)
		if err != nil {
			return err
		}
		if found {
			if err := records.Put(ctx, tx, fmt.Sprintf("tenants/%s/certca/previous/%020d", tenantID, old.Created), old); err != nil {
				return err
			}
		}
		return records.Put(ctx, tx, caPath(tenantID), caRecord{Cert: der, Key: pkcs8, Created: now})
	})
	if err != nil {
		return CAInfo{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CAInfo{}, err
	}
	return caInfo(cert), nil
}
