package keys

import (
	"errors"
	"fmt"

	"github.com/coffer-kms/coffer/internal/records"
)

// Errors. Every error a Service method returns for a client mistake or a refused operation
// wraps exactly one of these (ErrKeyDisabled, ErrKeyNotYetValid and ErrKeyExpired also wrap
// ErrForbiddenOp); anything else is an internal failure (storage, provider) that the api
// layer reports as 500 without its text. Messages never carry key material; those built
// with errorf are exactly what the client is told.
//
// The api layer maps them with one table (check the more specific errors first):
//
//	error                     HTTP  error.code     innererror.code
//	ErrBadParameter           400   BadParameter
//	ErrKeyNotFound            404   KeyNotFound
//	ErrConflict               409   Conflict
//	ErrDeletedButRecoverable  409   Conflict       ObjectIsDeletedButRecoverable
//	ErrPurgeProtected         403   Forbidden
//	ErrKeyDisabled            403   Forbidden      KeyDisabled
//	ErrKeyNotYetValid         403   Forbidden      KeyNotYetValid (Coffer's; Azure's is not documented)
//	ErrKeyExpired             403   Forbidden      KeyExpired (Coffer's; Azure's is not documented)
//	ErrGCMLimit               403   Forbidden      AESGCMLimitReached (Coffer's; gcmlimit.go)
//	ErrForbiddenOp            403   Forbidden      KeyOperationForbidden
//	ErrManaged                403   Forbidden      (none)
//	ErrKeyMaterialGone        404   KeyNotFound    KeyMaterialNotFound (Coffer's)
//
// Errors of the provider's invalid-input classes (provider.ErrUnsupported,
// ErrInvalidParameter, ErrWrongKeyType, ErrDecrypt, ErrInvalidKey) are returned wrapped in
// ErrBadParameter as well, so errors.Is matches both and the table above suffices.
var (
	// ErrKeyNotFound: no such key, version, deleted key or rotation policy in this vault.
	ErrKeyNotFound = errors.New("key not found")
	// ErrBadParameter: a malformed or out-of-range request field, or a corrupt backup blob.
	ErrBadParameter = errors.New("bad parameter")
	// ErrConflict: the name is already taken (restore onto an existing key).
	ErrConflict = errors.New("conflict")
	// ErrDeletedButRecoverable: the name belongs to a soft-deleted key; it can only be
	// recovered or purged.
	ErrDeletedButRecoverable = errors.New("key is deleted but recoverable")
	// ErrPurgeProtected: a purge was asked for while the vault has purge protection and the
	// key's scheduled purge date is still in the future.
	ErrPurgeProtected = errors.New("purge protection is enabled")
	// ErrForbiddenOp: the operation is not permitted on this key version (not in key_ops,
	// disabled, not yet valid or expired). The message names the operation as Key Vault
	// does: "Operation sign is not permitted on this key."
	ErrForbiddenOp = errors.New("operation not permitted")
	// ErrKeyDisabled: the key version is disabled. It wraps ErrForbiddenOp.
	ErrKeyDisabled = fmt.Errorf("%w: key is disabled", ErrForbiddenOp)
	// ErrKeyNotYetValid: now is before the version's nbf. It wraps ErrForbiddenOp.
	ErrKeyNotYetValid = fmt.Errorf("%w: key is not yet valid", ErrForbiddenOp)
	// ErrKeyExpired: now is at or after the version's exp. It wraps ErrForbiddenOp.
	ErrKeyExpired = fmt.Errorf("%w: key has expired", ErrForbiddenOp)
	// ErrManaged: the key belongs to a certificate, which alone changes it (new versions,
	// updates, delete, recover, purge, backup go through the certificate).
	ErrManaged = errors.New("the key is managed by a certificate")
	// ErrKeyMaterialGone: the key version's record exists but its HSM token no longer
	// holds the key (provider.ErrKeyGone: the object was destroyed outside the key's own
	// purge). Not a 5xx: the HSM answered, and retrying cannot bring the key back.
	ErrKeyMaterialGone = errors.New("the key material is no longer in its HSM token")
)

// keyGoneHint is what to do about ErrKeyMaterialGone.
const keyGoneHint = "its token object was destroyed outside this key's own purge (by the token's administrator, or by purging a key that shared the object); restore the key from a backup that carries its wrapped key material, or delete and purge it"

// errorf returns an error of kind whose message is exactly what the client is told (Key
// Vault's wording where known), as secrets' and certificates' errors are. Errors built with
// fmt.Errorf("%w: ...") instead show the sentinel's text first, which suits only Coffer's
// own messages (ErrKeyMaterialGone, a release denial, a provider's refusal).
func errorf(kind error, format string, args ...any) error {
	return records.Errorf(kind, format, args...)
}

// managedRefused is the ErrManaged for an operation on a certificate's key.
func managedRefused(op, name string) error {
	return errorf(ErrManaged, "Operation %s is not allowed on key %s because it backs certificate %s; use the certificate operations instead.", op, name, name)
}

// badParam returns an ErrBadParameter with a message.
func badParam(format string, args ...any) error {
	return errorf(ErrBadParameter, format, args...)
}

// lifecycle words keys' not-found, deleted-name and purge-protection refusals as Key Vault does.
var lifecycle = records.Lifecycle{Noun: "key", NotFound: ErrKeyNotFound, Conflict: ErrDeletedButRecoverable, Protected: ErrPurgeProtected}
