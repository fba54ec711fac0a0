package certificates

import (
	"errors"
	"fmt"
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

// kvError is a domain error whose message is exactly what the client is told.
type kvError struct {
	kind error
	msg  string
}

func (e *kvError) Error() string { return e.msg }
func (e *kvError) Unwrap() error { return e.kind }

// errorf returns a kvError of kind with a formatted message.
func errorf(kind error, format string, args ...any) error {
	return &kvError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// badParam returns an ErrBadParameter with a message.
func badParam(format string, args ...any) error { return errorf(ErrBadParameter, format, args...) }

// notFound is the ErrNotFound for a name (and version), in Key Vault's words.
func notFound(name, version string) error {
	id := name
	if version != "" {
		id += "/" + version
	}
	return errorf(ErrNotFound, "A certificate with (name/id) %s was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", id)
}

// deletedNotFound is the ErrNotFound for a name that is not soft-deleted.
func deletedNotFound(name string) error {
	return errorf(ErrNotFound, "Deleted Certificate not found: %s", name)
}

// deletedConflict is the ErrDeletedButRecoverable for a name.
func deletedConflict(name string) error {
	return errorf(ErrDeletedButRecoverable, "Certificate %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the certificate can only be recovered or purged.", name)
}

// noOperation is the ErrOperationNotFound for a name.
func noOperation(name string) error {
	return errorf(ErrOperationNotFound, "Pending certificate not found: %s", name)
}
