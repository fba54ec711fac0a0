package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Results an Event may carry.
const (
	ResultSuccess         = "success"
	ResultDenied          = "denied"
	ResultError           = "error"
	ResultUnauthenticated = "unauthenticated"
	// ResultAlarm marks a record the server wrote on its own to raise an alarm (e.g. a key
	// failing to decrypt too often), not the outcome of one request.
	ResultAlarm = "alarm"
)

// MaxFieldLen is the longest value, in bytes, of any Event string field except Reason.
// Longer values are refused rather than cut, so a record never silently loses text.
const MaxFieldLen = 1024

// Clip makes a string that came with a request (a path, a client id, a tenant segment) fit
// an Event field: invalid UTF-8 becomes U+FFFD and a value longer than MaxFieldLen bytes is
// cut on a rune boundary and ends with "…". Callers clip what a client controls, so that an
// odd or over-long request is recorded rather than making its record, and with it the
// request, fail; what the server itself derives is never clipped.
func Clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxFieldLen {
		return s
	}
	cut := MaxFieldLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// MaxReasonLen is the longest Event.Reason, in bytes.
const MaxReasonLen = 256

// ErrInvalidEvent is returned (wrapped) by Append for an event it refuses to record: missing
// operation, unknown result, over-long or non-UTF-8 field, time outside years 1–9999. The
// caller must fail its request, as for any other Append error.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Event is what a caller records about one request. It must never hold a secret value, key
// material, plaintext or token; record Log.HMAC of a sensitive string instead.
type Event struct {
	// Time is when the request happened; Append fills in the log's clock if it is zero and
	// stores it in UTC.
	Time time.Time `json:"time"`
	// CorrelationID is the request id (x-ms-request-id / client request id).
	CorrelationID string `json:"correlation_id,omitempty"`
	// CallerOID is the object id of the authenticated principal.
	CallerOID string `json:"caller_oid,omitempty"`
	// CallerAppID is the application (client) id of the authenticated principal.
	CallerAppID string `json:"caller_app_id,omitempty"`
	// CallerTenant is the tenant the caller's token was issued by.
	CallerTenant string `json:"caller_tenant,omitempty"`
	// Tenant is the tenant that owns the vault the request addressed; Query scopes on it.
	Tenant string `json:"tenant,omitempty"`
	// Vault is the vault the request addressed.
	Vault string `json:"vault,omitempty"`
	// Operation names the action, e.g. "KeySign", "SysSeal", "TokenIssue".
	Operation string `json:"op,omitempty"`
	// ObjectID identifies the object acted on (key, secret or certificate id), if any.
	ObjectID string `json:"object_id,omitempty"`
	// Status is the HTTP status returned.
	Status int `json:"status,omitempty"`
	// Result is one of ResultSuccess, ResultDenied, ResultError, ResultUnauthenticated.
	Result string `json:"result,omitempty"`
	// ClientAddr is the client's network address.
	ClientAddr string `json:"client_addr,omitempty"`
	// Reason is short text for humans (why denied, which error class); never secrets.
	Reason string `json:"reason,omitempty"`
}

// validate reports why an event handed to Append cannot be recorded.
func (e *Event) validate() error {
	if e.Operation == "" {
		return fmt.Errorf("%w: Operation is empty", ErrInvalidEvent)
	}
	switch e.Result {
	case ResultSuccess, ResultDenied, ResultError, ResultUnauthenticated, ResultAlarm:
	default:
		return fmt.Errorf("%w: Result %q is not success, denied, error, unauthenticated or alarm", ErrInvalidEvent, e.Result)
	}
	if y := e.Time.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: Time year %d outside 1–9999", ErrInvalidEvent, y)
	}
	if e.Status < 0 || e.Status > 999 {
		return fmt.Errorf("%w: Status %d is not an HTTP status", ErrInvalidEvent, e.Status)
	}
	fields := []struct {
		name, v string
		max     int
	}{
		{"CorrelationID", e.CorrelationID, MaxFieldLen},
		{"CallerOID", e.CallerOID, MaxFieldLen},
		{"CallerAppID", e.CallerAppID, MaxFieldLen},
		{"CallerTenant", e.CallerTenant, MaxFieldLen},
		{"Tenant", e.Tenant, MaxFieldLen},
		{"Vault", e.Vault, MaxFieldLen},
		{"Operation", e.Operation, MaxFieldLen},
		{"ObjectID", e.ObjectID, MaxFieldLen},
		{"ClientAddr", e.ClientAddr, MaxFieldLen},
		{"Reason", e.Reason, MaxReasonLen},
	}
	for _, f := range fields {
		if len(f.v) > f.max {
			return fmt.Errorf("%w: %s is %d bytes, longer than %d", ErrInvalidEvent, f.name, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidEvent, f.name)
		}
	}
	return nil
}

// HMACPrefix starts every value returned by Log.HMAC.
const HMACPrefix = "hmac-sha256:"

// hmacString is HMACPrefix ‖ hex(HMAC-SHA256(key, s)).
func hmacString(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return HMACPrefix + hex.EncodeToString(m.Sum(nil))
}
