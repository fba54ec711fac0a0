package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestFormatVector pins format version 1 (see the package doc): the canonical JSON field
// order, the genesis value and the hash formula, computed here independently of encodeLine.
func TestFormatVector(t *testing.T) {
	const (
		canon = `{"seq":1,"kind":"event","log":"log-a","prev":"","time":"2026-11-26T12:00:00Z",` +
			`"tenant":"t1","op":"KeySign","status":200,"result":"success"}`
		genesisHex = "coffer-audit-v1 genesis\n" // ‖ log id, hashed
	)
	g := sha256.Sum256([]byte(genesisHex + "log-a"))
	wantHash := sha256.Sum256([]byte(hex.EncodeToString(g[:]) + canon))
	want := canon[:len(canon)-1] + `,"hash":"` + hex.EncodeToString(wantHash[:]) + `"}` + "\n"

	r := Record{Seq: 1, Kind: KindEvent, LogID: "log-a", Event: Event{
		Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Tenant: "t1",
		Operation: "KeySign", Status: 200, Result: ResultSuccess,
	}}
	got, err := encodeLine(nil, &r, genesis("log-a"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("encodeLine =\n%s\nwant\n%s", got, want)
	}

	cp := Checkpoint{LogID: "log-a", Seq: 7, HeadHash: "ab", Time: time.Date(2026, 11, 26, 12, 0, 0, 5, time.UTC)}
	if got, want := string(cp.SignedMessage()), "coffer-audit-checkpoint-v1\nlog-a\n7\nab\n2026-11-26T12:00:00.000000005Z"; got != want {
		t.Errorf("SignedMessage = %q; want %q", got, want)
	}
	cp.Span = &Span{From: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), To: cp.Time}
	if got, want := string(cp.SignedMessage()), "coffer-audit-checkpoint-v2\nlog-a\n7\nab\n2026-11-26T12:00:00.000000005Z\n2026-11-26T11:00:00Z\n2026-11-26T12:00:00.000000005Z"; got != want {
		t.Errorf("SignedMessage with a span = %q; want %q", got, want)
	}
}

// TestEncodeEventLineMatchesEncodeLine: the writer's fast path for events encoded by the
// caller produces exactly the bytes of encodeLine (which Verify recomputes), for events with
// every field set, empty optional fields, and strings that JSON escapes.
func TestEncodeEventLineMatchesEncodeLine(t *testing.T) {
	full := testEvent(7)
	full.Reason = `quote " backslash \ <script>&amp; é 日本 ` + "\u2028 \t\x01"
	full.ObjectID = "https://v.localhost/keys/k?x=<1>&y=2"
	tests := []struct {
		name string
		ev   Event
		seq  uint64
		prev string
	}{
		{"ok/first-record", Event{Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}, 1, ""},
		{"ok/all-fields-escaped", full, 42, strings.Repeat("ab", 32)},
		{"ok/nanoseconds-and-zone", Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Status: 503, Result: ResultError}, 9, strings.Repeat("0f", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := genesis("log-a.1_x")
			if tt.prev != "" {
				head = tt.prev
			}
			r1 := Record{Seq: tt.seq, Kind: KindEvent, LogID: "log-a.1_x", Prev: tt.prev, Event: tt.ev}
			r2 := r1
			want, err := encodeLine(nil, &r1, head)
			if err != nil {
				t.Fatal(err)
			}
			evJSON, err := json.Marshal(&tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			got := encodeEventLine([]byte("kept"), &r2, evJSON, head)
			if string(got) != "kept"+string(want) || r2.Hash != r1.Hash {
				t.Errorf("encodeEventLine =\n%s\nwant\n%s", got[4:], want)
			}
		})
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", MaxFieldLen) // 2 bytes each
	for _, tc := range []struct{ name, in string }{
		{"ok/short", "/keys/k"}, {"invalid-utf8", "/keys/\xc0\xaf"}, {"long", strings.Repeat("a", 5000)}, {"long-multibyte", long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Clip(tc.in)
			ev := Event{Operation: "Op", Result: ResultError, Time: time.Now(), ObjectID: got}
			if err := ev.validate(); err != nil {
				t.Errorf("Clip(%.40q) = %.40q, which an event refuses: %v", tc.in, got, err)
			}
			if len(tc.in) <= MaxFieldLen && utf8.ValidString(tc.in) && got != tc.in {
				t.Errorf("Clip(%q) = %q; want it unchanged", tc.in, got)
			}
		})
	}
}
