package keys

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records"
	"github.com/coffer-kms/coffer/internal/records/recordstest"
)

const day = 24 * time.Hour

func TestRunDueRotation(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "auto", ecKey)
	f.mustCreate(f.v, "manual", ecKey) // no policy: never rotated
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "auto", KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P30D"}, Action: LifetimeActionType{Type: ActionRotate}}},
		Attributes:      &RotationPolicyAttributes{ExpiryTime: "P60D"},
	}); err != nil {
		t.Fatal(err)
	}
	versions := func(name string) int {
		page, err := f.svc.ListVersions(f.ctx, f.v, f.base, name, ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Value)
	}
	steps := []struct {
		name        string
		at          time.Duration
		wantRotated int
		wantAuto    int
	}{
		{"not-yet-due", 30*day - time.Second, 0, 1},
		{"due", 30 * day, 1, 2},
		{"once-only", 30*day + time.Hour, 0, 2},
		{"still-not-due", 60*day - time.Second, 0, 2},
		{"due-again", 60 * day, 1, 3},
		{"late-run-rotates-once", 200 * day, 1, 4},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		f.clk.Set(now)
		rotated, purged, err := f.svc.RunDue(f.ctx, now)
		if err != nil || rotated != st.wantRotated || purged != 0 {
			t.Errorf("%s: RunDue(+%v) = %d, %d, %v; want %d rotated", st.name, st.at, rotated, purged, err, st.wantRotated)
		}
		if got := versions("auto"); got != st.wantAuto {
			t.Errorf("%s: auto has %d versions; want %d", st.name, got, st.wantAuto)
		}
	}
	if got := versions("manual"); got != 1 {
		t.Errorf("manual has %d versions; want 1", got)
	}
	latest, _ := f.svc.Get(f.ctx, f.v, f.base, "auto", "")
	if want := t0.Add(200*day).AddDate(0, 0, 60).Unix(); latest.Attributes.Expires == nil || *latest.Attributes.Expires != want {
		t.Errorf("rotated version exp = %v; want created + P60D = %d", latest.Attributes.Expires, want)
	}
}

func TestRunDueRotationBeforeExpiry(t *testing.T) {
	f := newFixture(t)
	exp := t0.Add(40 * day).Unix()
	f.mustCreate(f.v, "exp", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{Expires: &exp}})
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "exp", KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeBeforeExpiry: "P10D"}, Action: LifetimeActionType{Type: ActionRotate}}},
		Attributes:      &RotationPolicyAttributes{ExpiryTime: "P90D"},
	}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(30*day-time.Second)); r != 0 || err != nil {
		t.Errorf("RunDue before exp-10d = %d, %v; want 0", r, err)
	}
	// Moving exp later with Update moves the rotation.
	later := t0.Add(50 * day).Unix()
	if _, err := f.svc.Update(f.ctx, f.v, f.base, "exp", "", UpdateParams{Attributes: &KeyAttributes{Expires: &later}}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(30*day)); r != 0 || err != nil {
		t.Errorf("RunDue at the old due time = %d, %v; want 0 after exp moved", r, err)
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(40*day)); r != 1 || err != nil {
		t.Errorf("RunDue at the new due time = %d, %v; want 1", r, err)
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(41*day)); r != 0 || err != nil {
		t.Errorf("RunDue after the rotation = %d, %v; want 0", r, err)
	}
}

func TestRunDuePurge(t *testing.T) {
	f := newFixture(t)
	plain := vault(tenantA, "plain", 7, false)
	protected := vault(tenantB, "protected", 14, true)
	f.mustCreate(plain, "old", ecKey)
	f.mustCreate(protected, "old", ecKey)
	f.mustCreate(plain, "kept", ecKey)
	f.mustCreate(protected, "auto", ecKey)
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, protected, f.base, "auto", KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P7D"}, Action: LifetimeActionType{Type: ActionRotate}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(f.ctx, plain, f.base, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(f.ctx, protected, f.base, "old"); err != nil {
		t.Fatal(err)
	}
	// A deleted key with a rotation policy is not rotated while deleted.
	if _, err := f.svc.Delete(f.ctx, protected, f.base, "auto"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		at         time.Duration
		wantPurged int
		plainGone  bool
		protGone   bool
	}{
		{"nothing-due", 7*day - time.Second, 0, false, false},
		{"plain-due", 7 * day, 1, true, false},
		{"protected-not-yet", 14*day - time.Second, 0, true, false},
		{"protected-due-despite-purge-protection", 14 * day, 2, true, true},
		{"nothing-left", 100 * day, 0, true, true},
	}
	for _, st := range steps {
		rotated, purged, err := f.svc.RunDue(f.ctx, t0.Add(st.at))
		if err != nil || purged != st.wantPurged || rotated != 0 {
			t.Errorf("%s: RunDue = %d rotated, %d purged, %v; want 0, %d", st.name, rotated, purged, err, st.wantPurged)
		}
		_, err = f.svc.GetDeleted(f.ctx, plain, f.base, "old")
		if gone := err != nil; gone != st.plainGone {
			t.Errorf("%s: plain/old gone = %v (%v); want %v", st.name, gone, err, st.plainGone)
		}
		_, err = f.svc.GetDeleted(f.ctx, protected, f.base, "old")
		if gone := err != nil; gone != st.protGone {
			t.Errorf("%s: protected/old gone = %v (%v); want %v", st.name, gone, err, st.protGone)
		}
	}
	if _, err := f.svc.Get(f.ctx, plain, f.base, "kept", ""); err != nil {
		t.Errorf("Get(kept) = %v; a live key must not be purged", err)
	}
	if f.prov.destroyedCount() != 3 {
		t.Errorf("destroyed %d handles; want 3", f.prov.destroyedCount())
	}
	// The scheduler index is empty again.
	page, err := f.store.List(f.ctx, schedulePrefix, storageAll)
	if err != nil || len(page.Keys) != 0 {
		t.Errorf("schedule index after all purges = %v, %v; want empty", page.Keys, err)
	}
}

func TestRunDueRecoveredKey(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "back", ecKey)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "back"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Recover(f.ctx, f.v, f.base, "back"); err != nil {
		t.Fatal(err)
	}
	if _, purged, err := f.svc.RunDue(f.ctx, t0.Add(365*day)); purged != 0 || err != nil {
		t.Errorf("RunDue after Recover = %d purged, %v; want 0", purged, err)
	}
	if _, err := f.svc.Get(f.ctx, f.v, f.base, "back", ""); err != nil {
		t.Errorf("Get(recovered) after RunDue = %v", err)
	}
}

func TestScheduleIndexReadsOnlyDueEntries(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 5; i++ {
		name := strings.Repeat("k", i+1)
		f.mustCreate(f.v, name, ecKey)
		if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, name, KeyRotationPolicy{
			LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: fmt.Sprintf("P%dD", 7+i)}, Action: LifetimeActionType{Type: ActionRotate}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := f.store.List(f.ctx, rotatePrefix, storageAll)
	if err != nil || len(page.Keys) != 5 {
		t.Fatalf("rotation index = %v, %v; want 5 entries", page.Keys, err)
	}
	for i := 1; i < len(page.Keys); i++ {
		a, _ := records.DueOf(rotatePrefix, page.Keys[i-1])
		b, _ := records.DueOf(rotatePrefix, page.Keys[i])
		if a > b {
			t.Errorf("index entries out of due order: %s before %s", page.Keys[i-1], page.Keys[i])
		}
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(8*day)); r != 2 || err != nil {
		t.Errorf("RunDue(+8d) = %d, %v; want 2 (P7D and P8D)", r, err)
	}
}

func TestRunDueStaleEntries(t *testing.T) {
	f := newFixture(t)
	b := f.mustCreate(f.v, "tick", ecKey)
	f.mustCreate(f.v, "live", ecKey)
	if _, err := f.svc.UpdateRotationPolicy(f.ctx, f.v, f.base, "tick", KeyRotationPolicy{
		LifetimeActions: []LifetimeAction{{Trigger: LifetimeTrigger{TimeAfterCreate: "P7D"}, Action: LifetimeActionType{Type: ActionRotate}}},
	}); err != nil {
		t.Fatal(err)
	}
	owned, err := f.store.List(f.ctx, rotatePrefix, storageAll)
	if err != nil || len(owned.Keys) != 1 {
		t.Fatalf("rotation index = %v, %v; want one entry", owned.Keys, err)
	}
	sc, _ := newScope(f.v, f.base)
	put := func(key, value string) {
		if err := f.store.Put(f.ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	entry := mustJSON(t, scheduleEntry{TenantID: tenantA, Kind: f.v.Kind, Vault: f.v.Name, Name: "tick", Version: versionOf(b.Key.KID)})
	put(scheduleKey(rotatePrefix, t0.Unix(), sc, "tick"), entry)                                                     // not the key's entry
	put(rotatePrefix+"00000000000000000001/damaged", "{")                                                            // not JSON
	put(rotatePrefix+"00000000000000000002/x", mustJSON(t, scheduleEntry{TenantID: "../..", Vault: "v", Name: "x"})) // no valid vault
	put(scheduleKey(purgePrefix, t0.Unix(), sc, "live"), mustJSON(t, scheduleEntry{TenantID: tenantA, Kind: f.v.Kind, Vault: f.v.Name, Name: "live"}))
	put(scheduleKey(purgePrefix, t0.Unix(), sc, "ghost"), mustJSON(t, scheduleEntry{TenantID: tenantA, Kind: f.v.Kind, Vault: f.v.Name, Name: "ghost"}))

	rotated, purged, err := f.svc.RunDue(f.ctx, t0.Add(day))
	if rotated != 0 || purged != 0 || err != nil {
		t.Errorf("RunDue with stale entries = %d, %d, %v; want 0, 0, nil", rotated, purged, err)
	}
	all, _ := f.store.List(f.ctx, schedulePrefix, storageAll)
	if len(all.Keys) != 1 || all.Keys[0] != owned.Keys[0] {
		t.Errorf("schedule index after RunDue = %v; want only %s", all.Keys, owned.Keys[0])
	}
	if _, err := f.svc.Get(f.ctx, f.v, f.base, "live", ""); err != nil {
		t.Errorf("a stale purge entry purged a live key: %v", err)
	}
	if r, _, err := f.svc.RunDue(f.ctx, t0.Add(7*day)); r != 1 || err != nil {
		t.Errorf("RunDue(+7d) = %d, %v; want 1", r, err)
	}
}

// TestCommitLostRace checks that a scheduled rotation that lost a race commits nothing and
// destroys the material it made.
func TestCommitLostRace(t *testing.T) {
	f := newFixture(t)
	b := f.mustCreate(f.v, "race", ecKey)
	sc, _ := newScope(f.v, f.base)
	meta, latest, err := f.svc.resolve(f.ctx, sc, "race", "")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.svc.rotated(f.ctx, sc, meta, latest, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.commit(f.ctx, sc, "race", "race", rec, commitRotate, expectation{latest: versionOf(b.Key.KID), index: "keyschedule/rotate/other"})
	if err != errStale {
		t.Errorf("commit(lost race) = %v; want errStale", err)
	}
	if f.prov.destroyedCount() != 1 {
		t.Errorf("commit(lost race) destroyed %d handles; want 1", f.prov.destroyedCount())
	}
	if page, _ := f.svc.ListVersions(f.ctx, f.v, f.base, "race", ListOptions{}); len(page.Value) != 1 {
		t.Errorf("versions after a lost race = %d; want 1", len(page.Value))
	}
}

// TestRunDueGoesOnWhenADropFails: when dropping one stale entry fails, RunDue reports the
// failure, keeps that entry for the next run, and still handles the entries after it.
func TestRunDueGoesOnWhenADropFails(t *testing.T) {
	f := newFixture(t)
	fs := &recordstest.FailingDeletes{Backend: f.store, Prefix: schedulePrefix}
	f.svc = NewService(fs, f.prov, f.clk.Now, f.bkey)
	sc, _ := newScope(f.v, f.base)
	for _, name := range []string{"ghost1", "ghost2"} {
		e := mustJSON(t, scheduleEntry{TenantID: tenantA, Kind: f.v.Kind, Vault: f.v.Name, Name: name})
		if err := f.store.Put(f.ctx, scheduleKey(purgePrefix, t0.Unix(), sc, name), []byte(e)); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Put(f.ctx, scheduleKey(rotatePrefix, t0.Unix(), sc, name), []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		page, err := f.store.List(f.ctx, schedulePrefix, storageAll)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Keys)
	}
	fs.Fail(1)
	if _, _, err := f.svc.RunDue(f.ctx, t0.Add(day)); !errors.Is(err, recordstest.ErrDeleteDown) {
		t.Errorf("RunDue with a failing drop = %v; want the storage error", err)
	}
	if n := left(); n != 1 {
		t.Errorf("%d schedule entries left after one failed drop; want 1 (the others were still handled)", n)
	}
	if _, _, err := f.svc.RunDue(f.ctx, t0.Add(day)); err != nil || left() != 0 {
		t.Errorf("RunDue after storage recovered = %v, %d entries left; want nil, 0", err, left())
	}
}
