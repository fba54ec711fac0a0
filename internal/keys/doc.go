// Package keys owns the Azure Key Vault keys domain: key versions and their attributes,
// tags and release policies; soft delete, recovery and purge; backup and restore; manual and
// policy-driven rotation; the scheduler that performs due rotations and purges; and the
// cryptographic operations (sign, verify, encrypt, decrypt, wrapKey, unwrapKey), which it
// authorizes against the key's state (enabled, nbf, exp, key_ops) before handing them to the
// crypto provider. Its types mirror the Key Vault wire format (keys.json, api-version
// 2026-04-01) so the api layer marshals them as they are.
//
// Every method works inside the namespace of the vault it is given, under
// tenants/<tenant>/vaults/<vault>/ (tenants/<tenant>/managedhsms/<pool>/ for a managed HSM
// pool). Key names are case-insensitive: records are stored under the lower-cased name and
// the casing of the first version is kept for display. The storage layout is described in
// service.go, the scheduler's index in schedule.go and the backup blob format in backup.go.
//
// Threat model: callers are trusted Coffer code (the api layer has authenticated and
// authorized the request and resolved the vault), but every request field is attacker
// controlled; names, versions, tags, attributes, durations, page tokens and backup blobs are
// validated here before they reach storage paths or the provider. Private key material
// stays behind the provider: this package stores the provider's opaque handle only through
// the storage it is given (the barrier in production) and never puts a handle, a private JWK
// member or a provider error carrying either into a returned value or an error message.
// Backup blobs leave the server, so they are sealed with AES-256-GCM under a server-held
// key and bound to the tenant; a corrupt, truncated or foreign blob is refused as one
// BadParameter. Soft delete cannot be bypassed through this package: deleted names stay
// reserved (create, import and restore are refused) and a vault with purge protection
// refuses a user purge until the scheduled purge date.
//
// This package must not import net/http, a concrete storage backend (bolt, mem) or a
// concrete provider (soft, pkcs11); tests use the mem backend and the soft provider.
package keys
