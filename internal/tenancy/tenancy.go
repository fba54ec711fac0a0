// Package tenancy owns the management-plane objects: tenants (the unit of isolation), the
// vaults and managed HSM pools they own, their principals (service principals with hashed
// client secrets or certificates) and the role assignments that grant those principals
// access. Everything is stored through a storage.Backend that is, in the server, the barrier;
// every record of a tenant lives under tenants/<id>/, so the tenant is bound into the record's
// associated data.
//
// Threat model: client secrets are stored only as argon2id hashes and returned once, at
// creation. Verification answers the same error for an unknown client and a wrong secret.
// This package must not import net/http or a concrete storage backend.
package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/names"
	"github.com/coffer-kms/coffer/internal/storage"
)

// Errors returned by the Store. Callers map them to HTTP answers.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrInvalidName   = errors.New("invalid name")
	ErrInvalidClient = errors.New("invalid client credentials")
)

// Kind tells a vault from a managed HSM pool.
type Kind string

// The kinds of key stores.
const (
	KindVault      Kind = "vault"
	KindManagedHSM Kind = "managedHsm"
)

var (
	tenantName = regexp.MustCompile(`^[0-9a-zA-Z][0-9a-zA-Z ._-]{0,63}$`)
	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// Tenant is the unit of isolation.
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Vault is a vault or a managed HSM pool, addressed by its globally unique name.
type Vault struct {
	Name                string    `json:"name"`
	Kind                Kind      `json:"kind"`
	TenantID            string    `json:"tenantId"`
	SoftDeleteRetention int       `json:"softDeleteRetentionInDays"`
	PurgeProtection     bool      `json:"enablePurgeProtection"`
	Created             time.Time `json:"created"`
}

// VaultOptions are the settings chosen at creation.
type VaultOptions struct {
	SoftDeleteRetention int // days, 7–90; 0 means 90
	PurgeProtection     bool
}

// Store reads and writes the management-plane objects.
type Store struct {
	db  storage.Backend
	now func() time.Time
	gen atomic.Uint64 // bumped on every RBAC change
	// vaults caches found vault and pool records by storage key (Vault values).
	vaults sync.Map
}

// New returns a Store over db (the barrier in the server).
func New(db storage.Backend, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// NewUUID returns a random (version 4) UUID in its canonical text form.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// IsUUID reports whether s is a canonical lower-case UUID.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

func tenantKey(id string) string { return "tenants/" + id + "/tenant" }

func vaultKey(kind Kind, name string) string {
	return "stores/" + string(kind) + "/" + normalize(name)
}

func tenantVaultKey(tenantID string, kind Kind, name string) string {
	return "tenants/" + tenantID + "/stores/" + string(kind) + "/" + normalize(name)
}

// normalize folds a vault name for uniqueness: DNS names are case-insensitive.
func normalize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func getJSON(ctx context.Context, r storage.Reader, key string, v any) error {
	b, err := r.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func putJSON(ctx context.Context, tx storage.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(ctx, key, b)
}

func exists(ctx context.Context, r storage.Reader, key string) (bool, error) {
	_, err := r.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// CreateTenant creates a tenant with a fresh id. A non-empty id is used as given (dev mode
// and tests use fixed ids); it must be a UUID.
func (s *Store) CreateTenant(ctx context.Context, id, name string) (Tenant, error) {
	if !tenantName.MatchString(name) {
		return Tenant{}, fmt.Errorf("%w: tenant name %q must be 1-64 letters, digits, spaces, '.', '_' or '-'", ErrInvalidName, name)
	}
	if id == "" {
		id = NewUUID()
	} else if !IsUUID(id) {
		return Tenant{}, fmt.Errorf("%w: tenant id %q is not a lower-case UUID", ErrInvalidName, id)
	}
	t := Tenant{ID: id, Name: name, Created: s.now().UTC()}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(id)); err != nil || ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", id, ErrExists))
		}
		return putJSON(ctx, tx, tenantKey(id), t)
	})
	return t, err
}

// Tenant returns the tenant with id.
func (s *Store) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	if !IsUUID(id) {
		return t, ErrNotFound
	}
	err := getJSON(ctx, s.db, tenantKey(id), &t)
	return t, err
}

// Tenants lists every tenant (platform operators only).
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	var out []Tenant
	err := eachKey(ctx, s.db, "tenants/", func(key string) error {
		if len(key) != len("tenants/")+36+len("/tenant") || key[len(key)-len("/tenant"):] != "/tenant" {
			return nil
		}
		var t Tenant
		if err := getJSON(ctx, s.db, key, &t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// eachKey calls fn for every key under prefix, page by page.
func eachKey(ctx context.Context, r storage.Reader, prefix string, fn func(key string) error) error {
	opts := storage.ListOptions{}
	for {
		p, err := r.List(ctx, prefix, opts)
		if err != nil {
			return err
		}
		for _, k := range p.Keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		opts.After = p.Next
	}
}

// CreateVault creates a vault or managed HSM pool owned by tenantID. Names are global (they
// are host names), 1–24 characters, start with a letter, and are case-insensitive.
func (s *Store) CreateVault(ctx context.Context, tenantID string, kind Kind, name string, opts VaultOptions) (Vault, error) {
	if kind != KindVault && kind != KindManagedHSM {
		return Vault{}, fmt.Errorf("%w: kind %q is not vault or managedHsm", ErrInvalidName, kind)
	}
	if !names.Store(name) || normalize(name) == "managedhsm" {
		return Vault{}, fmt.Errorf("%w: %s name %q must be 1-24 letters, digits and '-', start with a letter, not end with '-', and not be \"managedhsm\"", ErrInvalidName, kind, name)
	}
	if opts.SoftDeleteRetention == 0 {
		opts.SoftDeleteRetention = 90
	}
	if opts.SoftDeleteRetention < 7 || opts.SoftDeleteRetention > 90 {
		return Vault{}, fmt.Errorf("%w: softDeleteRetentionInDays %d is outside 7-90", ErrInvalidName, opts.SoftDeleteRetention)
	}
	v := Vault{Name: normalize(name), Kind: kind, TenantID: tenantID, SoftDeleteRetention: opts.SoftDeleteRetention, PurgeProtection: opts.PurgeProtection, Created: s.now().UTC()}
	err := s.db.Txn(ctx, func(tx storage.Tx) error {
		if ok, err := exists(ctx, tx, tenantKey(tenantID)); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound))
		}
		if ok, err := exists(ctx, tx, vaultKey(kind, name)); err != nil || ok {
			return errors.Join(err, fmt.Errorf("%s %s: %w", kind, name, ErrExists))
		}
		if kind == KindManagedHSM {
			if err := checkPoolRoles(ctx, tx, tenantID, v.Name); err != nil {
				return err
			}
		}
		if err := putJSON(ctx, tx, vaultKey(kind, name), v); err != nil {
			return err
		}
		return tx.Put(ctx, tenantVaultKey(tenantID, kind, name), nil)
	})
	return v, err
}

// checkPoolRoles refuses a new pool that would start over Managed HSM's custom role limit
// (authz.CheckHSMPoolRoles), reading the tenant's roles in the creating transaction.
func checkPoolRoles(ctx context.Context, tx storage.Tx, tenantID, pool string) error {
	roles, err := roleDefs(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	sc, err := authz.ParseScope("/tenants/" + tenantID + "/managedHsms/" + pool)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	return authz.CheckHSMPoolRoles(roles, sc)
}

// Vault returns the vault (or pool) called name.
//
// Found vaults are cached: every data-plane request resolves its vault, and a vault record
// never changes after creation (there is no update or delete yet — whoever adds one must
// drop the entry from s.vaults).
func (s *Store) Vault(ctx context.Context, kind Kind, name string) (Vault, error) {
	var v Vault
	if !names.Store(name) {
		return v, ErrNotFound
	}
	key := vaultKey(kind, name)
	if c, ok := s.vaults.Load(key); ok {
		return c.(Vault), nil
	}
	if err := getJSON(ctx, s.db, key, &v); err != nil {
		return v, err
	}
	s.vaults.Store(key, v)
	return v, nil
}

// Vaults lists the vaults (or pools) of a tenant.
func (s *Store) Vaults(ctx context.Context, tenantID string, kind Kind) ([]Vault, error) {
	prefix := "tenants/" + tenantID + "/stores/" + string(kind) + "/"
	var out []Vault
	err := eachKey(ctx, s.db, prefix, func(key string) error {
		v, err := s.Vault(ctx, kind, key[len(prefix):])
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}
