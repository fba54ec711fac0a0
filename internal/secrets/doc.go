// Package secrets owns the Azure Key Vault secrets domain: secret versions with their value,
// content type, attributes and tags; soft delete, recovery and purge; backup and restore; and
// the scheduler pass that purges soft-deleted secrets at the end of their retention. Its
// types mirror the Key Vault wire format (secrets.json, api-version 2026-04-01) so the api
// layer marshals them as they are. Only vaults hold secrets; managed HSM pools do not.
//
// Every method works inside the namespace of the vault it is given, under
// tenants/<tenant>/vaults/<vault>/. Secret names are case-insensitive: records are stored
// under the lower-cased name and the casing of the first version is kept for display. The
// storage layout is described in service.go, the scheduler's index in schedule.go and the
// backup blob format in backup.go.
//
// Threat model: callers are trusted Coffer code (the api layer has authenticated and
// authorized the request and resolved the vault), but every request field is attacker
// controlled; names, versions, values, content types, tags, attributes, page tokens and
// backup blobs are validated here before they reach storage. Secret values are the data this
// package protects: they are written only through the storage it is given (the barrier in
// production, which encrypts them at rest), they are returned only by Set (to the caller
// who sent them) and Get (which the api layer authorizes with getSecret), and they never
// appear in an error, a listing, a deleted-secret answer or anything the Value type prints
// (its String, GoString and LogValue are redacted). Backup blobs leave the server, so they
// are sealed with AES-256-GCM under a server-held key and bound to the tenant; a corrupt,
// truncated or foreign blob is refused as one BadParameter. Soft delete cannot be bypassed
// through this package: deleted names stay reserved (set and restore are refused) and a
// vault with purge protection refuses a user purge until the scheduled purge date.
//
// This package must not import net/http or a concrete storage backend (bolt, mem); tests use
// the mem backend.
package secrets
