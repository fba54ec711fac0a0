package keys

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

func TestRecoveryLevel(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention int
		pp        bool
		wantLevel string
		wantDays  int
	}{
		{"ok/default-90", 0, false, "Recoverable+Purgeable", 90},
		{"ok/90", 90, false, "Recoverable+Purgeable", 90},
		{"ok/90-protected", 90, true, "Recoverable", 90},
		{"ok/7", 7, false, "CustomizedRecoverable+Purgeable", 7},
		{"ok/30-protected", 30, true, "CustomizedRecoverable", 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			v := vault(tenantA, "rl", tt.retention, tt.pp)
			b := f.mustCreate(v, "k", ecKey)
			if b.Attributes.RecoveryLevel != tt.wantLevel || *b.Attributes.RecoverableDays != tt.wantDays {
				t.Errorf("recovery = %q/%d; want %q/%d", b.Attributes.RecoveryLevel, *b.Attributes.RecoverableDays, tt.wantLevel, tt.wantDays)
			}
		})
	}
}

func TestSoftDeleteRecover(t *testing.T) {
	f := newFixture(t)
	v := vault(tenantA, "sd", 30, false)
	first := f.mustCreate(v, "Life", ecKey)
	second := f.mustCreate(v, "life", ecKey)
	f.clk.Advance(time.Hour)
	now := f.clk.Now()

	del, err := f.svc.Delete(f.ctx, v, f.base, "LIFE")
	if err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if del.Key.KID != second.Key.KID || del.RecoveryID != f.base+"/deletedkeys/Life" ||
		*del.DeletedDate != now.Unix() || *del.ScheduledPurgeDate != now.AddDate(0, 0, 30).Unix() {
		t.Errorf("Delete = %s; want kid %s, recoveryId, deletedDate %d, scheduledPurgeDate +30d", mustJSON(t, del), second.Key.KID, now.Unix())
	}
	_, err = f.svc.Get(f.ctx, v, f.base, "life", "")
	wantErr(t, "Get(deleted)", err, ErrKeyNotFound)
	_, err = f.svc.Get(f.ctx, v, f.base, "life", versionOf(first.Key.KID))
	wantErr(t, "Get(deleted, old version)", err, ErrKeyNotFound)
	_, err = f.svc.Delete(f.ctx, v, f.base, "life")
	wantErr(t, "Delete(deleted)", err, ErrKeyNotFound)
	_, err = f.svc.Rotate(f.ctx, v, f.base, "life")
	wantErr(t, "Rotate(deleted)", err, ErrKeyNotFound)
	_, err = f.svc.Backup(f.ctx, v, "life")
	wantErr(t, "Backup(deleted)", err, ErrKeyNotFound)
	if page, _ := f.svc.List(f.ctx, v, f.base, ListOptions{}); len(page.Value) != 0 {
		t.Errorf("List after delete = %d items; want 0", len(page.Value))
	}

	got, err := f.svc.GetDeleted(f.ctx, v, f.base, "life")
	if err != nil || mustJSON(t, got) != mustJSON(t, del) {
		t.Errorf("GetDeleted = %s, %v; want %s", mustJSON(t, got), err, mustJSON(t, del))
	}
	list, err := f.svc.ListDeleted(f.ctx, v, f.base, ListOptions{})
	if err != nil || len(list.Value) != 1 || list.Value[0].KID != f.base+"/keys/Life" {
		t.Errorf("ListDeleted = %+v, %v; want Life", list.Value, err)
	}

	// The deleted name stays reserved.
	_, err = f.svc.Create(f.ctx, v, f.base, "LIFE", ecKey)
	wantErr(t, "Create(deleted name)", err, ErrDeletedButRecoverable)
	if err != nil && !strings.Contains(err.Error(), "deleted but recoverable") {
		t.Errorf("Create(deleted name) = %q; want Key Vault's wording", err)
	}
	_, err = f.svc.Import(f.ctx, v, f.base, "life", ImportParams{Key: &provider.JWK{Kty: provider.EC}})
	wantErr(t, "Import(deleted name)", err, ErrDeletedButRecoverable)

	rec, err := f.svc.Recover(f.ctx, v, f.base, "life")
	if err != nil || rec.Key.KID != second.Key.KID {
		t.Fatalf("Recover = %v, %v; want %s", rec.Key, err, second.Key.KID)
	}
	for _, kid := range []string{first.Key.KID, second.Key.KID} {
		if _, err := f.svc.Get(f.ctx, v, f.base, "life", versionOf(kid)); err != nil {
			t.Errorf("Get(%s) after Recover = %v", kid, err)
		}
	}
	_, err = f.svc.GetDeleted(f.ctx, v, f.base, "life")
	wantErr(t, "GetDeleted(recovered)", err, ErrKeyNotFound)
	_, err = f.svc.Recover(f.ctx, v, f.base, "life")
	wantErr(t, "Recover(live)", err, ErrKeyNotFound)
	err = f.svc.Purge(f.ctx, v, f.base, "life")
	wantErr(t, "Purge(live)", err, ErrKeyNotFound)
	if _, err := f.svc.Sign(f.ctx, v, f.base, "life", "", SignParams{Algorithm: provider.AlgES256, Value: digest("r")}); err != nil {
		t.Errorf("Sign after Recover = %v", err)
	}
	if list, _ := f.svc.ListDeleted(f.ctx, v, f.base, ListOptions{}); len(list.Value) != 0 {
		t.Errorf("ListDeleted after Recover = %d items; want 0", len(list.Value))
	}
}

func TestPurge(t *testing.T) {
	tests := []struct {
		name string
		v    tenancy.Vault
		// after is how long after the delete the user purges.
		after time.Duration
		want  error
	}{
		{"ok/no-protection", vault(tenantA, "p1", 7, false), 0, nil},
		{"fail/protection-before-date", vault(tenantA, "p2", 7, true), 7*24*time.Hour - time.Second, ErrPurgeProtected},
		{"ok/protection-after-date", vault(tenantA, "p3", 7, true), 7 * 24 * time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a := f.mustCreate(tt.v, "doomed", ecKey)
			b := f.mustCreate(tt.v, "doomed", ecKey)
			if _, err := f.svc.Delete(f.ctx, tt.v, f.base, "doomed"); err != nil {
				t.Fatal(err)
			}
			f.clk.Advance(tt.after)
			err := f.svc.Purge(f.ctx, tt.v, f.base, "Doomed")
			wantErr(t, "Purge", err, tt.want)
			if tt.want != nil {
				if !strings.Contains(err.Error(), `Operation "purge" is not allowed because purge protection is enabled`) {
					t.Errorf("Purge = %q; want Key Vault's wording", err)
				}
				if _, err := f.svc.GetDeleted(f.ctx, tt.v, f.base, "doomed"); err != nil {
					t.Errorf("GetDeleted after a refused purge = %v; want the key still recoverable", err)
				}
				if f.prov.destroyedCount() != 0 {
					t.Errorf("a refused purge destroyed %d handles", f.prov.destroyedCount())
				}
				return
			}
			if f.prov.destroyedCount() != 2 {
				t.Errorf("Purge destroyed %d handles; want 2 (one per version)", f.prov.destroyedCount())
			}
			_, err = f.svc.GetDeleted(f.ctx, tt.v, f.base, "doomed")
			wantErr(t, "GetDeleted(purged)", err, ErrKeyNotFound)
			for _, kid := range []string{a.Key.KID, b.Key.KID} {
				_, err := f.svc.Get(f.ctx, tt.v, f.base, "doomed", versionOf(kid))
				wantErr(t, "Get(purged version)", err, ErrKeyNotFound)
			}
			// No record or index entry of the key is left in storage.
			page, err := f.store.List(f.ctx, "", storageAll)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page.Keys {
				if strings.Contains(k, "doomed") {
					t.Errorf("record %s survived the purge", k)
				}
			}
			// The name is free again.
			c := f.mustCreate(tt.v, "doomed", ecKey)
			if bytes.Equal([]byte(c.Key.X), []byte(a.Key.X)) {
				t.Errorf("a new key after purge has the purged key's material")
			}
		})
	}
}
