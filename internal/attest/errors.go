package attest

import (
	"errors"
	"fmt"
)

// Error codes of rejected attest requests (all answered 400 in Key Vault's error shape).
const (
	// CodeInvalidParameter: the body is not a well-formed attest request.
	CodeInvalidParameter = "InvalidParameter"
	// CodeUnknownType: the attestation type in the path is not one Coffer serves.
	CodeUnknownType = "UnknownAttestationType"
	// CodeTypeDisabled: the type exists but this server or provider does not accept it.
	CodeTypeDisabled = "AttestationTypeDisabled"
	// CodeInvalidEvidence: the report does not parse, or its signature or chain do not verify.
	CodeInvalidEvidence = "InvalidEvidence"
	// CodeRuntimeData: the runtime data is malformed or not the data the report binds.
	CodeRuntimeData = "InvalidRuntimeData"
	// CodePolicy: the verified evidence does not satisfy the provider's attestation policy.
	CodePolicy = "AttestationPolicyNotSatisfied"
	// CodeInvalidPolicy: an attestation policy (management plane) does not parse.
	CodeInvalidPolicy = "InvalidAttestationPolicy"
)

// Error is a rejection of the caller's input. Its message is safe to return: it names the
// check that failed and never contains key material or raw evidence.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func asErr[T any](err error, target *T) bool { return errors.As(err, target) }
