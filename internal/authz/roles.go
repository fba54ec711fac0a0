package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role definition types, as Azure names them.
const (
	RoleTypeBuiltIn = "BuiltInRole"
	RoleTypeCustom  = "CustomRole"
)

// ErrInvalidRole is returned (wrapped) for a role definition NewSnapshot cannot accept.
var ErrInvalidRole = errors.New("invalid role definition")

// Permission is one permission block of a role, with Azure's semantics: an action is
// granted by the block if it matches one of Actions (for Coffer management actions) or
// DataActions (for data actions) and none of NotActions or NotDataActions respectively.
// NotActions and NotDataActions only subtract from their own block; they are not denies.
// Patterns compare case-insensitively and "*" matches any run of characters, so
// "Microsoft.KeyVault/vaults/*" matches every vault data action and
// "Microsoft.KeyVault/vaults/*/read" matches "Microsoft.KeyVault/vaults/keys/read".
type Permission struct {
	Actions        []string
	NotActions     []string
	DataActions    []string
	NotDataActions []string
}

// RoleDefinition is a named set of permissions, in the shape of Azure's and Managed
// HSM's role definitions. AssignableScopes lists the scopes (ParseScope form) at or below
// which the role may be assigned; the built-in roles use "/" (anywhere).
type RoleDefinition struct {
	ID               string
	Name             string
	Description      string
	Type             string // RoleTypeBuiltIn or RoleTypeCustom
	Permissions      []Permission
	AssignableScopes []string
}

// Ids of Coffer's own built-in roles (fixed UUIDs, generated once for Coffer).
const (
	CofferTenantAdministratorRoleID = "e7439ec5-761a-4f03-a203-5d8bca82dbcb"
	CofferPlatformOperatorRoleID    = "32d3cb4e-eea6-4387-a344-00e07bdbdc3f"
)

// armActions is the control-plane Actions list Azure gives most Key Vault data roles.
// None of it matches a Coffer action (those live under "Coffer/"); it is kept so the
// definitions read as Azure publishes them.
var armActions = []string{
	"Microsoft.Authorization/*/read",
	"Microsoft.Insights/alertRules/*",
	"Microsoft.Resources/deployments/*",
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.Support/*",
	"Microsoft.KeyVault/checkNameAvailability/read",
	"Microsoft.KeyVault/deletedVaults/read",
	"Microsoft.KeyVault/locations/*/read",
	"Microsoft.KeyVault/vaults/*/read",
	"Microsoft.KeyVault/operations/read",
}

const rbacOnly = " Only works for key vaults that use the 'Azure role-based access control' permission model."

func builtIn(id, name, desc string, actions, dataActions []string) RoleDefinition {
	return RoleDefinition{
		ID: id, Name: name, Description: desc, Type: RoleTypeBuiltIn,
		Permissions:      []Permission{{Actions: actions, DataActions: dataActions}},
		AssignableScopes: []string{"/"},
	}
}

// builtInRoles are the built-in roles, in a fixed order.
//
// Vault roles: ids, descriptions, Actions and DataActions from MicrosoftDocs/azure-docs
// articles/role-based-access-control/built-in-roles/security.md (ms.date 02/23/2026),
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security,
// and KEYVAULT-NOTES §1.12 (rbac-guide.md).
//
// Managed HSM roles: ids and descriptions from MicrosoftDocs
// articles/key-vault/managed-hsm/built-in-roles.md (02d00dc8),
// https://learn.microsoft.com/azure/key-vault/managed-hsm/built-in-roles. DataActions as the
// service returns them from GET /providers/Microsoft.Authorization/roleDefinitions, recorded
// in Azure/azure-sdk-for-js sdk/keyvault/keyvault-admin recordings (build
// 1.0.20220314). The doc's "Permitted operations" table agrees except where it is
// incomplete or wrong: it omits securitydomain/download/read (Administrator),
// keys/export/action (Crypto Officer, though its description says "export keys") and
// rng/action (Crypto User), and marks Crypto Auditor for keys/deletedKeys/delete, which
// contradicts its description ("read (but not use) key attributes") and the service's
// definition (deletedKeys/read/action). The Restore role is newer than the recording and
// is taken from the doc table.
var builtInRoles = []RoleDefinition{
	builtIn("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator",
		"Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments."+rbacOnly,
		armActions, []string{"Microsoft.KeyVault/vaults/*"}),
	builtIn("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader",
		"Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material."+rbacOnly,
		armActions, []string{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}),
	builtIn("a4417e6f-fecd-4de8-b567-7b0420556985", "Key Vault Certificates Officer",
		"Perform any action on the certificates of a key vault, except manage permissions."+rbacOnly,
		armActions, []string{
			"Microsoft.KeyVault/vaults/certificatecas/*",
			"Microsoft.KeyVault/vaults/certificates/*",
			"Microsoft.KeyVault/vaults/certificatecontacts/write",
		}),
	builtIn("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User",
		"Read certificate contents."+rbacOnly,
		nil, []string{
			"Microsoft.KeyVault/vaults/certificates/read",
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
			"Microsoft.KeyVault/vaults/keys/read",
		}),
	builtIn("14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer",
		"Perform any action on the keys of a key vault, except manage permissions."+rbacOnly,
		armActions, []string{"Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"}),
	builtIn("e147488a-f6f5-4113-8e2d-b22465e65bf6", "Key Vault Crypto Service Encryption User",
		"Read metadata of keys and perform wrap/unwrap operations."+rbacOnly,
		[]string{
			"Microsoft.EventGrid/eventSubscriptions/write",
			"Microsoft.EventGrid/eventSubscriptions/read",
			"Microsoft.EventGrid/eventSubscriptions/delete",
		}, []string{
			"Microsoft.KeyVault/vaults/keys/read",
			"Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action",
		}),
	builtIn("12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User",
		"Perform cryptographic operations using keys."+rbacOnly,
		nil, []string{
			"Microsoft.KeyVault/vaults/keys/read",
			"Microsoft.KeyVault/vaults/keys/update/action",
			"Microsoft.KeyVault/vaults/keys/backup/action",
			"Microsoft.KeyVault/vaults/keys/encrypt/action",
			"Microsoft.KeyVault/vaults/keys/decrypt/action",
			"Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action",
			"Microsoft.KeyVault/vaults/keys/sign/action",
			"Microsoft.KeyVault/vaults/keys/verify/action",
		}),
	builtIn("08bbd89e-9f13-488c-ac41-acfcb10c90ab", "Key Vault Crypto Service Release User",
		"Release keys."+rbacOnly,
		nil, []string{"Microsoft.KeyVault/vaults/keys/release/action"}),
	builtIn("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer",
		"Perform any action on the secrets of a key vault, except manage permissions."+rbacOnly,
		armActions, []string{"Microsoft.KeyVault/vaults/secrets/*"}),
	builtIn("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User",
		"Read secret contents."+rbacOnly,
		nil, []string{
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}),
	// Azure grants this role Microsoft.Authorization/roleAssignments/write|delete under an
	// ABAC condition limiting it to the Key Vault data roles. Coffer models no conditions,
	// and an unconditioned roleAssignments/write would let it assign Coffer Tenant
	// Administrator, so in Coffer it grants nothing: assign Coffer Tenant Administrator.
	builtIn("8b54135c-b56d-4d72-a534-26097cfdc8d8", "Key Vault Data Access Administrator",
		"Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles. Includes an ABAC condition to constrain role assignments.",
		[]string{
			"Microsoft.Authorization/roleAssignments/write",
			"Microsoft.Authorization/roleAssignments/delete",
			"Microsoft.Authorization/*/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Resources/subscriptions/read",
			"Microsoft.Management/managementGroups/read",
			"Microsoft.Support/*",
			"Microsoft.KeyVault/vaults/*/read",
		}, nil),

	builtIn("a290e904-7015-4bba-90c8-60543313cdb4", "Managed HSM Administrator",
		"Grants permissions to perform all operations related to the security domain, full backup and restore, and role management. Not permitted to perform any key management operations.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/roleAssignments/delete/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/write/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/write/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action",
			"Microsoft.KeyVault/managedHsm/securitydomain/download/action",
			"Microsoft.KeyVault/managedHsm/securitydomain/download/read",
			"Microsoft.KeyVault/managedHsm/securitydomain/upload/action",
			"Microsoft.KeyVault/managedHsm/securitydomain/upload/read",
			"Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read",
			"Microsoft.KeyVault/managedHsm/backup/start/action",
			"Microsoft.KeyVault/managedHsm/restore/start/action",
			"Microsoft.KeyVault/managedHsm/backup/status/action",
			"Microsoft.KeyVault/managedHsm/restore/status/action",
		}),
	builtIn("515eb02d-2335-4d2d-92f2-b1cbdf9c3778", "Managed HSM Crypto Officer",
		"Grants permissions to perform all role management, purge or recover deleted keys, and export keys. Not permitted to perform any other key management operations.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/roleAssignments/delete/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/write/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/write/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action",
			"Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
			"Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete",
			"Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action",
			"Microsoft.KeyVault/managedHsm/keys/export/action",
		}),
	builtIn("21dbd100-6940-42c2-9190-5d6cb909625b", "Managed HSM Crypto User",
		"Grants permissions to perform all key management operations except purge or recover deleted keys and export keys.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
			"Microsoft.KeyVault/managedHsm/keys/read/action",
			"Microsoft.KeyVault/managedHsm/keys/write/action",
			"Microsoft.KeyVault/managedHsm/keys/delete",
			"Microsoft.KeyVault/managedHsm/keys/create",
			"Microsoft.KeyVault/managedHsm/keys/rotate/action",
			"Microsoft.KeyVault/managedHsm/keys/import/action",
			"Microsoft.KeyVault/managedHsm/keys/release/action",
			"Microsoft.KeyVault/managedHsm/keys/backup/action",
			"Microsoft.KeyVault/managedHsm/keys/restore/action",
			"Microsoft.KeyVault/managedHsm/keys/encrypt/action",
			"Microsoft.KeyVault/managedHsm/keys/decrypt/action",
			"Microsoft.KeyVault/managedHsm/keys/wrap/action",
			"Microsoft.KeyVault/managedHsm/keys/unwrap/action",
			"Microsoft.KeyVault/managedHsm/keys/sign/action",
			"Microsoft.KeyVault/managedHsm/keys/verify/action",
			"Microsoft.KeyVault/managedHsm/keys/derive/action", // no Coffer operation uses it yet
			"Microsoft.KeyVault/managedHsm/rng/action",
		}),
	builtIn("4bd23610-cdcf-4971-bdee-bdc562cc28e4", "Managed HSM Policy Administrator",
		"Grants permissions to create and delete role assignments.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/write/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/write/action",
			"Microsoft.KeyVault/managedHsm/roleAssignments/delete/action",
		}),
	builtIn("2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "Managed HSM Crypto Auditor",
		"Grants read permissions to read (but not use) key attributes.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/roleAssignments/read/action",
			"Microsoft.KeyVault/managedHsm/roleDefinitions/read/action",
			"Microsoft.KeyVault/managedHsm/keys/read/action",
			"Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
		}),
	builtIn("33413926-3206-4cdd-b39a-83574fe37a17", "Managed HSM Crypto Service Encryption User",
		"Grants permissions to use a key for service encryption.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/keys/read/action",
			"Microsoft.KeyVault/managedHsm/keys/wrap/action",
			"Microsoft.KeyVault/managedHsm/keys/unwrap/action",
		}),
	builtIn("21dbd100-6940-42c2-9190-5d6cb909625c", "Managed HSM Crypto Service Release User",
		"Grants permissions to release a key to a trusted execution environment.",
		nil, []string{"Microsoft.KeyVault/managedHsm/keys/release/action"}),
	builtIn("7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8", "Managed HSM Backup",
		"Grants permissions to perform single-key or whole-HSM backup.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/backup/start/action",
			"Microsoft.KeyVault/managedHsm/backup/status/action",
			"Microsoft.KeyVault/managedHsm/keys/backup/action",
		}),
	builtIn("6efe6056-5259-49d2-8b3d-d3d73544b20b", "Managed HSM Restore",
		"Grants permissions to perform single-key or whole-HSM restore.",
		nil, []string{
			"Microsoft.KeyVault/managedHsm/keys/restore/action",
			"Microsoft.KeyVault/managedHsm/restore/start/action",
			"Microsoft.KeyVault/managedHsm/restore/status/action",
		}),

	// Coffer's roles: management only. Data access is granted by assigning data roles.
	// Tenant Administrator may not write the tenant record itself (quotas and isolation
	// settings belong to the platform) nor touch Coffer/sys.
	builtIn(CofferTenantAdministratorRoleID, "Coffer Tenant Administrator",
		"Manage a Coffer tenant: its vaults, managed HSMs, attestation providers, principals, issuers, role definitions and role assignments, access requests and audit log. Grants no data actions: assign a data role to read keys, secrets or certificates.",
		[]string{
			"Coffer/tenants/read",
			"Coffer/vaults/*",
			"Coffer/managedHsms/*",
			"Coffer/principals/*",
			"Coffer/roleAssignments/*",
			"Coffer/roleDefinitions/*",
			"Coffer/issuers/*",
			"Coffer/certificateAuthorities/*",
			"Coffer/attestationProviders/*",
			"Coffer/accessRequests/*",
			"Coffer/audit/read",
		}, nil),
	builtIn(CofferPlatformOperatorRoleID, "Coffer Platform Operator",
		"Operate the Coffer platform: create and manage tenants, seal, rotate and read metrics, and request just-in-time access. Grants no data actions and cannot assign roles.",
		[]string{
			"Coffer/tenants/*",
			"Coffer/sys/*",
			"Coffer/accessRequests/create",
		}, nil),
}

// BuiltInRoles returns a copy of every built-in role: the Key Vault roles, the Managed HSM
// local roles and Coffer's roles.
func BuiltInRoles() []RoleDefinition {
	out := make([]RoleDefinition, len(builtInRoles))
	for i, r := range builtInRoles {
		out[i] = r.clone()
	}
	return out
}

// RoleByID returns a copy of the built-in role with the given id (compared
// case-insensitively), and whether there is one.
func RoleByID(id string) (RoleDefinition, bool) {
	for _, r := range builtInRoles {
		if strings.EqualFold(r.ID, id) {
			return r.clone(), true
		}
	}
	return RoleDefinition{}, false
}

// RoleByName returns a copy of the built-in role with the given name (compared
// case-insensitively, as Azure CLI's --role does), and whether there is one.
func RoleByName(name string) (RoleDefinition, bool) {
	for _, r := range builtInRoles {
		if strings.EqualFold(r.Name, name) {
			return r.clone(), true
		}
	}
	return RoleDefinition{}, false
}

func (r RoleDefinition) clone() RoleDefinition {
	c := r
	c.Permissions = make([]Permission, len(r.Permissions))
	for i, p := range r.Permissions {
		c.Permissions[i] = Permission{
			Actions:        slices.Clone(p.Actions),
			NotActions:     slices.Clone(p.NotActions),
			DataActions:    slices.Clone(p.DataActions),
			NotDataActions: slices.Clone(p.NotDataActions),
		}
	}
	c.AssignableScopes = slices.Clone(r.AssignableScopes)
	return c
}

// equal reports whether r and o define the same role.
func (r RoleDefinition) equal(o RoleDefinition) bool {
	if r.ID != o.ID || r.Name != o.Name || r.Description != o.Description || r.Type != o.Type ||
		!slices.Equal(r.AssignableScopes, o.AssignableScopes) || len(r.Permissions) != len(o.Permissions) {
		return false
	}
	for i, p := range r.Permissions {
		q := o.Permissions[i]
		if !slices.Equal(p.Actions, q.Actions) || !slices.Equal(p.NotActions, q.NotActions) ||
			!slices.Equal(p.DataActions, q.DataActions) || !slices.Equal(p.NotDataActions, q.NotDataActions) {
			return false
		}
	}
	return true
}

// grants computes the set of vocabulary actions r grants.
func (r RoleDefinition) grants() actionSet {
	var set actionSet
	for i, v := range vocabulary {
		for _, p := range r.Permissions {
			allow, deny := p.Actions, p.NotActions
			if v.isData() {
				allow, deny = p.DataActions, p.NotDataActions
			}
			if matchAny(allow, string(v.action)) && !matchAny(deny, string(v.action)) {
				set.add(i)
				break
			}
		}
	}
	return set
}

func matchAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if matchAction(p, action) {
			return true
		}
	}
	return false
}

// matchAction reports whether action matches pattern as Azure matches them:
// case-insensitively (ASCII), with "*" matching any run of characters, "/" included.
func matchAction(pattern, action string) bool {
	p, a := 0, 0
	starP, starA := -1, 0
	for a < len(action) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starA = p, a
			p++
		case p < len(pattern) && lower(pattern[p]) == lower(action[a]):
			p++
			a++
		case starP >= 0:
			starA++
			p, a = starP+1, starA
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// checkPattern reports whether p is a well-formed action pattern: 1–512 characters of
// [0-9A-Za-z./*_-].
func checkPattern(p string) error {
	if p == "" || len(p) > 512 {
		return fmt.Errorf("action pattern %q: must be 1 to 512 characters", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			c == '.' || c == '/' || c == '*' || c == '_' || c == '-') {
			return fmt.Errorf("action pattern %q: character %q not allowed", p, c)
		}
	}
	return nil
}

// validate checks a role definition and returns every problem found.
func (r RoleDefinition) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %q: %s", ErrInvalidRole, r.ID, fmt.Sprintf(format, args...)))
	}
	if !isUUID(r.ID) {
		bad("id must be a UUID")
	}
	if strings.TrimSpace(r.Name) == "" {
		bad("name is empty")
	}
	if r.Type != RoleTypeCustom && r.Type != RoleTypeBuiltIn {
		bad("type %q: want %s or %s", r.Type, RoleTypeBuiltIn, RoleTypeCustom)
	}
	if len(r.Permissions) == 0 {
		bad("no permissions")
	}
	for _, p := range r.Permissions {
		for _, list := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			for _, pat := range list {
				if err := checkPattern(pat); err != nil {
					bad("%v", err)
				}
			}
		}
	}
	if len(r.AssignableScopes) == 0 {
		bad("no assignable scopes")
	}
	for _, s := range r.AssignableScopes {
		if _, err := ParseScope(s); err != nil {
			bad("assignable scope: %v", err)
		}
	}
	return errs
}

// isUUID reports whether s has the 8-4-4-4-12 hexadecimal form of a UUID.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Name prefixes of the two families of Azure's built-in data roles.
const (
	vaultRolePrefix = "Key Vault "
	hsmRolePrefix   = "Managed HSM "
)

// CheckBuiltInScope returns an error saying where r may be assigned instead if r is a
// built-in role of the other kind of container than s: a Managed HSM local role exists only
// in a pool's local RBAC, so it is assignable at a managed HSM pool or one of its keys, never
// at a tenant or a vault; a Key Vault role lives in Azure RBAC, so it is assignable at a
// tenant (as at a subscription in Azure) or in a vault, never in a pool. Coffer's roles and
// custom roles are left to their assignable scopes (NewSnapshot checks those); nil for them.
func CheckBuiltInScope(r RoleDefinition, s Scope) error {
	if r.Type != RoleTypeBuiltIn {
		return nil
	}
	inPool := s.kind == kindHSM || s.kind == kindHSMKey
	switch {
	case strings.HasPrefix(r.Name, hsmRolePrefix) && !inPool:
		return fmt.Errorf("%w: %s is a Managed HSM local role: assign it at a managed HSM pool (/tenants/{tenant}/managedHsms/{pool}) or one of its keys, not at %s", ErrScopeNotAllowed, r.Name, s)
	case strings.HasPrefix(r.Name, vaultRolePrefix) && inPool:
		return fmt.Errorf("%w: %s is a Key Vault role, which a managed HSM pool does not know: assign it at the tenant or a vault, or use a Managed HSM role in the pool", ErrScopeNotAllowed, r.Name)
	}
	return nil
}
