package secrets

import (
	"regexp"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/tenancy"

	"github.com/coffer-kms/coffer/internal/attrs"
)

func TestSet(t *testing.T) {
	tags15 := map[string]string{}
	for i := 0; i < 15; i++ {
		tags15[strings.Repeat("t", i+1)] = "v"
	}
	tags16 := map[string]string{"x": "y"}
	for k, v := range tags15 {
		tags16[k] = v
	}
	tests := []struct {
		name   string
		secret string
		p      SetParams
		want   error
	}{
		{"ok/plain", "s1", SetParams{Value: val("hunter2")}, nil},
		{"ok/empty-value", "s1", SetParams{Value: val("")}, nil},
		{"ok/max-value", "s1", SetParams{Value: val(strings.Repeat("a", MaxValueBytes))}, nil},
		{"ok/max-value-multibyte", "s1", SetParams{Value: val(strings.Repeat("é", MaxValueBytes/2))}, nil},
		{"ok/content-type-255", "s1", SetParams{Value: val("v"), ContentType: strings.Repeat("c", 255)}, nil},
		{"ok/15-tags", "s1", SetParams{Value: val("v"), Tags: tags15}, nil},
		{"ok/tag-value-256", "s1", SetParams{Value: val("v"), Tags: map[string]string{"a": strings.Repeat("v", 256)}}, nil},
		{"ok/attributes", "s1", SetParams{Value: val("v"), Attributes: &SecretAttributes{Enabled: ptr(false), NotBefore: ptr(int64(100)), Expires: ptr(int64(200))}}, nil},
		{"ok/name-127", strings.Repeat("a", 127), SetParams{Value: val("v")}, nil},
		{"ok/name-dashes-digits", "0-A-z-9", SetParams{Value: val("v")}, nil},
		{"fail/value-missing", "s1", SetParams{}, ErrBadParameter},
		{"fail/value-too-large", "s1", SetParams{Value: val(strings.Repeat("a", MaxValueBytes+1))}, ErrBadParameter},
		{"fail/value-too-large-multibyte", "s1", SetParams{Value: val(strings.Repeat("é", MaxValueBytes/2+1))}, ErrBadParameter},
		{"fail/value-26KiB", "s1", SetParams{Value: val(strings.Repeat("a", 26<<10))}, ErrBadParameter},
		{"fail/content-type-256", "s1", SetParams{Value: val("v"), ContentType: strings.Repeat("c", 256)}, ErrBadParameter},
		{"fail/content-type-control", "s1", SetParams{Value: val("v"), ContentType: "text/plain\r\nX-Evil: 1"}, ErrBadParameter},
		{"fail/16-tags", "s1", SetParams{Value: val("v"), Tags: tags16}, ErrBadParameter},
		{"fail/tag-value-257", "s1", SetParams{Value: val("v"), Tags: map[string]string{"a": strings.Repeat("v", 257)}}, ErrBadParameter},
		{"fail/tag-name-empty", "s1", SetParams{Value: val("v"), Tags: map[string]string{"": "v"}}, ErrBadParameter},
		{"fail/tag-name-513", "s1", SetParams{Value: val("v"), Tags: map[string]string{strings.Repeat("n", 513): "v"}}, ErrBadParameter},
		{"fail/exp-equals-nbf", "s1", SetParams{Value: val("v"), Attributes: &SecretAttributes{NotBefore: ptr(int64(100)), Expires: ptr(int64(100))}}, ErrBadParameter},
		{"fail/exp-before-nbf", "s1", SetParams{Value: val("v"), Attributes: &SecretAttributes{NotBefore: ptr(int64(200)), Expires: ptr(int64(100))}}, ErrBadParameter},
		{"fail/negative-nbf", "s1", SetParams{Value: val("v"), Attributes: &SecretAttributes{NotBefore: ptr(int64(-1))}}, ErrBadParameter},
		{"fail/exp-after-9999", "s1", SetParams{Value: val("v"), Attributes: &SecretAttributes{Expires: ptr(int64(attrs.MaxUnixTime + 1))}}, ErrBadParameter},
		{"fail/name-empty", "", SetParams{Value: val("v")}, ErrBadParameter},
		{"fail/name-128", strings.Repeat("a", 128), SetParams{Value: val("v")}, ErrBadParameter},
		{"fail/name-underscore", "a_b", SetParams{Value: val("v")}, ErrBadParameter},
		{"fail/name-dot", "a.b", SetParams{Value: val("v")}, ErrBadParameter},
		{"fail/name-slash", "a/b", SetParams{Value: val("v")}, ErrBadParameter},
		{"fail/name-unicode", "é", SetParams{Value: val("v")}, ErrBadParameter},
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			b, err := f.svc.Set(f.ctx, f.v, f.base, tt.secret, tt.p)
			wantErr(t, "Set", err, tt.want)
			if tt.want != nil {
				if _, err := f.svc.Get(f.ctx, f.v, f.base, "s1", ""); !isNotFound(err) {
					t.Errorf("Get after a refused Set = %v; want ErrSecretNotFound", err)
				}
				return
			}
			if err != nil {
				return
			}
			ver := versionOf(b.ID)
			if !hex32.MatchString(ver) || b.ID != f.base+"/secrets/"+tt.secret+"/"+ver {
				t.Errorf("Set().ID = %q; want %s/secrets/%s/<32 hex>", b.ID, f.base, tt.secret)
			}
			if b.Value == nil || string(*b.Value) != string(*tt.p.Value) {
				t.Errorf("Set() returned another value (%d bytes)", len(*tt.p.Value))
			}
			a := b.Attributes
			wantEnabled := tt.p.Attributes == nil || tt.p.Attributes.Enabled == nil || *tt.p.Attributes.Enabled
			if a.Enabled == nil || *a.Enabled != wantEnabled || *a.Created != t0.Unix() || *a.Updated != t0.Unix() {
				t.Errorf("Set().Attributes = %s; want enabled=%v created=updated=%d", mustJSON(t, a), wantEnabled, t0.Unix())
			}
			if *a.RecoverableDays != 90 || a.RecoveryLevel != "Recoverable+Purgeable" {
				t.Errorf("recoverableDays/recoveryLevel = %d/%q; want 90/Recoverable+Purgeable", *a.RecoverableDays, a.RecoveryLevel)
			}
			if b.ContentType != tt.p.ContentType || len(b.Tags) != len(tt.p.Tags) || b.Managed || b.KID != "" {
				t.Errorf("Set() = %s; want the content type and tags given, unmanaged", mustJSON(t, b))
			}
		})
	}
}

func TestSetNewVersions(t *testing.T) {
	f := newFixture(t)
	first := f.set("Greeting", "one")
	f.clk.Advance(10)
	second := f.set("GREETING", "two")
	if versionOf(first.ID) == versionOf(second.ID) {
		t.Fatalf("two Sets made the same version %s", versionOf(first.ID))
	}
	// The casing of the first version is kept for display.
	if !strings.Contains(second.ID, "/secrets/Greeting/") {
		t.Errorf("second version id = %q; want the display name Greeting", second.ID)
	}
	latest, err := f.svc.Get(f.ctx, f.v, f.base, "greeting", "")
	if err != nil || latest.ID != second.ID || string(*latest.Value) != "two" {
		t.Errorf("Get(latest) = %s, %v; want the second version", latest.ID, err)
	}
	old, err := f.svc.Get(f.ctx, f.v, f.base, "greeting", versionOf(first.ID))
	if err != nil || string(*old.Value) != "one" {
		t.Errorf("Get(first version) = %v; want value one", err)
	}
	// Versions are case-insensitive too.
	if _, err := f.svc.Get(f.ctx, f.v, f.base, "greeting", strings.ToUpper(versionOf(first.ID))); err != nil {
		t.Errorf("Get(upper-case version) = %v", err)
	}
}

func TestOnlyVaultsHoldSecrets(t *testing.T) {
	f := newFixture(t)
	hsm := tenancy.Vault{TenantID: tenantA, Name: "pool1", Kind: tenancy.KindManagedHSM}
	if _, err := f.svc.Set(f.ctx, hsm, f.base, "s1", SetParams{Value: val("v")}); err == nil {
		t.Fatal("Set in a managed HSM pool succeeded; want an error")
	}
	if _, err := f.svc.List(f.ctx, hsm, f.base, ListOptions{}); err == nil {
		t.Fatal("List in a managed HSM pool succeeded; want an error")
	}
	if _, err := f.svc.Set(f.ctx, tenancy.Vault{TenantID: "../x", Name: "v", Kind: tenancy.KindVault}, f.base, "s1", SetParams{Value: val("v")}); err == nil {
		t.Fatal("Set with an invalid tenant id succeeded")
	}
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	f.set("shared-name", "tenant A's value")
	other := vault(tenantB, "vault1", 90, false) // same vault name, another tenant
	if _, err := f.svc.Get(f.ctx, other, f.base, "shared-name", ""); !isNotFound(err) {
		t.Errorf("Get from tenant B = %v; want ErrSecretNotFound", err)
	}
	p, err := f.svc.List(f.ctx, other, f.base, ListOptions{})
	if err != nil || len(p.Value) != 0 {
		t.Errorf("List in tenant B = %d items, %v; want none", len(p.Value), err)
	}
	b := f.setIn(other, "shared-name", SetParams{Value: val("tenant B's value")})
	a, err := f.svc.Get(f.ctx, f.v, f.base, "shared-name", "")
	if err != nil || string(*a.Value) != "tenant A's value" || versionOf(a.ID) == versionOf(b.ID) {
		t.Errorf("tenant A's secret changed after tenant B set the same name: %v", err)
	}
}

func TestConcurrentSets(t *testing.T) {
	f := newFixture(t)
	const n = 20
	ids := make(chan string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			b, err := f.svc.Set(f.ctx, f.v, f.base, "hot", SetParams{Value: val("v")})
			ids <- b.ID
			errs <- err
		}()
	}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Set = %v", err)
		}
		seen[<-ids] = true
	}
	items, _ := listAll(t, 25, func(o ListOptions) (Page[SecretItem], error) {
		return f.svc.ListVersions(f.ctx, f.v, f.base, "hot", o)
	})
	if len(seen) != n || len(items) != n {
		t.Errorf("%d concurrent Sets made %d distinct versions, %d listed; want %d", n, len(seen), len(items), n)
	}
	latest, err := f.svc.Get(f.ctx, f.v, f.base, "hot", "")
	if err != nil || !seen[latest.ID] {
		t.Errorf("Get(latest) = %v; want one of the versions set", err)
	}
}
