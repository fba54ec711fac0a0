// Package secdomain owns the security domain of managed HSM pools: activation, download
// (the pool's domain under a master key split with Shamir among custodian RSA keys), the
// transfer key a new pool publishes, and upload (a quorum's restore blob brings the domain
// into a new pool). The security domain is in the Azure CLI's format (internal/azsd) and
// carries the domain as internal/sdblob's Domain; uploads of Coffer's first format
// (sdblob's coffer-sd/1) are still read. docs/FORMAT.md describes the formats and the state
// record.
//
// A pool is inactive until its domain is downloaded (or uploaded): the server refuses key
// operations on it (Active). The domain key seals the pool's key backups (BackupKey), so a
// backup made in one pool restores only into a pool holding the same domain, which only a
// quorum of custodians can give it.
//
// Threat model: storage is untrusted except through the barrier it is given; the domain key
// and the transfer private key are stored only through it and never returned, logged or put
// in an error. Every request field is attacker-controlled and validated (sdblob); a failed
// upload changes nothing. This package must not import net/http or a concrete storage backend.
package secdomain

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/azsd"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/sdblob"
	"github.com/coffer-kms/coffer/internal/shamir"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Errors. ErrBadParameter wraps every refusal of the caller's input; the api layer maps them.
var (
	ErrNotActivated = errors.New("the managed HSM pool is not activated: download its security domain (POST /securitydomain/download) or upload one (POST /securitydomain/upload) first")
	ErrActivated    = errors.New("the managed HSM pool already has a security domain: upload restores a domain only into a new, inactive pool")
	ErrBadParameter = errors.New("bad parameter")
	ErrNotPool      = errors.New("secdomain: not a managed HSM pool")
)

// Operation statuses (Key Vault's OperationStatus).
const (
	StatusSuccess    = "Success"
	StatusInProgress = "InProgress"
	StatusFailed     = "Failed"
)

// OpStatus is Key Vault's SecurityDomainOperationStatus.
type OpStatus struct {
	Status  string `json:"status"`
	Details string `json:"status_details,omitempty"`
}

// state is the pool's record at tenants/<tenant>/managedhsms/<pool>/securitydomain.
type state struct {
	DomainID    string `json:"domainId,omitempty"`
	DomainKey   []byte `json:"domainKey,omitempty"` // 32 bytes; only ever stored through the barrier
	Required    int    `json:"required,omitempty"`  // quorum of the last download or upload
	Activated   int64  `json:"activated,omitempty"`
	ActivatedBy string `json:"activatedBy,omitempty"` // download, upload or dev
	TransferKey []byte `json:"transferKey,omitempty"` // PKCS #8 RSA key, while inactive
	// TransferCert is the transfer key's self-signed certificate (DER), while inactive: the
	// Azure CLI reads the exchange key as a certificate and names it by its SHA-256.
	TransferCert []byte    `json:"transferCert,omitempty"`
	Download     *OpStatus `json:"download,omitempty"`
	Upload       *OpStatus `json:"upload,omitempty"`
}

func (st *state) active() bool { return len(st.DomainKey) == sdblob.DomainKeyLen }

// Service manages pools' security domains over a storage backend (the barrier).
type Service struct {
	store storage.Backend
	now   func() time.Time
	// TransferKeyBits is the size of transfer keys (3072 unless set).
	TransferKeyBits int
	mu              sync.Mutex // serialises state changes (download, upload, transfer key)
	active          sync.Map   // path → true: activation never goes back
	onActivate      func(ctx context.Context, v tenancy.Vault)
}

// OnActivate sets f to run after a pool's domain is activated or re-confirmed (a download,
// an upload, dev activation): the server installs the pool's token wrapping key
// (TokenWrapKey) there. f runs with the state lock held and cannot undo the activation; a
// failure is its own to report. Call it before the service is used.
func (s *Service) OnActivate(f func(ctx context.Context, v tenancy.Vault)) { s.onActivate = f }

func (s *Service) activated(ctx context.Context, v tenancy.Vault) {
	if s.onActivate != nil {
		s.onActivate(ctx, v)
	}
}

// New returns a Service over store; now is the clock (nil: time.Now).
func New(store storage.Backend, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now, TransferKeyBits: 3072}
}

func path(v tenancy.Vault) (string, error) {
	if v.Kind != tenancy.KindManagedHSM || v.TenantID == "" || v.Name == "" {
		return "", ErrNotPool
	}
	return "tenants/" + v.TenantID + "/managedhsms/" + v.Name + "/securitydomain", nil
}

func (s *Service) read(ctx context.Context, v tenancy.Vault) (string, state, error) {
	p, err := path(v)
	if err != nil {
		return "", state{}, err
	}
	var st state
	_, err = records.Get(ctx, s.store, p, &st)
	return p, st, err
}

func (s *Service) write(ctx context.Context, p string, st *state) error {
	return s.store.Txn(ctx, func(tx storage.Tx) error { return records.Put(ctx, tx, p, st) })
}

// Active reports whether the pool has a security domain.
func (s *Service) Active(ctx context.Context, v tenancy.Vault) (bool, error) {
	p, err := path(v)
	if err != nil {
		return false, err
	}
	if _, ok := s.active.Load(p); ok {
		return true, nil
	}
	_, st, err := s.read(ctx, v)
	if err != nil {
		return false, err
	}
	defer clear(st.DomainKey)
	if st.active() {
		s.active.Store(p, true)
	}
	return st.active(), nil
}

// BackupKey returns the key that seals the pool's key backups, derived from its domain key.
// An inactive pool is ErrNotActivated.
func (s *Service) BackupKey(ctx context.Context, v tenancy.Vault) ([]byte, error) {
	return s.derive(ctx, v, "key-backup")
}

// TokenWrapKeyIDLen is the length of a token wrapping key's id.
const TokenWrapKeyIDLen = 16

// TokenWrapKey returns the pool's security-domain wrapping key for its PKCS#11 token
// (docs/HSM.md): key = DeriveKey(domain key, "token-wrap"), 32 bytes, and its id, the first
// 16 bytes of DeriveKey(domain key, "token-wrap-id"), which names the token object (CKA_ID)
// and is not secret. Pools holding the same domain get the same key and id. An inactive
// pool is ErrNotActivated. The caller clears key.
func (s *Service) TokenWrapKey(ctx context.Context, v tenancy.Vault) (id, key []byte, err error) {
	idk, err := s.derive(ctx, v, "token-wrap-id")
	if err != nil {
		return nil, nil, err
	}
	if key, err = s.derive(ctx, v, "token-wrap"); err != nil {
		return nil, nil, err
	}
	return idk[:TokenWrapKeyIDLen], key, nil
}

// derive derives a key for purpose from the pool's domain key (ErrNotActivated without one).
func (s *Service) derive(ctx context.Context, v tenancy.Vault, purpose string) ([]byte, error) {
	_, st, err := s.read(ctx, v)
	if err != nil {
		return nil, err
	}
	defer clear(st.DomainKey)
	if !st.active() {
		return nil, ErrNotActivated
	}
	return sdblob.DeriveKey(st.DomainKey, purpose)
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadParameter, fmt.Sprintf(format, a...))
}

// Download activates the pool on its first call (a fresh random domain key) and returns the
// security domain in the Azure CLI's format (internal/azsd): the domain (sdblob.Domain) under
// a fresh master key split into one share per custodian key, any required of which rebuild
// it, each encrypted to its key and named by the SHA-256 of its certificate. A later
// download of an active pool splits the same domain again for the keys given (as Key Vault
// allows re-downloading); each download's shares combine only with its own.
func (s *Service) Download(ctx context.Context, v tenancy.Vault, certs []sdblob.JWK, required int) (string, error) {
	if len(certs) < sdblob.MinCustodians || len(certs) > sdblob.MaxCustodians {
		return "", bad("%d certificates given: the security domain needs 3 to 10 RSA public keys", len(certs))
	}
	if required < sdblob.MinQuorum || required > len(certs) {
		return "", bad("required (the quorum) is %d: it must be from 2 to the number of certificates (%d)", required, len(certs))
	}
	custodians := make([]azsd.Custodian, len(certs))
	seen := map[string]bool{}
	for i, c := range certs {
		pub, err := c.PublicKey()
		if err != nil {
			return "", bad("certificates[%d]: %v", i, err)
		}
		if len(c.Kid) > sdblob.MaxKidLen {
			return "", bad("certificates[%d]: kid is longer than %d bytes", i, sdblob.MaxKidLen)
		}
		x5t, err := c.CertThumbprint()
		if err != nil {
			return "", bad("certificates[%d]: %v", i, err)
		}
		tp := sdblob.Thumbprint(pub)
		if seen[tp] {
			return "", bad("certificates[%d] repeats a key: every custodian needs a key of their own", i)
		}
		seen[tp], custodians[i] = true, azsd.Custodian{Key: pub, X5tS256: x5t}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, st, err := s.read(ctx, v)
	if err != nil {
		return "", err
	}
	defer func() { clear(st.DomainKey) }() // the key made below too
	if !st.active() {
		st.DomainKey = make([]byte, sdblob.DomainKeyLen)
		if _, err := rand.Read(st.DomainKey); err != nil {
			return "", err
		}
		st.DomainID, st.Activated, st.ActivatedBy = tenancy.NewUUID(), s.now().Unix(), "download"
		st.TransferKey, st.TransferCert = nil, nil
	}
	d := sdblob.Domain{ID: st.DomainID, Key: st.DomainKey, Required: required}
	plain, err := d.Marshal()
	if err != nil {
		return "", err
	}
	text, err := azsd.Make([]azsd.Secret{{Tag: sdblob.DomainTag, Plaintext: plain}}, custodians, required)
	clear(plain)
	if err != nil {
		return "", err
	}
	st.Required, st.Download = required, &OpStatus{Status: StatusSuccess, Details: "the security domain was downloaded; the pool is active"}
	if err := s.write(ctx, p, &st); err != nil {
		return "", err
	}
	s.active.Store(p, true)
	s.activated(ctx, v)
	return text, nil
}

// DownloadStatus is the status of the pool's last download.
func (s *Service) DownloadStatus(ctx context.Context, v tenancy.Vault) (OpStatus, error) {
	_, st, err := s.read(ctx, v)
	clear(st.DomainKey)
	if err != nil || st.Download == nil {
		return OpStatus{Status: StatusFailed, Details: "no security domain download has been made for this pool"}, err
	}
	return *st.Download, nil
}

// UploadStatus is the status of the pool's last successful upload.
func (s *Service) UploadStatus(ctx context.Context, v tenancy.Vault) (OpStatus, error) {
	_, st, err := s.read(ctx, v)
	clear(st.DomainKey)
	if err != nil || st.Upload == nil {
		return OpStatus{Status: StatusFailed, Details: "no security domain has been uploaded to this pool"}, err
	}
	return *st.Upload, nil
}

// TransferKey returns the public transfer (exchange) key of an inactive pool, with its
// self-signed certificate in x5c, making both on first use. A quorum of custodians wraps
// the security domain to it for Upload (`az keyvault security-domain restore-blob
// --sd-exchange-key` takes the certificate).
func (s *Service) TransferKey(ctx context.Context, v tenancy.Vault) (sdblob.JWK, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	priv, cert, err := s.transferKey(ctx, v, true)
	if err != nil {
		return sdblob.JWK{}, err
	}
	return sdblob.TransferJWK(&priv.PublicKey, cert), nil
}

// transferKey loads (or, with create, makes) the pool's transfer key and its certificate; a
// key kept from before certificates gets one when create is set. s.mu must be held.
func (s *Service) transferKey(ctx context.Context, v tenancy.Vault, create bool) (*rsa.PrivateKey, []byte, error) {
	p, st, err := s.read(ctx, v)
	if err != nil {
		return nil, nil, err
	}
	defer clear(st.DomainKey)
	if st.active() {
		return nil, nil, ErrActivated
	}
	var priv *rsa.PrivateKey
	switch {
	case len(st.TransferKey) > 0:
		k, err := x509.ParsePKCS8PrivateKey(st.TransferKey)
		clear(st.TransferKey)
		if err != nil {
			return nil, nil, fmt.Errorf("security domain transfer key: %w", err)
		}
		priv = k.(*rsa.PrivateKey)
		if len(st.TransferCert) > 0 || !create {
			return priv, st.TransferCert, nil
		}
	case !create:
		return nil, nil, bad("this pool has no transfer key yet: get it (GET /securitydomain/upload) and wrap the security domain to it")
	default:
		if priv, err = rsa.GenerateKey(rand.Reader, s.TransferKeyBits); err != nil {
			return nil, nil, err
		}
	}
	if st.TransferCert, err = s.transferCert(v, priv); err != nil {
		return nil, nil, err
	}
	if st.TransferKey, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
		return nil, nil, err
	}
	defer clear(st.TransferKey)
	return priv, st.TransferCert, s.write(ctx, p, &st)
}

// transferCert makes the self-signed certificate of a pool's transfer key. Nothing checks
// its validity period (the Azure CLI only encrypts to its key and hashes it); ten years
// outlast any transfer.
func (s *Service) transferCert(v tenancy.Vault, priv *rsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := s.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: "Coffer security domain exchange key: " + v.Name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
}

// Upload restores a security domain into an inactive pool. text is a restore blob of the
// Azure CLI's format (what `az keyvault security-domain restore-blob` writes and `az
// keyvault security-domain upload` sends), made from a download of a pool and wrapped to
// this pool's transfer key; or, for security domains downloaded before that format, an
// upload of format coffer-sd-upload/1 (uploadV1). Unless the blob opens with the transfer
// key and holds a Coffer domain, nothing changes.
func (s *Service) Upload(ctx context.Context, v tenancy.Vault, text string) error {
	var peek struct {
		Format *string `json:"format"`
	}
	if json.Unmarshal([]byte(text), &peek) == nil && peek.Format != nil {
		return s.uploadV1(ctx, v, text)
	}
	rb, err := azsd.ParseRestoreBlob([]byte(text))
	if err != nil {
		return bad("%v: value must be the restore blob of `az keyvault security-domain restore-blob` or `coffer hsm sd upload`", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	priv, cert, err := s.transferKey(ctx, v, false)
	if err != nil {
		return err
	}
	if len(cert) == 0 {
		return bad("this pool's transfer key has no certificate yet: get the exchange key again (GET /securitydomain/upload) and make the restore blob for it")
	}
	secrets, err := azsd.Open(rb, priv, cert)
	defer azsd.ClearSecrets(secrets)
	switch {
	case errors.Is(err, azsd.ErrExchangeKey):
		return bad("the restore blob is wrapped to another exchange key: get this pool's (GET /securitydomain/upload) and make the restore blob again")
	case err != nil:
		return bad("the restore blob does not open with this pool's exchange key: it was changed, or not made for this pool")
	}
	if len(secrets) != 1 || secrets[0].Tag != sdblob.DomainTag {
		return bad("the restore blob holds no Coffer security domain (one datum tagged %q)", sdblob.DomainTag)
	}
	d, err := sdblob.ParseDomain(secrets[0].Plaintext)
	if err != nil {
		return bad("%v", err)
	}
	defer clear(d.Key)
	return s.restored(ctx, v, d)
}

// uploadV1 restores a security domain of format coffer-sd/1 from an upload
// (sdblob.Upload): the shares are decrypted with the pool's transfer key and combined;
// unless they rebuild the domain key the blob was made with (its MAC), nothing changes.
// Fewer shares than the blob's quorum are refused before any decryption.
func (s *Service) uploadV1(ctx context.Context, v tenancy.Vault, text string) error {
	u, b, err := sdblob.ParseUpload(text)
	if err != nil {
		return bad("%v", err)
	}
	if len(u.Shares) < b.Required {
		return bad("%d shares given; this security domain needs %d (its quorum)", len(u.Shares), b.Required)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	priv, _, err := s.transferKey(ctx, v, false)
	if err != nil {
		return err
	}
	shares, err := sdblob.DecryptTransferShares(u, b, priv)
	if err != nil {
		return bad("%v", err)
	}
	dk, err := shamir.Combine(shares)
	for _, sh := range shares {
		clear(sh)
	}
	defer clear(dk)
	if err != nil || len(dk) != sdblob.DomainKeyLen || !b.Verify(dk) {
		return bad("the shares do not rebuild this security domain: they are not a quorum of its shares, or the security domain was changed")
	}
	return s.restored(ctx, v, &sdblob.Domain{ID: b.DomainID, Key: dk, Required: b.Required})
}

// restored activates the inactive pool v with the domain d of an upload and drops its
// transfer key. s.mu must be held.
func (s *Service) restored(ctx context.Context, v tenancy.Vault, d *sdblob.Domain) error {
	p, st, err := s.read(ctx, v)
	if err != nil {
		return err
	}
	if st.active() {
		clear(st.DomainKey)
		return ErrActivated
	}
	st = state{DomainID: d.ID, DomainKey: d.Key, Required: d.Required, Activated: s.now().Unix(), ActivatedBy: "upload",
		Download: st.Download, Upload: &OpStatus{Status: StatusSuccess, Details: "the security domain was restored; the pool is active"}}
	if err := s.write(ctx, p, &st); err != nil {
		return err
	}
	s.active.Store(p, true)
	s.activated(ctx, v)
	return nil
}

// ActivateDev activates an inactive pool with a fresh domain key that no custodian holds
// (dev mode's default pool). Its domain can be downloaded later like any active pool's.
func (s *Service) ActivateDev(ctx context.Context, v tenancy.Vault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, st, err := s.read(ctx, v)
	if err != nil {
		return err
	}
	defer func() { clear(st.DomainKey) }() // the key made below too
	if st.active() {
		s.active.Store(p, true)
		s.activated(ctx, v)
		return nil
	}
	st.DomainKey = make([]byte, sdblob.DomainKeyLen)
	if _, err := rand.Read(st.DomainKey); err != nil {
		return err
	}
	st.DomainID, st.Activated, st.ActivatedBy, st.TransferKey, st.TransferCert = tenancy.NewUUID(), s.now().Unix(), "dev", nil, nil
	if err := s.write(ctx, p, &st); err != nil {
		return err
	}
	s.active.Store(p, true)
	s.activated(ctx, v)
	return nil
}
