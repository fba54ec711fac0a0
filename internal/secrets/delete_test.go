package secrets

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/tenancy"
)

const day = 24 * time.Hour

func TestDeleteRecover(t *testing.T) {
	f := newFixture(t)
	first := f.set("App-Key", "one")
	second := f.set("app-key", "two")
	f.clk.Advance(time.Hour)
	now := f.clk.Now().Unix()

	del, err := f.svc.Delete(f.ctx, f.v, f.base, "APP-KEY")
	if err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if del.RecoveryID != f.base+"/deletedsecrets/App-Key" || *del.DeletedDate != now || *del.ScheduledPurgeDate != now+90*86400 {
		t.Errorf("Delete() = recoveryId %q, deleted %d, purge %d; want %s/deletedsecrets/App-Key, %d, %d",
			del.RecoveryID, *del.DeletedDate, *del.ScheduledPurgeDate, f.base, now, now+90*86400)
	}
	if del.ID != second.ID || del.Value != nil || strings.Contains(mustJSON(t, del), `"value"`) {
		t.Errorf("Delete() = %s; want the latest version without its value", mustJSON(t, del))
	}

	// The secret is gone from every live view and its name is reserved.
	_, err = f.svc.Get(f.ctx, f.v, f.base, "app-key", "")
	wantErr(t, "Get(deleted)", err, ErrSecretNotFound)
	_, err = f.svc.Get(f.ctx, f.v, f.base, "app-key", versionOf(first.ID))
	wantErr(t, "Get(deleted, old version)", err, ErrSecretNotFound)
	_, err = f.svc.Delete(f.ctx, f.v, f.base, "app-key")
	wantErr(t, "Delete(deleted)", err, ErrSecretNotFound)
	_, err = f.svc.Update(f.ctx, f.v, f.base, "app-key", "", UpdateParams{})
	wantErr(t, "Update(deleted)", err, ErrSecretNotFound)
	_, err = f.svc.Backup(f.ctx, f.v, f.base, "app-key")
	wantErr(t, "Backup(deleted)", err, ErrSecretNotFound)
	_, err = f.svc.Set(f.ctx, f.v, f.base, "App-KEY", SetParams{Value: val("three")})
	wantErr(t, "Set(deleted name)", err, ErrDeletedButRecoverable)
	if err == nil || !strings.Contains(err.Error(), "deleted but recoverable state") {
		t.Errorf("Set(deleted name) message = %v; want Key Vault's", err)
	}

	got, err := f.svc.GetDeleted(f.ctx, f.v, f.base, "app-key")
	if err != nil || mustJSON(t, got) != mustJSON(t, del) {
		t.Errorf("GetDeleted = %s, %v; want %s", mustJSON(t, got), err, mustJSON(t, del))
	}
	_, err = f.svc.GetDeleted(f.ctx, f.v, f.base, "never")
	wantErr(t, "GetDeleted(unknown)", err, ErrSecretNotFound)
	f.set("live", "x")
	_, err = f.svc.GetDeleted(f.ctx, f.v, f.base, "live")
	wantErr(t, "GetDeleted(live)", err, ErrSecretNotFound)
	_, err = f.svc.Recover(f.ctx, f.v, f.base, "live")
	wantErr(t, "Recover(live)", err, ErrSecretNotFound)
	err = f.svc.Purge(f.ctx, f.v, f.base, "live")
	wantErr(t, "Purge(live)", err, ErrSecretNotFound)

	rec, err := f.svc.Recover(f.ctx, f.v, f.base, "app-key")
	if err != nil || rec.ID != second.ID || rec.Value != nil {
		t.Fatalf("Recover = %s, %v; want the latest version without its value", mustJSON(t, rec), err)
	}
	for ver, want := range map[string]string{versionOf(first.ID): "one", versionOf(second.ID): "two", "": "two"} {
		b, err := f.svc.Get(f.ctx, f.v, f.base, "app-key", ver)
		if err != nil || string(*b.Value) != want {
			t.Errorf("Get(%q) after Recover = %v; want value %s", ver, err, want)
		}
	}
	_, err = f.svc.GetDeleted(f.ctx, f.v, f.base, "app-key")
	wantErr(t, "GetDeleted(recovered)", err, ErrSecretNotFound)
	if n, err := f.svc.RunDue(f.ctx, f.clk.Now().Add(365*day)); err != nil || n != 0 {
		t.Errorf("RunDue after Recover = %d, %v; want nothing purged", n, err)
	}
	if _, err := f.svc.Get(f.ctx, f.v, f.base, "app-key", ""); err != nil {
		t.Errorf("Get after RunDue = %v; a recovered secret must not be purged", err)
	}
}

func TestPurge(t *testing.T) {
	f := newFixture(t)
	f.set("temp", "one")
	f.set("temp", "two")
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "temp"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Purge(f.ctx, f.v, f.base, "TEMP"); err != nil {
		t.Fatalf("Purge = %v", err)
	}
	for k := range f.dump() {
		t.Errorf("record left after Purge: %s", k)
	}
	err := f.svc.Purge(f.ctx, f.v, f.base, "temp")
	wantErr(t, "Purge(purged)", err, ErrSecretNotFound)
	_, err = f.svc.GetDeleted(f.ctx, f.v, f.base, "temp")
	wantErr(t, "GetDeleted(purged)", err, ErrSecretNotFound)
	// The name is free again, with a fresh history.
	b := f.set("temp", "three")
	items, _ := listAll(t, 25, func(o ListOptions) (Page[SecretItem], error) {
		return f.svc.ListVersions(f.ctx, f.v, f.base, "temp", o)
	})
	if len(items) != 1 || items[0].ID != b.ID {
		t.Errorf("versions after purge and set = %d; want 1", len(items))
	}
}

func TestPurgeProtection(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention int
		level     string
	}{
		{"90-days", 90, "Recoverable"},
		{"7-days", 7, "CustomizedRecoverable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			v := vault(tenantA, "protected", tt.retention, true)
			b := f.setIn(v, "s", SetParams{Value: val("v")})
			if b.Attributes.RecoveryLevel != tt.level || *b.Attributes.RecoverableDays != tt.retention {
				t.Errorf("recoveryLevel/days = %q/%d; want %q/%d", b.Attributes.RecoveryLevel, *b.Attributes.RecoverableDays, tt.level, tt.retention)
			}
			del, err := f.svc.Delete(f.ctx, v, f.base, "s")
			if err != nil {
				t.Fatal(err)
			}
			if *del.ScheduledPurgeDate != t0.AddDate(0, 0, tt.retention).Unix() {
				t.Errorf("scheduledPurgeDate = %d; want now + %d days", *del.ScheduledPurgeDate, tt.retention)
			}
			err = f.svc.Purge(f.ctx, v, f.base, "s")
			wantErr(t, "Purge(protected)", err, ErrPurgeProtected)
			f.clk.Advance(time.Duration(tt.retention)*day - time.Second)
			err = f.svc.Purge(f.ctx, v, f.base, "s")
			wantErr(t, "Purge(protected, a second early)", err, ErrPurgeProtected)
			if n, err := f.svc.RunDue(f.ctx, f.clk.Now()); err != nil || n != 0 {
				t.Errorf("RunDue a second early = %d, %v; want 0", n, err)
			}
			// Recover stays possible throughout.
			if _, err := f.svc.GetDeleted(f.ctx, v, f.base, "s"); err != nil {
				t.Errorf("GetDeleted = %v", err)
			}
			f.clk.Advance(time.Second)
			if n, err := f.svc.RunDue(f.ctx, f.clk.Now()); err != nil || n != 1 {
				t.Errorf("RunDue at the scheduled date = %d, %v; want 1 (purge protection does not stop the system purge)", n, err)
			}
			_, err = f.svc.GetDeleted(f.ctx, v, f.base, "s")
			wantErr(t, "GetDeleted after RunDue", err, ErrSecretNotFound)
		})
	}
	// Without protection the retention does not matter to a user purge; with it, a purge
	// after the scheduled date (if RunDue has not run) is allowed.
	f := newFixture(t)
	v := vault(tenantA, "protected", 7, true)
	f.setIn(v, "s", SetParams{Value: val("v")})
	if _, err := f.svc.Delete(f.ctx, v, f.base, "s"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(7 * day)
	if err := f.svc.Purge(f.ctx, v, f.base, "s"); err != nil {
		t.Errorf("Purge(protected, after the scheduled date) = %v", err)
	}
}

func TestRunDue(t *testing.T) {
	f := newFixture(t)
	short := vault(tenantA, "short", 7, false)
	other := vault(tenantB, "other", 30, false)
	f.setIn(short, "a", SetParams{Value: val("1")})
	f.setIn(short, "b", SetParams{Value: val("2")})
	f.setIn(other, "c", SetParams{Value: val("3")})
	f.setIn(short, "recovered", SetParams{Value: val("4")})
	f.setIn(short, "redeleted", SetParams{Value: val("5")})
	f.setIn(short, "live", SetParams{Value: val("6")})
	for _, d := range []struct {
		v    tenancy.Vault
		name string
	}{{short, "a"}, {short, "recovered"}, {short, "redeleted"}, {other, "c"}} {
		if _, err := f.svc.Delete(f.ctx, d.v, f.base, d.name); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.Advance(2 * day)
	if _, err := f.svc.Delete(f.ctx, short, f.base, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Recover(f.ctx, short, f.base, "recovered"); err != nil {
		t.Fatal(err)
	}
	// Recover then delete again: the first purge entry is stale, the second is the one.
	if _, err := f.svc.Recover(f.ctx, short, f.base, "redeleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Delete(f.ctx, short, f.base, "redeleted"); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		at   time.Duration // after t0
		want int
		gone []string
	}{
		{6 * day, 0, nil},
		{7 * day, 1, []string{"a"}},              // short: a
		{9 * day, 2, []string{"b", "redeleted"}}, // deleted on day 2
		{30 * day, 1, []string{"c"}},             // other tenant, 30 days
		{400 * day, 0, nil},
	}
	vaultOf := map[string]tenancy.Vault{"a": short, "b": short, "redeleted": short, "c": other}
	for _, st := range steps {
		n, err := f.svc.RunDue(f.ctx, t0.Add(st.at))
		if err != nil || n != st.want {
			t.Errorf("RunDue(t0+%v) = %d, %v; want %d", st.at, n, err, st.want)
		}
		for _, name := range st.gone {
			_, err := f.svc.GetDeleted(f.ctx, vaultOf[name], f.base, name)
			wantErr(t, fmt.Sprintf("GetDeleted(%s) after RunDue(t0+%v)", name, st.at), err, ErrSecretNotFound)
		}
	}
	for _, name := range []string{"a", "b", "redeleted"} {
		_, err := f.svc.GetDeleted(f.ctx, short, f.base, name)
		wantErr(t, "GetDeleted("+name+") after RunDue", err, ErrSecretNotFound)
		// Purged names are free again.
		f.setIn(short, name, SetParams{Value: val("again")})
	}
	for _, name := range []string{"recovered", "live"} {
		if _, err := f.svc.Get(f.ctx, short, f.base, name, ""); err != nil {
			t.Errorf("Get(%s) after RunDue = %v", name, err)
		}
	}
	for k := range f.dump() {
		if strings.HasPrefix(k, schedulePrefix) {
			t.Errorf("schedule entry left: %s", k)
		}
	}
}

func TestRunDueDropsDamagedEntries(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{
		purgePrefix + "garbage",
		purgePrefix + fmt.Sprintf("%020d/x/vaults/y/z", 5),
	} {
		if err := f.store.Put(f.ctx, k, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.Put(f.ctx, purgePrefix+fmt.Sprintf("%020d/a/vaults/b/c", 6), []byte(`{"tenantId":"../..","vault":"b","name":"c"}`)); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.RunDue(f.ctx, t0); err != nil || n != 0 {
		t.Errorf("RunDue over damaged entries = %d, %v; want 0, nil", n, err)
	}
	for k := range f.dump() {
		t.Errorf("damaged entry left: %s", k)
	}
}

func TestListDeleted(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("gone-%02d", i)
		f.setIn(f.v, name, SetParams{Value: val("secret " + name), ContentType: "text/plain"})
		if _, err := f.svc.Delete(f.ctx, f.v, f.base, name); err != nil {
			t.Fatal(err)
		}
	}
	f.set("still-here", "x")
	items, pages := listAll(t, 25, func(o ListOptions) (Page[DeletedSecretItem], error) {
		return f.svc.ListDeleted(f.ctx, f.v, f.base, o)
	})
	if len(items) != 30 || pages != 2 {
		t.Errorf("ListDeleted = %d items in %d pages; want 30 in 2", len(items), pages)
	}
	for _, it := range items {
		if !strings.HasPrefix(it.RecoveryID, f.base+"/deletedsecrets/gone-") || it.DeletedDate == nil || it.ScheduledPurgeDate == nil || it.ContentType != "text/plain" {
			t.Errorf("ListDeleted item = %s", mustJSON(t, it))
		}
	}
	if j := mustJSON(t, items); strings.Contains(j, "secret gone") {
		t.Error("ListDeleted items carry values")
	}
}
