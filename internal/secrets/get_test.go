package secrets

import (
	"fmt"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	f := newFixture(t)
	b := f.set("db-password", "s3cret")
	ver := versionOf(b.ID)
	future, past := t0.Unix()+3600, t0.Unix()-3600
	f.setIn(f.v, "disabled", SetParams{Value: val("x"), Attributes: &SecretAttributes{Enabled: ptr(false)}})
	f.setIn(f.v, "not-yet", SetParams{Value: val("early"), Attributes: &SecretAttributes{NotBefore: &future}})
	f.setIn(f.v, "expired", SetParams{Value: val("late"), Attributes: &SecretAttributes{Expires: &past}})
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "db-password"); err != nil {
		t.Fatal(err)
	}
	f.set("live", "v")
	tests := []struct {
		name, secret, version string
		want                  error
		value                 string
	}{
		{"ok/latest", "live", "", nil, "v"},
		{"ok/upper-case-name", "LIVE", "", nil, "v"},
		// Key Vault: "A secret's get operation will work for not-yet-valid and expired
		// secrets, outside the nbf / exp window" (about-secrets.md).
		{"ok/not-yet-valid", "not-yet", "", nil, "early"},
		{"ok/expired", "expired", "", nil, "late"},
		{"fail/disabled", "disabled", "", ErrSecretDisabled, ""},
		{"fail/deleted", "db-password", "", ErrSecretNotFound, ""},
		{"fail/deleted-version", "db-password", ver, ErrSecretNotFound, ""},
		{"fail/unknown-name", "nope", "", ErrSecretNotFound, ""},
		{"fail/unknown-version", "live", strings.Repeat("0", 32), ErrSecretNotFound, ""},
		{"fail/bad-version", "live", "xyz", ErrBadParameter, ""},
		{"fail/bad-version-33", "live", strings.Repeat("a", 33), ErrBadParameter, ""},
		{"fail/bad-name", "a_b", "", ErrBadParameter, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.svc.Get(f.ctx, f.v, f.base, tt.secret, tt.version)
			wantErr(t, fmt.Sprintf("Get(%q, %q)", tt.secret, tt.version), err, tt.want)
			if tt.want == nil && err == nil && (got.Value == nil || string(*got.Value) != tt.value) {
				t.Errorf("Get(%q) returned another value", tt.secret)
			}
		})
	}
	_, err := f.svc.Get(f.ctx, f.v, f.base, "disabled", "")
	if err == nil || err.Error() != "Operation get is not allowed on a disabled secret." {
		t.Errorf("Get(disabled) message = %v; want Key Vault's", err)
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name  string
		set   SetParams
		old   bool // update the first version after a second was set
		p     UpdateParams
		want  error
		check func(t *testing.T, b SecretBundle)
	}{
		{"ok/disable", SetParams{}, false, UpdateParams{Attributes: &SecretAttributes{Enabled: ptr(false)}}, nil, func(t *testing.T, b SecretBundle) {
			if *b.Attributes.Enabled {
				t.Errorf("Enabled = true; want false")
			}
		}},
		{"ok/window", SetParams{}, false, UpdateParams{Attributes: &SecretAttributes{NotBefore: ptr(int64(10)), Expires: ptr(int64(20))}}, nil, func(t *testing.T, b SecretBundle) {
			if *b.Attributes.NotBefore != 10 || *b.Attributes.Expires != 20 {
				t.Errorf("nbf/exp = %d/%d; want 10/20", *b.Attributes.NotBefore, *b.Attributes.Expires)
			}
		}},
		{"ok/content-type", SetParams{ContentType: "text/plain"}, false, UpdateParams{ContentType: ptr("application/json")}, nil, func(t *testing.T, b SecretBundle) {
			if b.ContentType != "application/json" {
				t.Errorf("ContentType = %q; want application/json", b.ContentType)
			}
		}},
		{"ok/content-type-kept-when-nil", SetParams{ContentType: "text/plain"}, false, UpdateParams{Tags: map[string]string{"a": "b"}}, nil, func(t *testing.T, b SecretBundle) {
			if b.ContentType != "text/plain" {
				t.Errorf("ContentType = %q; want text/plain kept", b.ContentType)
			}
		}},
		{"ok/tags-replaced", SetParams{Tags: map[string]string{"a": "1"}}, false, UpdateParams{Tags: map[string]string{"b": "2"}}, nil, func(t *testing.T, b SecretBundle) {
			if len(b.Tags) != 1 || b.Tags["b"] != "2" {
				t.Errorf("Tags = %v; want only b=2", b.Tags)
			}
		}},
		{"ok/tags-cleared", SetParams{Tags: map[string]string{"a": "1"}}, false, UpdateParams{Tags: map[string]string{}}, nil, func(t *testing.T, b SecretBundle) {
			if len(b.Tags) != 0 {
				t.Errorf("Tags = %v; want none", b.Tags)
			}
		}},
		{"ok/tags-kept-when-nil", SetParams{Tags: map[string]string{"a": "1"}}, false, UpdateParams{Attributes: &SecretAttributes{}}, nil, func(t *testing.T, b SecretBundle) {
			if b.Tags["a"] != "1" {
				t.Errorf("Tags = %v; want a=1 kept", b.Tags)
			}
		}},
		{"ok/old-version", SetParams{}, true, UpdateParams{Attributes: &SecretAttributes{Enabled: ptr(false)}}, nil, func(t *testing.T, b SecretBundle) {
			if *b.Attributes.Enabled {
				t.Errorf("Enabled = true; want false")
			}
		}},
		{"ok/read-only-attributes-ignored", SetParams{}, false, UpdateParams{Attributes: &SecretAttributes{Created: ptr(int64(1)), RecoveryLevel: "Purgeable"}}, nil, func(t *testing.T, b SecretBundle) {
			if *b.Attributes.Created != t0.Unix() || b.Attributes.RecoveryLevel != "Recoverable+Purgeable" {
				t.Errorf("Attributes = %s; want read-only fields unchanged", mustJSON(t, b.Attributes))
			}
		}},
		{"fail/exp-before-nbf", SetParams{}, false, UpdateParams{Attributes: &SecretAttributes{NotBefore: ptr(int64(20)), Expires: ptr(int64(10))}}, ErrBadParameter, nil},
		{"fail/exp-before-existing-nbf", SetParams{Attributes: &SecretAttributes{NotBefore: ptr(int64(20))}}, false, UpdateParams{Attributes: &SecretAttributes{Expires: ptr(int64(10))}}, ErrBadParameter, nil},
		{"fail/content-type-256", SetParams{}, false, UpdateParams{ContentType: ptr(strings.Repeat("c", 256))}, ErrBadParameter, nil},
		{"fail/16-tags", SetParams{}, false, UpdateParams{Tags: manyTags(16)}, ErrBadParameter, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := tt.set
			p.Value = val("the value")
			first := f.setIn(f.v, "s", p)
			if tt.old {
				f.set("s", "newer")
			}
			f.clk.Advance(60e9)
			b, err := f.svc.Update(f.ctx, f.v, f.base, "S", versionOf(first.ID), tt.p)
			wantErr(t, "Update", err, tt.want)
			if err != nil {
				return
			}
			if b.Value != nil {
				t.Errorf("Update returned the value; want none")
			}
			if b.ID != first.ID || *b.Attributes.Updated != t0.Unix()+60 {
				t.Errorf("Update() id/updated = %s/%d; want %s/%d", b.ID, *b.Attributes.Updated, first.ID, t0.Unix()+60)
			}
			tt.check(t, b)
			if !tt.old {
				if _, err := f.svc.Get(f.ctx, f.v, f.base, "s", ""); err != nil && *b.Attributes.Enabled {
					t.Errorf("Get after Update = %v", err)
				}
			}
		})
	}
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("t%d", i)] = "v"
	}
	return m
}

func TestUpdateLatestAndReEnable(t *testing.T) {
	f := newFixture(t)
	f.set("s", "one")
	if _, err := f.svc.Update(f.ctx, f.v, f.base, "s", "", UpdateParams{Attributes: &SecretAttributes{Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Get(f.ctx, f.v, f.base, "s", "")
	wantErr(t, "Get(disabled)", err, ErrSecretDisabled)
	if _, err := f.svc.Update(f.ctx, f.v, f.base, "s", "", UpdateParams{Attributes: &SecretAttributes{Enabled: ptr(true)}}); err != nil {
		t.Fatalf("Update(re-enable) = %v", err)
	}
	if b, err := f.svc.Get(f.ctx, f.v, f.base, "s", ""); err != nil || string(*b.Value) != "one" {
		t.Errorf("Get after re-enable = %v", err)
	}
	_, err = f.svc.Update(f.ctx, f.v, f.base, "nope", "", UpdateParams{})
	wantErr(t, "Update(unknown)", err, ErrSecretNotFound)
	_, err = f.svc.Update(f.ctx, f.v, f.base, "s", strings.Repeat("0", 32), UpdateParams{})
	wantErr(t, "Update(unknown version)", err, ErrSecretNotFound)
	_, err = f.svc.Update(f.ctx, f.v, f.base, "s", "zz", UpdateParams{})
	wantErr(t, "Update(bad version)", err, ErrBadParameter)
}

func TestList(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 60; i++ {
		f.setIn(f.v, fmt.Sprintf("Secret-%02d", i), SetParams{Value: val(fmt.Sprintf("value-%02d", i)), ContentType: "text/plain", Tags: map[string]string{"i": fmt.Sprint(i)}})
	}
	// A second version is still one listing entry.
	f.setIn(f.v, "secret-00", SetParams{Value: val("second version"), ContentType: "text/plain", Tags: map[string]string{"i": "0"}})
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "secret-59"); err != nil {
		t.Fatal(err)
	}
	page := func(o ListOptions) (Page[SecretItem], error) { return f.svc.List(f.ctx, f.v, f.base, o) }
	for _, n := range []int{25, 7, 1} {
		items, pages := listAll(t, n, page)
		if len(items) != 59 || pages != (59+n-1)/n {
			t.Errorf("List(maxresults=%d) = %d items in %d pages; want 59 items in %d pages", n, len(items), pages, (59+n-1)/n)
		}
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it.ID] {
				t.Errorf("List(maxresults=%d) repeats %s", n, it.ID)
			}
			seen[it.ID] = true
			if strings.Count(strings.TrimPrefix(it.ID, f.base+"/secrets/"), "/") != 0 {
				t.Errorf("List item id %q has a version; want none", it.ID)
			}
			if it.ContentType != "text/plain" || it.Attributes.Enabled == nil || it.Tags["i"] == "" {
				t.Errorf("List item = %s; want content type, attributes and tags", mustJSON(t, it))
			}
		}
		if seen[f.base+"/secrets/Secret-59"] {
			t.Error("List shows the deleted secret")
		}
		if j := mustJSON(t, items); strings.Contains(j, "value-") || strings.Contains(j, "second version") || strings.Contains(j, `"value"`) {
			t.Errorf("List items carry values: %.200s", j)
		}
	}
	p, err := f.svc.List(f.ctx, f.v, f.base, ListOptions{})
	if err != nil || len(p.Value) != 25 || p.NextToken == "" {
		t.Errorf("List(default) = %d items, token %q, %v; want 25 and a next token", len(p.Value), p.NextToken, err)
	}
	for _, o := range []ListOptions{{MaxResults: 26}, {MaxResults: -1}, {SkipToken: "UPPER"}, {SkipToken: "../x"}, {SkipToken: strings.Repeat("a", 128)}} {
		_, err := f.svc.List(f.ctx, f.v, f.base, o)
		wantErr(t, fmt.Sprintf("List(%+v)", o), err, ErrBadParameter)
	}
	empty, err := f.svc.List(f.ctx, vault(tenantA, "empty", 90, false), f.base, ListOptions{})
	if err != nil || len(empty.Value) != 0 || empty.NextToken != "" {
		t.Errorf("List(empty vault) = %+v, %v", empty, err)
	}
}

func TestListVersions(t *testing.T) {
	f := newFixture(t)
	want := map[string]bool{}
	for i := 0; i < 30; i++ {
		b := f.set("rotating", fmt.Sprintf("value %d", i))
		want[b.ID] = true
	}
	f.set("other", "x")
	items, pages := listAll(t, 10, func(o ListOptions) (Page[SecretItem], error) {
		return f.svc.ListVersions(f.ctx, f.v, f.base, "Rotating", o)
	})
	if len(items) != 30 || pages < 3 {
		t.Errorf("ListVersions = %d items in %d pages; want 30 in ≥ 3", len(items), pages)
	}
	for _, it := range items {
		if !want[it.ID] {
			t.Errorf("ListVersions returned %s, not a version of rotating", it.ID)
		}
		delete(want, it.ID)
	}
	if j := mustJSON(t, items); strings.Contains(j, "value ") {
		t.Errorf("ListVersions items carry values")
	}
	_, err := f.svc.ListVersions(f.ctx, f.v, f.base, "nope", ListOptions{})
	wantErr(t, "ListVersions(unknown)", err, ErrSecretNotFound)
	_, err = f.svc.ListVersions(f.ctx, f.v, f.base, "rotating", ListOptions{SkipToken: "not-a-version"})
	wantErr(t, "ListVersions(bad token)", err, ErrBadParameter)
	if _, err := f.svc.Delete(f.ctx, f.v, f.base, "rotating"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.ListVersions(f.ctx, f.v, f.base, "rotating", ListOptions{})
	wantErr(t, "ListVersions(deleted)", err, ErrSecretNotFound)
}
