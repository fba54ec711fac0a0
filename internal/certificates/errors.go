package certificates

import (
	"errors"

	"github.com/coffer-kms/coffer/internal/records"
)

// Errors. Every error a Service method returns for a client mistake or a refused operation
// wraps exactly one of these; anything else is an internal failure that the api layer reports
// as 500 without its text. Messages never carry key material or secret values.
//
//	error                     HTTP  error.code           innererror.code
//	ErrBadParameter           400   BadParameter
//	ErrNotFound               404   CertificateNotFound
//	ErrOperationNotFound      404   PendingCertificateNotFound
//	ErrIssuerNotFound         404   CertificateIssuerNotFound
//	ErrContactsNotFound       404   ContactsNotFound
//	ErrConflict               409   Conflict
//	ErrDeletedButRecoverable  409   Conflict             ObjectIsDeletedButRecoverable
//	ErrPurgeProtected         403   Forbidden
//	ErrDisabled               403   Forbidden            CertificateDisabled
var (
	ErrBadParameter          = errors.New("bad parameter")
	ErrNotFound              = errors.New("certificate not found")
	ErrOperationNotFound     = errors.New("pending certificate operation not found")
	ErrIssuerNotFound        = errors.New("certificate issuer not found")
	ErrContactsNotFound      = errors.New("certificate contacts not found")
	ErrConflict              = errors.New("conflict")
	ErrDeletedButRecoverable = errors.New("certificate is deleted but recoverable")
	ErrPurgeProtected        = errors.New("purge protection is enabled")
	ErrDisabled              = errors.New("certificate is disabled")
)

// errorf returns an error of kind whose message is exactly what the client is told.
func errorf(kind error, format string, args ...any) error {
	return records.Errorf(kind, format, args...)
}

// badParam returns an ErrBadParameter with a message.
func badParam(format string, args ...any) error { return errorf(ErrBadParameter, format, args...) }

// lifecycle words certificates' not-found, deleted-name and purge-protection refusals as Key Vault does.
var lifecycle = records.Lifecycle{Noun: "certificate", NotFound: ErrNotFound, Conflict: ErrDeletedButRecoverable, Protected: ErrPurgeProtected}

// noOperation is the ErrOperationNotFound for a name.
func noOperation(name string) error {
	return errorf(ErrOperationNotFound, "Pending certificate not found: %s", name)
}
