package keys

import (
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

func TestUpdate(t *testing.T) {
	policy := &ReleasePolicy{Data: simPolicy("aa")}
	immutable := &ReleasePolicy{Immutable: true, Data: simPolicy("aa")}
	other := &ReleasePolicy{Data: simPolicy("bb")}
	tests := []struct {
		name   string
		create CreateParams
		old    bool // update the first version after a second was created
		p      UpdateParams
		want   error
		check  func(t *testing.T, b KeyBundle)
	}{
		{"ok/disable", ecKey, false, UpdateParams{Attributes: &KeyAttributes{Enabled: ptr(false)}}, nil, func(t *testing.T, b KeyBundle) {
			if *b.Attributes.Enabled {
				t.Errorf("Enabled = true; want false")
			}
		}},
		{"ok/window", ecKey, false, UpdateParams{Attributes: &KeyAttributes{NotBefore: ptr(int64(10)), Expires: ptr(int64(20))}}, nil, func(t *testing.T, b KeyBundle) {
			if *b.Attributes.NotBefore != 10 || *b.Attributes.Expires != 20 {
				t.Errorf("nbf/exp = %d/%d; want 10/20", *b.Attributes.NotBefore, *b.Attributes.Expires)
			}
		}},
		{"ok/tags-replaced", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}}, false, UpdateParams{Tags: map[string]string{"b": "2"}}, nil, func(t *testing.T, b KeyBundle) {
			if len(b.Tags) != 1 || b.Tags["b"] != "2" {
				t.Errorf("Tags = %v; want only b=2", b.Tags)
			}
		}},
		{"ok/tags-cleared", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}}, false, UpdateParams{Tags: map[string]string{}}, nil, func(t *testing.T, b KeyBundle) {
			if len(b.Tags) != 0 {
				t.Errorf("Tags = %v; want none", b.Tags)
			}
		}},
		{"ok/tags-kept-when-nil", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}}, false, UpdateParams{Attributes: &KeyAttributes{}}, nil, func(t *testing.T, b KeyBundle) {
			if b.Tags["a"] != "1" {
				t.Errorf("Tags = %v; want a=1 kept", b.Tags)
			}
		}},
		{"ok/key-ops", ecKey, false, UpdateParams{KeyOps: []string{"verify"}}, nil, func(t *testing.T, b KeyBundle) {
			if strings.Join(b.Key.KeyOps, ",") != "verify" {
				t.Errorf("KeyOps = %v; want [verify]", b.Key.KeyOps)
			}
		}},
		{"ok/old-version", ecKey, true, UpdateParams{Attributes: &KeyAttributes{Enabled: ptr(false)}}, nil, func(t *testing.T, b KeyBundle) {
			if *b.Attributes.Enabled {
				t.Errorf("Enabled = true; want false")
			}
		}},
		{"ok/policy-set", ecKey, false, UpdateParams{ReleasePolicy: policy}, nil, func(t *testing.T, b KeyBundle) {
			if b.ReleasePolicy == nil || string(b.ReleasePolicy.Data) != string(policy.Data) {
				t.Errorf("ReleasePolicy = %+v; want set", b.ReleasePolicy)
			}
		}},
		{"ok/immutable-policy-same", CreateParams{Kty: provider.EC, ReleasePolicy: immutable}, false, UpdateParams{ReleasePolicy: immutable}, nil, nil},
		{"fail/immutable-policy-changed", CreateParams{Kty: provider.EC, ReleasePolicy: immutable}, false, UpdateParams{ReleasePolicy: other}, ErrBadParameter, nil},
		{"fail/immutable-policy-reset", CreateParams{Kty: provider.EC, ReleasePolicy: immutable}, false, UpdateParams{ReleasePolicy: policy}, ErrBadParameter, nil},
		{"fail/exp-before-existing-nbf", CreateParams{Kty: provider.EC, Attributes: &KeyAttributes{NotBefore: ptr(int64(100))}}, false, UpdateParams{Attributes: &KeyAttributes{Expires: ptr(int64(50))}}, ErrBadParameter, nil},
		{"fail/exportable-switched-on", ecKey, false, UpdateParams{Attributes: &KeyAttributes{Exportable: ptr(true)}}, ErrBadParameter, nil},
		{"fail/unknown-op", ecKey, false, UpdateParams{KeyOps: []string{"fly"}}, ErrBadParameter, nil},
		{"fail/too-many-tags", ecKey, false, UpdateParams{Tags: func() map[string]string {
			m := map[string]string{}
			for i := 0; i < 16; i++ {
				m[fmt.Sprint(i)] = "v"
			}
			return m
		}()}, ErrBadParameter, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			name := fmt.Sprintf("upd%d", i)
			first := f.mustCreate(f.v, name, tt.create)
			version := ""
			if tt.old {
				f.mustCreate(f.v, name, ecKey)
				version = versionOf(first.Key.KID)
			}
			f.clk.Advance(90e9)
			b, err := f.svc.Update(f.ctx, f.v, f.base, name, version, tt.p)
			wantErr(t, "Update", err, tt.want)
			if err != nil {
				got, gerr := f.svc.Get(f.ctx, f.v, f.base, name, versionOf(first.Key.KID))
				if gerr != nil || mustJSON(t, got) != mustJSON(t, first) {
					t.Errorf("after a refused Update, Get = %s, %v; want unchanged %s", mustJSON(t, got), gerr, mustJSON(t, first))
				}
				return
			}
			if b.Key.KID != first.Key.KID {
				t.Errorf("Update().Key.KID = %q; want %q", b.Key.KID, first.Key.KID)
			}
			if *b.Attributes.Updated != t0.Unix()+90 || *b.Attributes.Created != t0.Unix() {
				t.Errorf("Update() created/updated = %d/%d; want %d/%d", *b.Attributes.Created, *b.Attributes.Updated, t0.Unix(), t0.Unix()+90)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
			got, err := f.svc.Get(f.ctx, f.v, f.base, name, versionOf(first.Key.KID))
			if err != nil || mustJSON(t, got) != mustJSON(t, b) {
				t.Errorf("Get after Update = %s, %v; want %s", mustJSON(t, got), err, mustJSON(t, b))
			}
		})
	}
	t.Run("fail/deleted-key", func(t *testing.T) {
		f := newFixture(t)
		f.mustCreate(f.v, "gone", ecKey)
		if _, err := f.svc.Delete(f.ctx, f.v, f.base, "gone"); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Update(f.ctx, f.v, f.base, "gone", "", UpdateParams{Attributes: &KeyAttributes{Enabled: ptr(false)}})
		wantErr(t, "Update(deleted)", err, ErrKeyNotFound)
	})
}

func TestListPaging(t *testing.T) {
	f := newFixture(t)
	const n = 60
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("Key-%02d", i)
		f.mustCreate(f.v, name, ecKey)
		want[f.base+"/keys/"+name] = true
	}
	// A deleted key and a key of another vault are not listed.
	f.mustCreate(f.v, "deleted-one", ecKey)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "deleted-one"); err != nil {
		t.Fatal(err)
	}
	f.mustCreate(vault(tenantA, "vault2", 90, false), "elsewhere", ecKey)

	seen := map[string]int{}
	token, pages := "", 0
	for {
		page, err := f.svc.List(f.ctx, f.v, f.base, ListOptions{MaxResults: 7, SkipToken: token})
		if err != nil {
			t.Fatalf("List(page %d) = %v", pages, err)
		}
		pages++
		if len(page.Value) > 7 {
			t.Errorf("List(page %d) has %d items; want at most 7", pages, len(page.Value))
		}
		for _, it := range page.Value {
			seen[it.KID]++
		}
		if page.NextToken == "" {
			break
		}
		if pages > n {
			t.Fatal("List does not terminate")
		}
		token = page.NextToken
	}
	if pages != 9 {
		t.Errorf("List took %d pages of 7 for %d keys; want 9", pages, n)
	}
	for kid := range want {
		if seen[kid] != 1 {
			t.Errorf("List returned %s %d times; want once", kid, seen[kid])
		}
	}
	if len(seen) != n {
		t.Errorf("List returned %d distinct keys; want %d", len(seen), n)
	}

	for _, tt := range []struct {
		name string
		opts ListOptions
	}{
		{"fail/maxresults-0-is-default-but-26-is-not", ListOptions{MaxResults: 26}},
		{"fail/maxresults-negative", ListOptions{MaxResults: -1}},
		{"fail/skiptoken-path", ListOptions{SkipToken: "../../tenants"}},
		{"fail/skiptoken-upper", ListOptions{SkipToken: "Key-01"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.List(f.ctx, f.v, f.base, tt.opts)
			wantErr(t, "List", err, ErrBadParameter)
		})
	}
	page, err := f.svc.List(f.ctx, f.v, f.base, ListOptions{})
	if err != nil || len(page.Value) != 25 || page.NextToken == "" {
		t.Errorf("List(default) = %d items, token %q, %v; want 25 and a token", len(page.Value), page.NextToken, err)
	}
}

func TestListVersionsAndDeletedPaging(t *testing.T) {
	f := newFixture(t)
	versions := map[string]bool{}
	for i := 0; i < 12; i++ {
		versions[f.mustCreate(f.v, "many", ecKey).Key.KID] = true
	}
	seen := map[string]int{}
	token := ""
	for {
		page, err := f.svc.ListVersions(f.ctx, f.v, f.base, "many", ListOptions{MaxResults: 5, SkipToken: token})
		if err != nil {
			t.Fatalf("ListVersions = %v", err)
		}
		for _, it := range page.Value {
			seen[it.KID]++
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	for kid := range versions {
		if seen[kid] != 1 {
			t.Errorf("ListVersions returned %s %d times; want once", kid, seen[kid])
		}
	}
	if len(seen) != len(versions) {
		t.Errorf("ListVersions returned %d versions; want %d", len(seen), len(versions))
	}
	_, err := f.svc.ListVersions(f.ctx, f.v, f.base, "many", ListOptions{SkipToken: "zz"})
	wantErr(t, "ListVersions(bad token)", err, ErrBadParameter)
	_, err = f.svc.ListVersions(f.ctx, f.v, f.base, "none", ListOptions{})
	wantErr(t, "ListVersions(unknown key)", err, ErrKeyNotFound)

	for i := 0; i < 11; i++ {
		name := fmt.Sprintf("del%d", i)
		f.mustCreate(f.v, name, ecKey)
		if _, err := f.svc.Delete(f.ctx, f.v, f.base, name); err != nil {
			t.Fatal(err)
		}
	}
	deleted := map[string]int{}
	token = ""
	for {
		page, err := f.svc.ListDeleted(f.ctx, f.v, f.base, ListOptions{MaxResults: 4, SkipToken: token})
		if err != nil {
			t.Fatalf("ListDeleted = %v", err)
		}
		for _, it := range page.Value {
			deleted[it.KID]++
			if it.RecoveryID != f.base+"/deletedkeys/"+strings.TrimPrefix(it.KID, f.base+"/keys/") || it.DeletedDate == nil || it.ScheduledPurgeDate == nil {
				t.Errorf("ListDeleted item %+v lacks its deletion information", it)
			}
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	if len(deleted) != 11 {
		t.Errorf("ListDeleted returned %d keys; want 11", len(deleted))
	}
	for kid, n := range deleted {
		if n != 1 {
			t.Errorf("ListDeleted returned %s %d times", kid, n)
		}
	}
}
