package secrets

import (
	"errors"

	"github.com/coffer-kms/coffer/internal/records"
)

// Errors. Every error a Service method returns for a client mistake or a refused operation
// wraps exactly one of these; anything else is an internal failure (storage) that the api
// layer reports as 500 without its text. Messages never carry a secret value.
//
// The api layer maps them with one table:
//
//	error                     HTTP  error.code      innererror.code
//	ErrBadParameter           400   BadParameter
//	ErrSecretNotFound         404   SecretNotFound
//	ErrConflict               409   Conflict
//	ErrDeletedButRecoverable  409   Conflict        ObjectIsDeletedButRecoverable
//	ErrPurgeProtected         403   Forbidden
//	ErrSecretDisabled         403   Forbidden       SecretDisabled
//	ErrManaged                403   Forbidden
var (
	// ErrSecretNotFound: no such secret, version or deleted secret in this vault.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrBadParameter: a malformed or out-of-range request field, or a corrupt backup blob.
	ErrBadParameter = errors.New("bad parameter")
	// ErrConflict: the name is already taken (restore onto an existing secret).
	ErrConflict = errors.New("conflict")
	// ErrDeletedButRecoverable: the name belongs to a soft-deleted secret; it can only be
	// recovered or purged.
	ErrDeletedButRecoverable = errors.New("secret is deleted but recoverable")
	// ErrPurgeProtected: a purge was asked for while the vault has purge protection and the
	// secret's scheduled purge date is still in the future.
	ErrPurgeProtected = errors.New("purge protection is enabled")
	// ErrSecretDisabled: the value of a disabled version was asked for. The message is Key
	// Vault's: "Operation get is not allowed on a disabled secret."
	ErrSecretDisabled = errors.New("secret is disabled")
	// ErrManaged: the secret belongs to a certificate, which alone changes it (new
	// versions, updates, delete, recover, purge, backup go through the certificate).
	ErrManaged = errors.New("the secret is managed by a certificate")
)

// managedRefused is the ErrManaged for an operation on a certificate's secret.
func managedRefused(op, name string) error {
	return errorf(ErrManaged, "Operation %s is not allowed on secret %s because it backs certificate %s; use the certificate operations instead.", op, name, name)
}

// errorf returns an error of kind whose message is exactly what the client is told (Key
// Vault's wording where known). Callers never pass a secret value among args.
func errorf(kind error, format string, args ...any) error {
	return records.Errorf(kind, format, args...)
}

// badParam returns an ErrBadParameter with a message.
func badParam(format string, args ...any) error {
	return errorf(ErrBadParameter, format, args...)
}

// lifecycle words secrets' not-found, deleted-name and purge-protection refusals as Key Vault does.
var lifecycle = records.Lifecycle{Noun: "secret", NotFound: ErrSecretNotFound, Conflict: ErrDeletedButRecoverable, Protected: ErrPurgeProtected}

// disabled is the ErrSecretDisabled for an operation, in Key Vault's words.
func disabled(op string) error {
	return errorf(ErrSecretDisabled, "Operation %s is not allowed on a disabled secret.", op)
}
