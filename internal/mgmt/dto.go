package mgmt

import (
	"time"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// The wire shapes of the management API. Domain structs are never encoded directly: these
// carry only what a caller may see (no secret hashes or salts, no stored certificates).

// TenantDTO is a tenant.
type TenantDTO struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// TenantCreated answers POST /v1/tenants: the tenant and its first administrator, whose
// client secret is shown this once.
type TenantCreated struct {
	Tenant        TenantDTO     `json:"tenant"`
	Administrator Administrator `json:"administrator"`
}

// Administrator is the service principal created with a tenant.
type Administrator struct {
	ObjectID            string    `json:"objectId"`
	ClientID            string    `json:"clientId"`
	ClientSecret        string    `json:"clientSecret"`
	ClientSecretExpires time.Time `json:"clientSecretExpires"`
	RoleAssignmentID    string    `json:"roleAssignmentId"`
	RoleDefinitionID    string    `json:"roleDefinitionId"`
}

// StoreDTO is a vault or a managed HSM pool.
type StoreDTO struct {
	Name                      string    `json:"name"`
	Kind                      string    `json:"kind"`
	TenantID                  string    `json:"tenantId"`
	URL                       string    `json:"url,omitempty"`
	SoftDeleteRetentionInDays int       `json:"softDeleteRetentionInDays"`
	EnablePurgeProtection     bool      `json:"enablePurgeProtection"`
	Created                   time.Time `json:"created"`
}

// SecretDTO describes a client secret without its value.
type SecretDTO struct {
	ID      string    `json:"id"`
	Hint    string    `json:"hint"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// SecretCreated is a new client secret, whose value is shown this once.
type SecretCreated struct {
	SecretDTO
	ClientSecret string `json:"clientSecret"`
}

// CertificateDTO describes a registered client certificate by its thumbprints.
type CertificateDTO struct {
	Thumbprint string `json:"thumbprint"`
	SHA256     string `json:"sha256"`
}

// PrincipalDTO is a principal with the public facts of its credentials.
type PrincipalDTO struct {
	ObjectID     string           `json:"objectId"`
	ClientID     string           `json:"clientId,omitempty"`
	TenantID     string           `json:"tenantId"`
	Type         string           `json:"type"`
	DisplayName  string           `json:"displayName"`
	Secrets      []SecretDTO      `json:"secrets"`
	Certificates []CertificateDTO `json:"certificates"`
	Created      time.Time        `json:"created"`
}

// PrincipalCreated answers POST .../principals: the principal and its first client secret,
// shown this once.
type PrincipalCreated struct {
	PrincipalDTO
	ClientSecret string `json:"clientSecret"`
}

// AssignmentDTO is a role assignment.
type AssignmentDTO struct {
	ID               string     `json:"id"`
	TenantID         string     `json:"tenantId"`
	PrincipalID      string     `json:"principalId"`
	RoleDefinitionID string     `json:"roleDefinitionId"`
	RoleName         string     `json:"roleName,omitempty"`
	Scope            string     `json:"scope"`
	NotBefore        *time.Time `json:"notBefore,omitempty"`
	ExpiresAt        *time.Time `json:"expiresAt,omitempty"`
}

// PermissionDTO is one permission block of a role definition.
type PermissionDTO struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinitionDTO is a built-in or custom role definition.
type RoleDefinitionDTO struct {
	ID               string          `json:"id"`
	RoleName         string          `json:"roleName"`
	Description      string          `json:"description"`
	Type             string          `json:"type"`
	Permissions      []PermissionDTO `json:"permissions"`
	AssignableScopes []string        `json:"assignableScopes"`
}

// List is the envelope of every list response, as Azure's.
type List[T any] struct {
	Value []T `json:"value"`
}

func tenantDTO(t tenancy.Tenant) TenantDTO {
	return TenantDTO{ID: t.ID, Name: t.Name, Created: t.Created}
}

func (s *Service) storeDTO(v tenancy.Vault) StoreDTO {
	return StoreDTO{Name: v.Name, Kind: string(v.Kind), TenantID: v.TenantID, URL: s.cfg.StoreURL(v.Kind, v.Name),
		SoftDeleteRetentionInDays: v.SoftDeleteRetention, EnablePurgeProtection: v.PurgeProtection, Created: v.Created}
}

func secretDTO(c tenancy.SecretCred) SecretDTO {
	return SecretDTO{ID: c.ID, Hint: c.Hint, Created: c.Created, Expires: c.Expires}
}

func principalDTO(p tenancy.Principal) PrincipalDTO {
	d := PrincipalDTO{ObjectID: p.ObjectID, ClientID: p.AppID, TenantID: p.TenantID, Type: string(p.Type),
		DisplayName: p.DisplayName, Created: p.Created, Secrets: []SecretDTO{}, Certificates: []CertificateDTO{}}
	for _, c := range p.Secrets {
		d.Secrets = append(d.Secrets, secretDTO(c))
	}
	for _, c := range p.Certificates {
		d.Certificates = append(d.Certificates, CertificateDTO{Thumbprint: c.Thumbprint, SHA256: c.SHA256})
	}
	return d
}

func assignmentDTO(a authz.Assignment, roleName string) AssignmentDTO {
	d := AssignmentDTO{ID: a.ID, TenantID: a.TenantID, PrincipalID: a.PrincipalID, RoleDefinitionID: a.RoleDefinitionID, RoleName: roleName, Scope: a.Scope}
	if !a.NotBefore.IsZero() {
		t := a.NotBefore
		d.NotBefore = &t
	}
	if !a.ExpiresAt.IsZero() {
		t := a.ExpiresAt
		d.ExpiresAt = &t
	}
	return d
}

func roleDefinitionDTO(r authz.RoleDefinition) RoleDefinitionDTO {
	d := RoleDefinitionDTO{ID: r.ID, RoleName: r.Name, Description: r.Description, Type: r.Type,
		Permissions: []PermissionDTO{}, AssignableScopes: nonNil(r.AssignableScopes)}
	for _, p := range r.Permissions {
		d.Permissions = append(d.Permissions, PermissionDTO{Actions: nonNil(p.Actions), NotActions: nonNil(p.NotActions),
			DataActions: nonNil(p.DataActions), NotDataActions: nonNil(p.NotDataActions)})
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// list wraps items (never null on the wire).
func list[T any](items []T) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Value: items}
}
