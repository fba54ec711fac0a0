package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
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
}
