// Package api owns Coffer's HTTP wire format: Key Vault's error body, JSON responses and the
// mapping from domain errors to status codes and error codes. Handlers return errors; one
// function renders them, so every failure has the same shape:
//
//	{"error":{"code":"BadParameter","message":"..."}}
//
// This package must not import a concrete storage backend or crypto provider.
package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/coffer-kms/coffer/internal/authz"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Error is a client-visible failure: an HTTP status, a Key Vault error code and a message
// that says what went wrong and what to do. Its message must never carry key material.
type Error struct {
	Status  int
	Code    string
	Message string
	// Inner is the innererror code Key Vault adds to some errors (e.g. ForbiddenByRbac).
	Inner string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error.
func Errorf(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Common errors.
var (
	ErrNotFound           = Errorf(http.StatusNotFound, "NotFound", "no such resource: check the path")
	ErrMethodNotAllowed   = Errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "this method is not allowed on this resource")
	ErrRequestTooLarge    = Errorf(http.StatusRequestEntityTooLarge, "RequestTooLarge", "the request body is larger than the server accepts")
	ErrInternal           = Errorf(http.StatusInternalServerError, "InternalError", "the server failed to process the request; the failure is logged with this request's id")
	ErrServiceUnavailable = Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the service is temporarily unavailable; retry later")
	// ErrClientClosed is what a request whose client went away before it completed is
	// recorded as (nginx's 499; nobody reads the answer): not a server failure.
	ErrClientClosed = Errorf(499, "ClientClosedRequest", "the client closed the connection before the request completed")
	// ErrStorageFull answers a write that failed because the server's disk is full: a
	// condition of the server, not of the request, which a retry can outlive.
	ErrStorageFull = Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the server's storage is full: the write was not stored; retry after an operator has freed disk space")
	// ErrStorageUnavailable answers a request that failed because the server's storage failed
	// (storage.ErrUnavailable: an I/O error, a read-only file system, the database file
	// deleted, replaced or truncated, a page the device could not read). It answers reads
	// too, so it does not speak of a write. The cause, with the path and the errno, goes to
	// the server log only.
	ErrStorageUnavailable = Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the server's storage is unavailable: the request was not carried out and nothing was stored; retry after an operator has checked the disk and the data directory, as the server log says")
)

// Mapping translates a domain error into an *Error, or returns nil if it does not know it.
type Mapping func(err error) *Error

// body is Key Vault's error envelope.
type body struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *inner `json:"innererror,omitempty"`
	} `json:"error"`
}

type inner struct {
	Code string `json:"code"`
}

// WriteError renders err in Key Vault's error shape. An *Error (wrapped or not) is written as
// is; other errors go through the mappings in order and are otherwise an InternalError, whose
// message never includes the original error text.
func WriteError(w http.ResponseWriter, err error, mappings ...Mapping) *Error {
	e := Resolve(err, mappings...)
	var b body
	b.Error.Code, b.Error.Message = e.Code, e.Message
	if e.Inner != "" {
		b.Error.InnerError = &inner{Code: e.Inner}
	}
	WriteJSON(w, e.Status, b)
	return e
}

// Resolve returns the *Error WriteError would render for err. A Managed HSM limit
// (*authz.LimitError) is 400 with its own code and message, a full disk
// (storage.ErrNoSpace) is 503 ErrStorageFull and failed storage (storage.ErrUnavailable) is
// 503 ErrStorageUnavailable, on every plane.
func Resolve(err error, mappings ...Mapping) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var limit *authz.LimitError
	if errors.As(err, &limit) {
		return Errorf(http.StatusBadRequest, limit.Code, limit.Message)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return ErrRequestTooLarge
	}
	if errors.Is(err, storage.ErrNoSpace) {
		return ErrStorageFull
	}
	if errors.Is(err, storage.ErrUnavailable) {
		return ErrStorageUnavailable
	}
	for _, m := range mappings {
		if e := m(err); e != nil {
			return e
		}
	}
	return ErrInternal
}

// jsonContentType is the Content-Type of every JSON answer, one shared slice.
var jsonContentType = []string{"application/json; charset=utf-8"}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType // shared: len == cap, never written into
	w.WriteHeader(status)
	if bw, ok := w.(*BufferedWriter); ok {
		if body, ok := appendFastJSON(bw.body, v); ok {
			bw.body = body
			return
		}
	}
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// DecodeJSON reads one JSON object from r's body (already size-capped by the server) into v,
// rejecting a body not sent as application/json, anything but one object, invalid UTF-8,
// unknown members, duplicate member names and trailing data (jsonbody.go). Errors are *Error
// BadParameter (or 413).
func DecodeJSON(r *http.Request, v any) error {
	body, err := readJSONBody(r)
	if err != nil {
		return err
	}
	return decodeJSONBytes(body, v)
}

// jsonProblem describes a decode error without echoing request content.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error"
	case errors.As(err, &typ):
		return "field " + typ.Field + " has the wrong type"
	case err.Error() == "EOF":
		return "the body is empty"
	case errors.Is(err, strictb64.ErrInvalid):
		// A base64 field broke the one rule (SECURITY-NOTES I6); these messages name the
		// member where the decoder knows it and never repeat the value.
		return err.Error()
	default:
		return "unexpected content"
	}
}
