package audit

import (
	"strconv"
	"time"

	"github.com/coffer-kms/coffer/internal/jsonenc"
)

// appendEventJSON appends json.Marshal(ev) to dst without reflection: every data-plane
// request encodes one event, and the reflective encoder was ~4% of a read's server CPU.
// FuzzEventJSON holds it byte for byte to encoding/json's output, escaping included.
// ev.Time must be in years 1–9999 (validate checks it).
func appendEventJSON(dst []byte, ev *Event) []byte {
	if dst == nil {
		dst = make([]byte, 0, 512)
	}
	dst = append(dst, `{"time":"`...)
	dst = ev.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendField(dst, "correlation_id", ev.CorrelationID)
	dst = appendField(dst, "caller_oid", ev.CallerOID)
	dst = appendField(dst, "caller_app_id", ev.CallerAppID)
	dst = appendField(dst, "caller_tenant", ev.CallerTenant)
	dst = appendField(dst, "tenant", ev.Tenant)
	dst = appendField(dst, "vault", ev.Vault)
	dst = appendField(dst, "op", ev.Operation)
	dst = appendField(dst, "object_id", ev.ObjectID)
	if ev.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(ev.Status), 10)
	}
	dst = appendField(dst, "result", ev.Result)
	dst = appendField(dst, "client_addr", ev.ClientAddr)
	dst = appendField(dst, "reason", ev.Reason)
	return append(dst, '}')
}

// appendField appends ,"name":"v" unless v is empty (omitempty).
func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return jsonenc.String(dst, v)
}
