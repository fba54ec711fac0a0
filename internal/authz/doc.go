// Package authz owns Coffer's authorization decision: role-based access control
// (Azure RBAC semantics for vaults, Managed HSM local RBAC semantics for HSM pools)
// and tenant isolation, decided as a pure function over an immutable Snapshot.
//
// It owns:
//   - the action vocabulary: every data action Key Vault and Managed HSM define for the
//     operations Coffer serves, and Coffer's own management actions under "Coffer/";
//   - role definitions: the built-in Key Vault, Managed HSM and Coffer roles with their
//     real ids, custom roles, and Azure's wildcard matching of actions;
//   - scopes: the slash paths that name the platform, a tenant, a vault or HSM pool, or
//     one object in it, and containment between them;
//   - role assignments (including time-bound, just-in-time ones) and the Snapshot that
//     indexes them by principal, and Decide.
//
// It must not import net/http or any other Coffer package: it is a leaf of pure logic
// over the standard library, so that the api layer, the CLI and tests can all evaluate
// the same decision, and so that nothing in it can reach storage, keys or the network.
// internal/archtest enforces this.
//
// # Threat model
//
// The callers (the api layer) are trusted to authenticate the principal and to build the
// Request from the route, never from the request body. Everything else is treated as
// hostile or mistaken: role definitions and assignments come from tenant administrators
// and are validated by NewSnapshot; scopes and actions are parsed strictly. The rules are:
//
//   - Deny by default. Only a role assignment that is active at Request.Now, whose scope
//     contains the request scope, and whose role grants the action allows a request. An
//     unknown action, an unparsed scope, a missing principal, tenant or time all deny.
//     There are no deny assignments, so there is no precedence to get wrong.
//   - Tenant isolation is absolute. A principal of tenant B never gets anything on a scope
//     inside tenant A, whatever an assignment says: NewSnapshot rejects such assignments
//     and Decide refuses them again, independently, for a Snapshot built any other way.
//     Platform operators act on the platform scope "/" only; to touch a tenant they need
//     a principal of that tenant (for example one created by an approved access request).
//   - Management and data are separate planes, as in Azure: Actions grant only "Coffer/"
//     management actions and DataActions grant only data actions, so no Coffer management
//     role reads a key or a secret; data access is granted by assigning data roles.
//   - Actions only apply where they make sense: a vault data action is decided only on a
//     vault scope (or an object of its kind), a Managed HSM action only on an HSM scope,
//     and Coffer/sys/* only on the platform scope.
//   - Key Vault object, vault and HSM names are case-insensitive, so ParseScope lowers
//     them (Key Vault itself reports resources in lower case); tenant ids are compared
//     exactly. The storage layer must treat names case-insensitively, as Key Vault does.
//   - Decide is cheap (no allocation, well under a microsecond) so it can run on every
//     request, and a Snapshot is immutable so it can be swapped atomically on change.
package authz
