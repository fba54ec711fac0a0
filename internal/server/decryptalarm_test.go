package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/api"
)

// TestDecryptFailureAlarm (SECURITY-NOTES C1): a key that fails to decrypt or unwrap
// decrypt-failure-alarm ciphertexts within a minute raises one alarm — an audit record with
// result "alarm" naming the key, a warning in the server log, the metric — and no second one
// in the same minute; a key below the threshold, and successful decryptions, raise none.
func TestDecryptFailureAlarm(t *testing.T) {
	ts := startDev(t, "--decrypt-failure-alarm", "5")
	ctx := context.Background()
	c := keysClient(t, ts)
	for _, name := range []string{"attacked", "quiet"} {
		if _, err := c.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rsa15 := to.Ptr(azkeys.EncryptionAlgorithmRSA15)
	bad := make([]byte, 256) // decrypts to no valid padding under any key
	fail := func(name string, unwrap bool) {
		t.Helper()
		var err error
		if unwrap {
			_, err = c.UnwrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: bad}, nil)
		} else {
			_, err = c.Decrypt(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: bad}, nil)
		}
		wantCode(t, err, 400, "BadParameter")
	}
	ct, err := c.Encrypt(ctx, "quiet", "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: []byte("x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // successes do not count
		if _, err := c.Decrypt(ctx, "quiet", "", azkeys.KeyOperationParameters{Algorithm: rsa15, Value: ct.Result}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		fail("quiet", false)
		fail("attacked", i%2 == 0) // decrypt and unwrapKey count together
	}
	if got := alarms(t, ts); len(got) != 0 {
		t.Fatalf("alarms after 4 failures per key (threshold 5): %v", got)
	}
	fail("attacked", false) // the fifth
	for range 5 {
		fail("attacked", false) // the same minute: no second alarm
	}
	got := alarms(t, ts)
	if len(got) != 1 {
		t.Fatalf("alarms = %v; want exactly one, for /keys/attacked", got)
	}
	a := got[0]
	if a.ObjectID != "/keys/attacked" || a.Vault == "" || a.Tenant != ts.Dev.Credentials.TenantID || !strings.Contains(a.Reason, "5 decrypt or unwrapKey calls failed") {
		t.Errorf("alarm record = %+v; want the attacked key, its vault and tenant, and the count", a)
	}
	if !strings.Contains(ts.logs.String(), "decryption failure alarm") {
		t.Error("no warning in the server log")
	}
	if m := grepLines(ts.metricsText(t), "coffer_decrypt_failure_alarms_total "); !strings.HasSuffix(m, " 1") {
		t.Errorf("metric = %q; want 1", m)
	}
}

// alarmRecord is the part of an audit record the alarm test reads.
type alarmRecord struct {
	ObjectID string `json:"object_id"`
	Vault    string `json:"vault"`
	Tenant   string `json:"tenant"`
	Reason   string `json:"reason"`
}

// alarms returns the alarm records in ts's audit log.
func alarms(t *testing.T, ts *testServer) []alarmRecord {
	t.Helper()
	var out []alarmRecord
	for _, line := range strings.Split(readAudit(t, ts), "\n") {
		if !strings.Contains(line, `"result":"alarm"`) {
			continue
		}
		var rec alarmRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestDecryptAlarmWindows: the count starts over each minute (a second alarm in the next
// one), a clock that goes back starts it over too, and a flood of distinct keys does not grow
// the counts past maxAlarmKeys.
func TestDecryptAlarmWindows(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var raised []int
	a := &decryptAlarm{threshold: 2, now: func() time.Time { return now }, counts: map[alarmKey]*alarmCount{},
		raise: func(k alarmKey, n int) { raised = append(raised, n) }}
	rec := api.AuditRecord{Tenant: "t", Vault: "v", ObjectID: "/keys/k/0123/decrypt", Reason: "BadParameter: " + api.DecryptFailedReason}
	other := rec
	other.Reason = "BadParameter"
	for range 3 {
		a.note(rec)
		a.note(other) // not a failed decryption
	}
	now = now.Add(alarmWindow)
	a.note(rec)
	a.note(rec)
	now = now.Add(-time.Hour) // the clock went back: a new window
	a.note(rec)
	a.note(rec)
	if want := []int{2, 2, 2}; !slices.Equal(raised, want) {
		t.Errorf("alarms raised with counts %v; want %v (one per window)", raised, want)
	}
	for i := range maxAlarmKeys + 10 {
		r := rec
		r.ObjectID = fmt.Sprintf("/keys/k%d/decrypt", i)
		a.note(r)
	}
	if n := len(a.counts); n > maxAlarmKeys {
		t.Errorf("%d keys counted; want at most %d", n, maxAlarmKeys)
	}
}
