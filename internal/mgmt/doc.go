// Package mgmt owns Coffer's management REST API, served under /v1/ on the bare host: tenants,
// vaults, managed HSM pools, principals and their credentials, role assignments and custom
// role definitions, and a tenant's view of the audit log. It owns the routes (declared as
// data), their pipeline, the request and response bodies (DTOs that never carry a hash, a
// salt or a stored certificate) and the rules below. docs/MANAGEMENT.md is its reference.
//
// It must not import storage, barrier, server or cli: the server wires it with a Store (the
// tenancy store), an Identity (operator-token check and access-token validation), the same
// Authorizer the data plane uses, and an AuditTrail.
//
// # Pipeline
//
// Every route runs: authenticate → resolve the tenant in the path → authorise (action, scope)
// → handler → audit → respond. The response is buffered until its audit record is written;
// if the record cannot be written a successful operation is answered 503 (its effect may
// already be stored, but the client never receives its result, for example a new secret).
//
// # Threat model
//
// Every caller is hostile until authenticated, and an authenticated tenant principal is
// hostile to every other tenant.
//
//   - Two kinds of credential: the operator token (the platform operator) and an access
//     token from Coffer's identity provider for the management audience (Identity.Audience),
//     validated exactly as the data plane validates tokens, with the issuer of the tenant
//     named in its own tid claim. Anything else is 401.
//   - The operator acts on the platform: it creates and lists tenants, reads one tenant's
//     name, and reads the audit public key. It gets 403 on everything inside a tenant
//     (vaults, principals, role assignments, role definitions, audit records), whether or
//     not the tenant exists, and it can never create role assignments.
//   - A tenant principal acts inside its own tenant only. A path naming another tenant, a
//     tenant that does not exist, or a malformed tenant id all get the same 404 with the same
//     body, so tenant ids cannot be probed. Inside its tenant it is authorised by the RBAC
//     snapshot with Coffer's management actions ("Coffer/…") at the tenant scope or the
//     narrowest scope the request names; a denial is Key Vault's 403 ForbiddenByRbac, whose
//     message names the action.
//   - Role assignments made here are confined to the caller's tenant ("/" is refused), and
//     assignment and custom role ids are kept unique across tenants, because the snapshot is
//     built over every tenant and one duplicate id would make it fail for all of them.
//   - Client secrets are returned once, in the response that creates them, and are never
//     written to the audit log or the server log. Audit records of a request are attributed
//     to the caller's tenant (the operator's to the tenant it addressed), so a tenant never
//     sees another tenant's principals probing it.
//   - Bodies are capped (MaxBody), unknown JSON fields and unknown query parameters are
//     rejected, and names are validated; all of it answers 400 (413 for size) in Key Vault's
//     error shape.
package mgmt
