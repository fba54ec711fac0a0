package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// A kind of object for the tests: its records carry only what the lifecycle code uses, plus
// a flag that makes a version unusable.
type testMeta struct {
	Name       string    `json:"name"`
	Latest     string    `json:"latest"`
	Deleted    *Deletion `json:"deleted,omitempty"`
	PurgeIndex string    `json:"purgeIndex,omitempty"`
}

type testVersion struct {
	Version string `json:"version"`
	Broken  bool   `json:"broken,omitempty"`
}

var (
	errTestNotFound  = errors.New("not found")
	errTestProtected = errors.New("purge protected")
)

var testKind = Kind[testMeta, testVersion]{
	Object: "things/", Index: "thingindex/", PurgePrefix: "thingschedule/purge/",
	Head: func(m *testMeta) Head {
		return Head{Name: &m.Name, Latest: &m.Latest, Deleted: &m.Deleted, PurgeIndex: &m.PurgeIndex}
	},
	Usable: func(v *testVersion) bool { return !v.Broken },
	NotFound: func(name, version string) error {
		return fmt.Errorf("%w: %s/%s", errTestNotFound, name, version)
	},
	NotDeleted: func(name string) error {
		return fmt.Errorf("%w: deleted %s", errTestNotFound, name)
	},
	PurgeProtected: func(name string, purgeDate int64) error {
		return fmt.Errorf("%w: %s until %d", errTestProtected, name, purgeDate)
	},
	PurgeHeld: func(name string) error {
		return fmt.Errorf("%w: %s held", errTestProtected, name)
	},
}

const (
	v1 = "00000000000000000000000000000001"
	v2 = "00000000000000000000000000000002"
)

type objectsFixture struct {
	t   *testing.T
	ctx context.Context
	st  *mem.Backend
	o   Objects[testMeta, testVersion]
}

func newObjectsFixture(t *testing.T) *objectsFixture {
	return &objectsFixture{t: t, ctx: context.Background(), st: mem.New(),
		o: Objects[testMeta, testVersion]{Kind: &testKind, Prefix: "tenants/t1/vaults/v1/"}}
}

func (f *objectsFixture) txn(fn func(tx storage.Tx) error) {
	f.t.Helper()
	if err := f.st.Txn(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

// create writes a live object with the given versions, the last one latest.
func (f *objectsFixture) create(lc string, versions ...testVersion) {
	f.t.Helper()
	f.txn(func(tx storage.Tx) error {
		for _, v := range versions {
			if err := Put(f.ctx, tx, f.o.VersionPath(lc, v.Version), v); err != nil {
				return err
			}
		}
		if err := tx.Put(f.ctx, f.o.LiveIndex()+lc, nil); err != nil {
			return err
		}
		return Put(f.ctx, tx, f.o.MetaPath(lc), testMeta{Name: strings.ToUpper(lc), Latest: versions[len(versions)-1].Version})
	})
}

// del soft-deletes a live object at now with 7 days of retention.
func (f *objectsFixture) del(lc string, now time.Time) *testMeta {
	f.t.Helper()
	var meta *testMeta
	f.txn(func(tx storage.Tx) error {
		var err error
		if meta, err = f.o.ReadLive(f.ctx, tx, lc, lc); err != nil {
			return err
		}
		if err := f.o.SoftDelete(f.ctx, tx, lc, meta, now, 7, map[string]string{"name": lc}); err != nil {
			return err
		}
		return Put(f.ctx, tx, f.o.MetaPath(lc), meta)
	})
	return meta
}

func (f *objectsFixture) keys() []string {
	f.t.Helper()
	keys, err := ListAll(f.ctx, f.st, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return keys
}

func TestObjectsPaths(t *testing.T) {
	o := Objects[testMeta, testVersion]{Kind: &testKind, Prefix: "tenants/t/vaults/v/"}
	for got, want := range map[string]string{
		o.MetaPath("a"):          "tenants/t/vaults/v/things/a/meta",
		o.VersionsPrefix("a"):    "tenants/t/vaults/v/things/a/versions/",
		o.VersionPath("a", "v9"): "tenants/t/vaults/v/things/a/versions/v9",
		o.LiveIndex():            "tenants/t/vaults/v/thingindex/live/",
		o.DeletedIndex():         "tenants/t/vaults/v/thingindex/deleted/",
	} {
		if got != want {
			t.Errorf("path = %q; want %q", got, want)
		}
	}
}

// An object goes live → deleted → live → deleted → removed, and at each step its record,
// index entries and purge entry are exactly what the format says.
func TestObjectsLifecycle(t *testing.T) {
	f := newObjectsFixture(t)
	now := time.Unix(1000, 0)
	f.create("a", testVersion{Version: v1}, testVersion{Version: v2})

	if _, err := f.o.ReadLive(f.ctx, f.st, "a", "A"); err != nil {
		t.Fatalf("ReadLive(live) = %v", err)
	}
	if _, _, err := f.o.ReadDeleted(f.ctx, f.st, "a", "A"); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "deleted A") {
		t.Errorf("ReadDeleted(live) = %v; want NotDeleted", err)
	}
	if _, _, err := f.o.ReadRecoverable(f.ctx, f.st, "a", "A"); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "A/") {
		t.Errorf("ReadRecoverable(live) = %v; want NotFound", err)
	}

	meta := f.del("a", now)
	wantKey := ScheduleKey("thingschedule/purge/", now.AddDate(0, 0, 7).Unix(), "t1/vaults/v1/a")
	if meta.Deleted == nil || meta.Deleted.Date != 1000 || meta.Deleted.PurgeDate != now.AddDate(0, 0, 7).Unix() || meta.PurgeIndex != wantKey {
		t.Fatalf("after SoftDelete meta = %+v (deleted %+v); want deleted at 1000, purge in 7 days at %s", meta, meta.Deleted, wantKey)
	}
	var entry map[string]string
	if found, err := Get(f.ctx, f.st, wantKey, &entry); !found || err != nil || entry["name"] != "a" {
		t.Errorf("purge entry = %v, %v, %v; want the caller's entry", entry, found, err)
	}
	if _, err := f.o.ReadLive(f.ctx, f.st, "a", "A"); !errors.Is(err, errTestNotFound) {
		t.Errorf("ReadLive(deleted) = %v; want NotFound", err)
	}
	m, latest, err := f.o.ReadDeleted(f.ctx, f.st, "a", "A")
	if err != nil || m.Name != "A" || latest.Version != v2 {
		t.Fatalf("ReadDeleted = %+v, %+v, %v; want A at its latest version", m, latest, err)
	}
	wantIndex := func(live, deleted bool) {
		t.Helper()
		for idx, want := range map[string]bool{f.o.LiveIndex() + "a": live, f.o.DeletedIndex() + "a": deleted} {
			if _, err := f.st.Get(f.ctx, idx); (err == nil) != want {
				t.Errorf("index %s present = %v; want %v", idx, err == nil, want)
			}
		}
	}
	wantIndex(false, true)

	f.txn(func(tx storage.Tx) error {
		m, err := f.o.Read(f.ctx, tx, "a", "A")
		if err != nil {
			return err
		}
		if err := f.o.Recover(f.ctx, tx, "a", m); err != nil {
			return err
		}
		if m.Deleted != nil || m.PurgeIndex != "" {
			t.Errorf("after Recover meta = %+v; want no deletion, no purge entry", m)
		}
		return Put(f.ctx, tx, f.o.MetaPath("a"), m)
	})
	wantIndex(true, false)
	if _, err := f.st.Get(f.ctx, wantKey); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("purge entry after Recover: %v; want it gone", err)
	}

	later := now.Add(time.Hour)
	meta = f.del("a", later)
	f.txn(func(tx storage.Tx) error {
		if err := tx.Put(f.ctx, "thingschedule/other/x", nil); err != nil {
			return err
		}
		if err := tx.Put(f.ctx, "tenants/t1/vaults/v1/things/ab/meta", []byte("{}")); err != nil {
			return err
		}
		return f.o.Remove(f.ctx, tx, "a", meta, "thingschedule/other/x", "")
	})
	if got := f.keys(); !slices.Equal(got, []string{"tenants/t1/vaults/v1/things/ab/meta"}) {
		t.Errorf("after Remove the store holds %q; want only the other object's record", got)
	}
}

func TestObjectsNotFound(t *testing.T) {
	f := newObjectsFixture(t)
	f.create("a", testVersion{Version: v1}, testVersion{Version: v2, Broken: true})
	if _, err := f.o.Read(f.ctx, f.st, "b", "B"); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "B/") {
		t.Errorf("Read(missing) = %v; want NotFound(B, \"\")", err)
	}
	if _, _, err := f.o.ReadDeleted(f.ctx, f.st, "b", "B"); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "deleted B") {
		t.Errorf("ReadDeleted(missing) = %v; want NotDeleted", err)
	}
	if _, _, err := f.o.ReadRecoverable(f.ctx, f.st, "b", "B"); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "B/") {
		t.Errorf("ReadRecoverable(missing) = %v; want NotFound(B, \"\")", err)
	}
	meta, err := f.o.ReadLive(f.ctx, f.st, "a", "A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.o.ReadVersion(f.ctx, f.st, "a", meta, ""); !errors.Is(err, errTestNotFound) || !strings.Contains(err.Error(), "A/"+v2) {
		t.Errorf("ReadVersion(latest, unusable) = %v; want NotFound(A, %s)", err, v2)
	}
	if v, err := f.o.ReadVersion(f.ctx, f.st, "a", meta, v1); err != nil || v.Version != v1 {
		t.Errorf("ReadVersion(v1) = %+v, %v", v, err)
	}
	// A record with no version yet is not live.
	f.txn(func(tx storage.Tx) error { return Put(f.ctx, tx, f.o.MetaPath("p"), testMeta{Name: "P"}) })
	if _, err := f.o.ReadLive(f.ctx, f.st, "p", "P"); !errors.Is(err, errTestNotFound) {
		t.Errorf("ReadLive(no version) = %v; want NotFound", err)
	}
}

// The listings skip names whose objects went away since the index was read, never return a
// nil page, and page with the names as tokens.
func TestObjectsListings(t *testing.T) {
	f := newObjectsFixture(t)
	for _, lc := range []string{"a", "b", "c", "d"} {
		f.create(lc, testVersion{Version: v1}, testVersion{Version: v2})
	}
	f.del("c", time.Unix(1000, 0))
	f.txn(func(tx storage.Tx) error {
		// d's index entry outlives its record; b's latest version cannot be served.
		if err := tx.Delete(f.ctx, f.o.MetaPath("d")); err != nil {
			return err
		}
		return Put(f.ctx, tx, f.o.VersionPath("b", v2), testVersion{Version: v2, Broken: true})
	})
	name := func(m *testMeta, v *testVersion) string { return m.Name + "@" + v.Version[31:] }

	got, next, err := ListLive(f.ctx, f.st, f.o, 0, "", name)
	if err == nil || !strings.Contains(err.Error(), "B/"+v2) {
		t.Errorf("ListLive with an unusable latest version = %v, %v; want NotFound(B, %s)", got, err, v2)
	}
	got, next, err = ListLive(f.ctx, f.st, f.o, 1, "", name)
	if err != nil || !slices.Equal(got, []string{"A@2"}) || next != "a" {
		t.Errorf("ListLive(page of 1) = %q, %q, %v; want [A@2], next a", got, next, err)
	}
	got, next, err = ListLive(f.ctx, f.st, f.o, 2, "b", name)
	if err != nil || len(got) != 0 || got == nil || next != "" {
		t.Errorf("ListLive(after b) = %#v, %q, %v; want an empty, non-nil last page", got, next, err)
	}
	got, _, err = ListDeleted(f.ctx, f.st, f.o, 0, "", name)
	if err != nil || !slices.Equal(got, []string{"C@2"}) {
		t.Errorf("ListDeleted = %q, %v; want [C@2]", got, err)
	}
	vers, _, err := ListVersions(f.ctx, f.st, f.o, "b", 0, "", func(v *testVersion) string { return v.Version })
	if err != nil || !slices.Equal(vers, []string{v1}) {
		t.Errorf("ListVersions(b) = %q, %v; want only the usable %s", vers, err, v1)
	}
	if _, _, err := ListLive(f.ctx, f.st, f.o, 26, "", name); !errors.Is(err, ErrPage) {
		t.Errorf("ListLive(maxresults 26) = %v; want ErrPage", err)
	}
	if _, _, err := ListDeleted(f.ctx, f.st, f.o, 0, "Not-Lower", name); !errors.Is(err, ErrPage) {
		t.Errorf("ListDeleted(bad token) = %v; want ErrPage", err)
	}
	boom := errors.New("boom")
	if _, _, err := PageItems(f.ctx, f.st, f.o.LiveIndex(), 0, "", ValidName, func(string) (int, bool, error) { return 0, false, boom }); !errors.Is(err, boom) {
		t.Errorf("PageItems with a failing item = %v; want its error", err)
	}
}

func TestObjectsDropUnowned(t *testing.T) {
	f := newObjectsFixture(t)
	f.create("a", testVersion{Version: v1})
	meta := f.del("a", time.Unix(1000, 0))
	stale := ScheduleKey("thingschedule/purge/", 5, "t1/vaults/v1/a")
	orphan := ScheduleKey("thingschedule/purge/", 6, "t1/vaults/v1/gone")
	f.txn(func(tx storage.Tx) error {
		return errors.Join(tx.Put(f.ctx, stale, []byte("{}")), tx.Put(f.ctx, orphan, []byte("{}")))
	})
	for _, key := range []string{meta.PurgeIndex, stale} {
		if err := f.o.DropUnowned(f.ctx, f.st, "a", key, func(m *testMeta) bool { return m.PurgeIndex == key }); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.o.DropUnowned(f.ctx, f.st, "gone", orphan, func(*testMeta) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{meta.PurgeIndex: true, stale: false, orphan: false} {
		if _, err := f.st.Get(f.ctx, key); (err == nil) != want {
			t.Errorf("entry %s kept = %v; want %v", key, err == nil, want)
		}
	}
}

// ReadPurgeable decides who may purge what: a scheduled purge only its own due entry of a
// deleted object (stale otherwise, protection or not) while the gate lets it; a user purge
// only a deleted object, after the kind's own refusal and, under purge protection, not before
// the purge date and not while the gate holds purges.
func TestObjectsReadPurgeable(t *testing.T) {
	f := newObjectsFixture(t)
	deletedAt := time.Unix(1000, 0)
	for _, lc := range []string{"a", "managed", "live"} {
		f.create(lc, testVersion{Version: v1})
	}
	meta := f.del("a", deletedAt)
	f.del("managed", deletedAt)
	due := time.Unix(meta.Deleted.PurgeDate, 0)
	early := due.Add(-time.Second)
	errManaged := errors.New("managed")
	errGate := errors.New("gate storage failure")
	refuse := func(m *testMeta) error {
		if m.Name == "MANAGED" {
			return errManaged
		}
		return nil
	}
	for _, tc := range []struct {
		name, lc  string
		now       time.Time
		index     string
		protected bool
		gate      error  // the gate's answer
		want      error  // nil: the record is returned
		wantText  string // in the error's text
	}{
		{name: "ok/scheduled-due", lc: "a", now: due, index: meta.PurgeIndex},
		{name: "ok/scheduled-ignores-protection", lc: "a", now: due.Add(time.Hour), index: meta.PurgeIndex, protected: true},
		{name: "ok/user-unprotected-early", lc: "a", now: early},
		{name: "ok/user-protected-at-date", lc: "a", now: due, protected: true},
		{name: "fail/scheduled-not-due", lc: "a", now: early, index: meta.PurgeIndex, want: ErrStale},
		{name: "fail/scheduled-other-entry", lc: "a", now: due, index: "thingschedule/purge/other", want: ErrStale},
		{name: "fail/scheduled-live", lc: "live", now: due, index: meta.PurgeIndex, want: ErrStale},
		{name: "fail/scheduled-missing", lc: "gone", now: due, index: meta.PurgeIndex, want: ErrStale},
		{name: "fail/user-live", lc: "live", now: due, want: errTestNotFound, wantText: "deleted LIVE-ASKED"},
		{name: "fail/user-missing", lc: "gone", now: due, want: errTestNotFound, wantText: "deleted GONE-ASKED"},
		{name: "fail/user-protected-early", lc: "a", now: early, protected: true, want: errTestProtected, wantText: fmt.Sprintf("A until %d", meta.Deleted.PurgeDate)},
		{name: "fail/user-refused-before-protection", lc: "managed", now: early, protected: true, want: errManaged},
		{name: "fail/user-refused", lc: "managed", now: due, want: errManaged},
		{name: "ok/user-unprotected-while-held", lc: "a", now: due, gate: ErrPurgesHeld},
		{name: "fail/scheduled-held", lc: "a", now: due, index: meta.PurgeIndex, gate: ErrPurgesHeld, want: ErrPurgesHeld},
		{name: "fail/scheduled-gate-failed", lc: "a", now: due, index: meta.PurgeIndex, gate: errGate, want: errGate},
		{name: "fail/user-protected-held", lc: "a", now: due, protected: true, gate: ErrPurgesHeld, want: errTestProtected, wantText: "A held"},
		{name: "fail/user-protected-gate-failed", lc: "a", now: due, protected: true, gate: errGate, want: errGate},
		{name: "fail/user-protected-early-held", lc: "a", now: early, protected: true, gate: ErrPurgesHeld, want: errTestProtected, wantText: "until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := func(_ context.Context, now time.Time) error {
				if !now.Equal(tc.now) {
					t.Errorf("gate asked about %v; want %v", now, tc.now)
				}
				return tc.gate
			}
			got, err := f.o.ReadPurgeable(f.ctx, f.st, tc.lc, strings.ToUpper(tc.lc)+"-ASKED", tc.now, tc.index, tc.protected, gate, refuse)
			if tc.want == nil {
				if err != nil || got == nil || got.Name != strings.ToUpper(tc.lc) {
					t.Errorf("ReadPurgeable(%q) = %+v, %v; want its record", tc.lc, got, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("ReadPurgeable(%q) = %v; want %v with %q", tc.lc, err, tc.want, tc.wantText)
			}
		})
	}
}
