package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestValuesNeverInErrors drives every refusal with a canary value in the request and checks
// that no error message, rendering or log line carries it.
func TestValuesNeverInErrors(t *testing.T) {
	const canary = "CANARY-5ecr3t-d0-n0t-l3ak"
	f := newFixture(t)
	var errs []error
	collect := func(_ any, err error) {
		if err == nil {
			t.Errorf("expected an error, got none (case %d)", len(errs))
			return
		}
		errs = append(errs, err)
	}
	big := strings.Repeat(canary, MaxValueBytes/len(canary)+1)
	collect(f.svc.Set(f.ctx, f.v, f.base, "s", SetParams{Value: val(big)}))
	collect(f.svc.Set(f.ctx, f.v, f.base, "bad_name", SetParams{Value: val(canary)}))
	collect(f.svc.Set(f.ctx, f.v, f.base, "s", SetParams{Value: val(canary), ContentType: strings.Repeat("c", 300)}))
	collect(f.svc.Set(f.ctx, f.v, f.base, "s", SetParams{Value: val(canary), Tags: manyTags(20)}))
	collect(f.svc.Set(f.ctx, f.v, f.base, "s", SetParams{Value: val(canary), Attributes: &SecretAttributes{NotBefore: ptr(int64(5)), Expires: ptr(int64(1))}}))
	f.setIn(f.v, "off", SetParams{Value: val(canary), Attributes: &SecretAttributes{Enabled: ptr(false)}})
	collect(f.svc.Get(f.ctx, f.v, f.base, "off", ""))
	f.set("gone", canary)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "gone"); err != nil {
		t.Fatal(err)
	}
	collect(f.svc.Set(f.ctx, f.v, f.base, "gone", SetParams{Value: val(canary)}))
	collect(f.svc.Get(f.ctx, f.v, f.base, "gone", ""))
	blob, err := f.svc.Backup(f.ctx, f.v, f.base, "off")
	if err != nil {
		t.Fatal(err)
	}
	collect(f.svc.Restore(f.ctx, f.v, f.base, blob.Value))
	collect(f.svc.Restore(f.ctx, vault(tenantB, "v", 90, false), f.base, blob.Value))
	pp := vault(tenantA, "pp", 90, true)
	f.setIn(pp, "held", SetParams{Value: val(canary)})
	if _, err := f.svc.Delete(f.ctx, pp, f.base, "held"); err != nil {
		t.Fatal(err)
	}
	collect(nil, f.svc.Purge(f.ctx, pp, f.base, "held"))
	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)} {
			if strings.Contains(s, "CANARY") {
				t.Errorf("an error carries the secret value: %.120s", s)
			}
		}
	}

	// Deleted-secret answers carry no value.
	del, err := f.svc.GetDeleted(f.ctx, f.v, f.base, "gone")
	if err != nil || strings.Contains(mustJSON(t, del), "CANARY") {
		t.Errorf("GetDeleted = %v; it must not carry the value", err)
	}

	// Value renders redacted everywhere but in JSON.
	b := f.set("shown", canary)
	v := *b.Value
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "value", v, "ptr", b.Value)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "value", v)
	for _, s := range []string{
		fmt.Sprint(v), fmt.Sprintf("%v %s %q %#v %+v", v, v, v, v, v), fmt.Sprintf("%v %+v", b, b), buf.String(),
	} {
		if strings.Contains(s, "CANARY") {
			t.Errorf("a rendering of the value is not redacted: %.200s", s)
		}
	}
	j, _ := json.Marshal(b)
	if !strings.Contains(string(j), `"value":"`+canary+`"`) {
		t.Errorf("JSON of the bundle = %s; want the value on the wire", j)
	}
}

// TestValuesOnlyInVersionRecords checks where the values sit in storage: in version records
// only (which the server stores through the barrier), never in an index, a meta record or a
// schedule entry.
func TestValuesOnlyInVersionRecords(t *testing.T) {
	const canary = "CANARY-storage-91"
	f := newFixture(t)
	f.set("a", canary)
	f.set("b", canary)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "b"); err != nil {
		t.Fatal(err)
	}
	for k, v := range f.dump() {
		inVersion := strings.Contains(k, "/secrets/") && strings.Contains(k, "/versions/")
		if strings.Contains(v, canary) != inVersion {
			t.Errorf("record %s: holds the value = %v; want %v", k, !inVersion, inVersion)
		}
		if strings.Contains(k, canary) {
			t.Errorf("a storage key holds the value: %s", k)
		}
	}
}
