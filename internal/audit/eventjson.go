package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
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
	return appendJSONString(dst, v)
}

// appendJSONString is encoding/json's string encoding with HTML escaping (its default).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
