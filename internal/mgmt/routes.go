package mgmt

import (
	"net/http"

	"github.com/coffer-kms/coffer/internal/authz"
)

// Who says which credential a route accepts.
type Who uint8

// The kinds of caller a route accepts.
const (
	// Operator routes accept the operator token only: platform operations.
	Operator Who = iota + 1
	// Tenant routes accept access tokens of the tenant in the path only.
	Tenant
	// TenantOrOperator routes also accept the operator token (tenant metadata only).
	TenantOrOperator
)

// ScopeKind says at which RBAC scope a tenant caller is authorised.
type ScopeKind uint8

// The scopes a route authorises at.
const (
	// ScopeNone: no RBAC decision (Operator routes, which are for the operator token only).
	ScopeNone ScopeKind = iota
	// ScopeTenant: /tenants/{tenant}.
	ScopeTenant
	// ScopeVault: /tenants/{tenant}/vaults/{name}.
	ScopeVault
	// ScopeManagedHSM: /tenants/{tenant}/managedHsms/{name}.
	ScopeManagedHSM
	// ScopeHandler: the scope comes from the body or from the stored object, so the handler
	// authorises (Call.Authorize) before it acts or reveals anything.
	ScopeHandler
)

// Route is one management endpoint, declared as data.
type Route struct {
	Pattern string
	// Operation names the request in the audit log.
	Operation string
	Who       Who
	// Action is the management action a tenant caller needs at Scope (for Operator routes,
	// the action the operator token stands for, named in 403s).
	Action authz.Action
	Scope  ScopeKind
	Handle func(w http.ResponseWriter, r *http.Request, c *Call) error
}

// Routes lists the management endpoints. docs/MANAGEMENT.md documents each.
func (s *Service) Routes() []Route {
	return append([]Route{
		{Pattern: "POST /v1/tenants", Operation: "TenantCreate", Who: Operator, Action: authz.TenantsWrite, Handle: s.createTenant},
		{Pattern: "GET /v1/tenants", Operation: "TenantList", Who: Operator, Action: authz.TenantsRead, Handle: s.listTenants},
		{Pattern: "GET /v1/tenants/{tenant}", Operation: "TenantGet", Who: TenantOrOperator, Action: authz.TenantsRead, Scope: ScopeTenant, Handle: s.getTenant},
		{Pattern: "GET /v1/audit/public-key", Operation: "AuditPublicKeyGet", Who: Operator, Action: authz.AuditRead, Handle: s.auditPublicKey},

		{Pattern: "PUT /v1/tenants/{tenant}/vaults/{name}", Operation: "VaultCreate", Who: Tenant, Action: authz.VaultsWrite, Scope: ScopeVault, Handle: s.putStore(kindVault)},
		{Pattern: "GET /v1/tenants/{tenant}/vaults/{name}", Operation: "VaultGet", Who: Tenant, Action: authz.VaultsRead, Scope: ScopeVault, Handle: s.getStore(kindVault)},
		{Pattern: "GET /v1/tenants/{tenant}/vaults", Operation: "VaultList", Who: Tenant, Action: authz.VaultsRead, Scope: ScopeTenant, Handle: s.listStores(kindVault)},
		{Pattern: "PUT /v1/tenants/{tenant}/managedHsms/{name}", Operation: "ManagedHsmCreate", Who: Tenant, Action: authz.ManagedHSMsWrite, Scope: ScopeManagedHSM, Handle: s.putStore(kindHSM)},
		{Pattern: "GET /v1/tenants/{tenant}/managedHsms/{name}", Operation: "ManagedHsmGet", Who: Tenant, Action: authz.ManagedHSMsRead, Scope: ScopeManagedHSM, Handle: s.getStore(kindHSM)},
		{Pattern: "GET /v1/tenants/{tenant}/managedHsms", Operation: "ManagedHsmList", Who: Tenant, Action: authz.ManagedHSMsRead, Scope: ScopeTenant, Handle: s.listStores(kindHSM)},

		{Pattern: "POST /v1/tenants/{tenant}/principals", Operation: "PrincipalCreate", Who: Tenant, Action: authz.PrincipalsWrite, Scope: ScopeTenant, Handle: s.createPrincipal},
		{Pattern: "GET /v1/tenants/{tenant}/principals", Operation: "PrincipalList", Who: Tenant, Action: authz.PrincipalsRead, Scope: ScopeTenant, Handle: s.listPrincipals},
		{Pattern: "GET /v1/tenants/{tenant}/principals/{oid}", Operation: "PrincipalGet", Who: Tenant, Action: authz.PrincipalsRead, Scope: ScopeTenant, Handle: s.getPrincipal},
		{Pattern: "POST /v1/tenants/{tenant}/principals/{oid}/secrets", Operation: "PrincipalSecretAdd", Who: Tenant, Action: authz.PrincipalsWrite, Scope: ScopeTenant, Handle: s.addSecret},
		{Pattern: "POST /v1/tenants/{tenant}/principals/{oid}/certificates", Operation: "PrincipalCertificateAdd", Who: Tenant, Action: authz.PrincipalsWrite, Scope: ScopeTenant, Handle: s.addCertificate},

		{Pattern: "PUT /v1/tenants/{tenant}/roleAssignments/{id}", Operation: "RoleAssignmentCreate", Who: Tenant, Action: authz.RoleAssignmentsWrite, Scope: ScopeHandler, Handle: s.putAssignment},
		{Pattern: "GET /v1/tenants/{tenant}/roleAssignments/{id}", Operation: "RoleAssignmentGet", Who: Tenant, Action: authz.RoleAssignmentsRead, Scope: ScopeTenant, Handle: s.getAssignment},
		{Pattern: "DELETE /v1/tenants/{tenant}/roleAssignments/{id}", Operation: "RoleAssignmentDelete", Who: Tenant, Action: authz.RoleAssignmentsWrite, Scope: ScopeHandler, Handle: s.deleteAssignment},
		{Pattern: "GET /v1/tenants/{tenant}/roleAssignments", Operation: "RoleAssignmentList", Who: Tenant, Action: authz.RoleAssignmentsRead, Scope: ScopeTenant, Handle: s.listAssignments},
		{Pattern: "GET /v1/tenants/{tenant}/roleDefinitions", Operation: "RoleDefinitionList", Who: Tenant, Action: authz.RoleDefinitionsRead, Scope: ScopeTenant, Handle: s.listRoleDefinitions},
		{Pattern: "PUT /v1/tenants/{tenant}/roleDefinitions/{id}", Operation: "RoleDefinitionCreate", Who: Tenant, Action: authz.RoleDefinitionsWrite, Scope: ScopeTenant, Handle: s.putRoleDefinition},
		{Pattern: "DELETE /v1/tenants/{tenant}/roleDefinitions/{id}", Operation: "RoleDefinitionDelete", Who: Tenant, Action: authz.RoleDefinitionsWrite, Scope: ScopeTenant, Handle: s.deleteRoleDefinition},

		{Pattern: "GET /v1/tenants/{tenant}/audit", Operation: "AuditQuery", Who: Tenant, Action: authz.AuditRead, Scope: ScopeTenant, Handle: s.queryAudit},
	}, append(append(lockboxRoutes(s), issuerRoutes(s)...), append(caRoutes(s), attestRoutes(s)...)...)...)
}
