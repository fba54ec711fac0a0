package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func checkEventJSON(t *testing.T, ev Event) {
	t.Helper()
	want, err := json.Marshal(&ev)
	if err != nil {
		return // not an event Append would take
	}
	if got := appendEventJSON(nil, &ev); !bytes.Equal(got, want) {
		t.Errorf("appendEventJSON = %s\njson.Marshal  = %s", got, want)
	}
}

// TestEventJSON: the hand-written encoder gives encoding/json's bytes, field order,
// omissions and escapes included.
func TestEventJSON(t *testing.T) {
	ts := time.Date(2026, 11, 27, 7, 21, 0, 123456789, time.UTC)
	checkEventJSON(t, Event{Time: ts, Operation: "KeyGet", Result: ResultSuccess})
	checkEventJSON(t, Event{Time: ts.Truncate(time.Second), CorrelationID: "c", CallerOID: "o", CallerAppID: "a", CallerTenant: "ct",
		Tenant: "t", Vault: "v", Operation: "KeySign", ObjectID: "/keys/k/1", Status: 403, Result: ResultDenied,
		ClientAddr: "127.0.0.1:5", Reason: "Forbidden: <not> \"allowed\" & \\ \n\t\r\b\f\x00\x1f \u2028\u2029 \xff ü 😀"})
	checkEventJSON(t, Event{Time: ts.In(time.FixedZone("x", 3600)), Operation: "op", Result: ResultError, Status: -1})
}

func FuzzEventJSON(f *testing.F) {
	f.Add("KeyGet", "/keys/k", "reason <&>", 200, int64(1795765473123456789))
	f.Add("\xff\u2028", "\x00", "\"\\", -5, int64(0))
	f.Fuzz(func(t *testing.T, op, obj, reason string, status int, nanos int64) {
		checkEventJSON(t, Event{Time: time.Unix(0, nanos).UTC(), Operation: op, ObjectID: obj, Reason: reason, Status: status,
			CallerOID: reason, Vault: obj, Result: ResultSuccess})
	})
}
