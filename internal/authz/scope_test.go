package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	long := strings.Repeat("a", 127)
	tests := []struct {
		name   string
		in     string
		want   string // canonical form
		tenant string
	}{
		{"ok/platform", "/", "/", ""},
		{"ok/tenant", "/tenants/t1", "/tenants/t1", "t1"},
		{"ok/tenant-uuid", "/tenants/72f988bf-86f1-41af-91ab-2d7cd011db47", "/tenants/72f988bf-86f1-41af-91ab-2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{"ok/tenant-case-kept", "/tenants/Acme", "/tenants/Acme", "Acme"},
		{"ok/vault", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v1", "t1"},
		{"ok/vault-lowered", "/tenants/T1/vaults/MyVault", "/tenants/T1/vaults/myvault", "T1"},
		{"ok/key", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1/keys/k1", "t1"},
		{"ok/secret", "/tenants/t1/vaults/v1/secrets/db-password", "/tenants/t1/vaults/v1/secrets/db-password", "t1"},
		{"ok/certificate", "/tenants/t1/vaults/v1/certificates/Web-Cert", "/tenants/t1/vaults/v1/certificates/web-cert", "t1"},
		{"ok/hsm", "/tenants/t1/managedHsms/h1", "/tenants/t1/managedHsms/h1", "t1"},
		{"ok/hsm-key", "/tenants/t1/managedHsms/h1/keys/k1", "/tenants/t1/managedHsms/h1/keys/k1", "t1"},
		{"ok/name-127", "/tenants/t1/vaults/v1/keys/" + long, "/tenants/t1/vaults/v1/keys/" + long, "t1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err != nil {
				t.Fatalf("ParseScope(%q) = %v; want nil", tt.in, err)
			}
			if got.String() != tt.want || got.Tenant() != tt.tenant || !got.IsValid() {
				t.Errorf("ParseScope(%q) = %q (tenant %q, valid %v); want %q (tenant %q)", tt.in, got, got.Tenant(), got.IsValid(), tt.want, tt.tenant)
			}
		})
	}
}

func TestParseScopeInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"fail/empty", ""},
		{"fail/relative", "tenants/t1"},
		{"fail/double-slash", "//"},
		{"fail/trailing-slash", "/tenants/t1/"},
		{"fail/empty-segment", "/tenants//vaults/v1"},
		{"fail/no-tenant-id", "/tenants"},
		{"fail/unknown-root", "/subscriptions/s1"},
		{"fail/root-case", "/Tenants/t1"},
		{"fail/unknown-container", "/tenants/t1/buckets/b1"},
		{"fail/container-case", "/tenants/t1/managedhsms/h1"},
		{"fail/container-without-name", "/tenants/t1/vaults"},
		{"fail/collection-without-name", "/tenants/t1/vaults/v1/keys"},
		{"fail/unknown-collection", "/tenants/t1/vaults/v1/storage/s1"},
		{"fail/hsm-secret", "/tenants/t1/managedHsms/h1/secrets/s1"},
		{"fail/too-deep", "/tenants/t1/vaults/v1/keys/k1/versions"},
		{"fail/key-version", "/tenants/t1/vaults/v1/keys/k1/abc/def"},
		{"fail/dot", "/tenants/t1/vaults/./keys/k1"},
		{"fail/dotdot", "/tenants/t1/vaults/v1/keys/../../../t2"},
		{"fail/underscore", "/tenants/t1/vaults/my_vault"},
		{"fail/space", "/tenants/t1/vaults/my vault"},
		{"fail/percent", "/tenants/t1/vaults/v%2F1"},
		{"fail/unicode", "/tenants/t1/vaults/vä"},
		{"fail/nul", "/tenants/t1\x00/vaults/v1"},
		{"fail/tenant-bad-char", "/tenants/t1;t2"},
		{"fail/name-128", "/tenants/t1/vaults/v1/keys/" + strings.Repeat("a", 128)},
		{"fail/tenant-128", "/tenants/" + strings.Repeat("a", 128)},
		{"fail/huge", "/tenants/" + strings.Repeat("a/", 1000)},
		{"fail/query", "/tenants/t1?x=1"},
		{"fail/backslash", "/tenants/t1\\vaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if !errors.Is(err, ErrInvalidScope) {
				t.Errorf("ParseScope(%q) = %q, %v; want ErrInvalidScope", tt.in, got, err)
			}
			if got.IsValid() {
				t.Errorf("ParseScope(%q) returned a valid Scope with an error", tt.in)
			}
		})
	}
}

func TestScopeContains(t *testing.T) {
	tests := []struct {
		name         string
		outer, inner string
		want         bool
	}{
		{"ok/platform-contains-platform", "/", "/", true},
		{"ok/platform-contains-tenant", "/", "/tenants/t1", true},
		{"ok/platform-contains-key", "/", "/tenants/t1/vaults/v1/keys/k1", true},
		{"ok/tenant-contains-itself", "/tenants/t1", "/tenants/t1", true},
		{"ok/tenant-contains-vault", "/tenants/t1", "/tenants/t1/vaults/v1", true},
		{"ok/tenant-contains-hsm-key", "/tenants/t1", "/tenants/t1/managedHsms/h1/keys/k1", true},
		{"ok/vault-contains-key", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v1/keys/k1", true},
		{"ok/vault-contains-secret", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v1/secrets/s1", true},
		{"ok/vault-case-insensitive", "/tenants/t1/vaults/V1", "/tenants/t1/vaults/v1/keys/K1", true},
		{"ok/key-contains-itself", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1/keys/k1", true},
		{"ok/hsm-contains-key", "/tenants/t1/managedHsms/h1", "/tenants/t1/managedHsms/h1/keys/k1", true},

		{"fail/tenant-not-platform", "/tenants/t1", "/", false},
		{"fail/tenant-prefix", "/tenants/a", "/tenants/ab", false},
		{"fail/tenant-prefix-deep", "/tenants/a", "/tenants/ab/vaults/v1", false},
		{"fail/other-tenant", "/tenants/t1", "/tenants/t2/vaults/v1", false},
		{"fail/tenant-case-sensitive", "/tenants/acme", "/tenants/Acme/vaults/v1", false},
		{"fail/same-vault-other-tenant", "/tenants/t1/vaults/v1", "/tenants/t2/vaults/v1", false},
		{"fail/vault-prefix", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v10", false},
		{"fail/vault-not-tenant", "/tenants/t1/vaults/v1", "/tenants/t1", false},
		{"fail/vault-not-hsm-same-name", "/tenants/t1/vaults/x", "/tenants/t1/managedHsms/x", false},
		{"fail/vault-not-hsm-key-same-name", "/tenants/t1/vaults/x", "/tenants/t1/managedHsms/x/keys/k1", false},
		{"fail/hsm-not-vault-same-name", "/tenants/t1/managedHsms/x", "/tenants/t1/vaults/x/keys/k1", false},
		{"fail/key-not-vault", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1", false},
		{"fail/key-not-sibling", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1/keys/k2", false},
		{"fail/key-prefix", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v1/keys/k10", false},
		{"fail/key-not-secret-same-name", "/tenants/t1/vaults/v1/keys/x", "/tenants/t1/vaults/v1/secrets/x", false},
		{"fail/key-other-vault", "/tenants/t1/vaults/v1/keys/k1", "/tenants/t1/vaults/v2/keys/k1", false},
		{"fail/vault-key-not-hsm-key", "/tenants/t1/vaults/x/keys/k1", "/tenants/t1/managedHsms/x/keys/k1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer, inner := mustScope(t, tt.outer), mustScope(t, tt.inner)
			if got := outer.Contains(inner); got != tt.want {
				t.Errorf("%q.Contains(%q) = %v; want %v", tt.outer, tt.inner, got, tt.want)
			}
		})
	}
	var zero Scope
	if zero.Contains(zero) || PlatformScope().Contains(zero) || zero.Contains(PlatformScope()) {
		t.Errorf("the zero Scope contains or is contained; want neither")
	}
}

func TestScopeAccessors(t *testing.T) {
	s := mustScope(t, "/tenants/t1/vaults/V1/certificates/C1")
	if c, n := s.Object(); s.Vault() != "v1" || s.ManagedHSM() != "" || c != CollectionCertificates || n != "c1" {
		t.Errorf("accessors of %q = vault %q, hsm %q, object %q/%q; want v1, \"\", certificates/c1", s, s.Vault(), s.ManagedHSM(), c, n)
	}
	h := mustScope(t, "/tenants/t1/managedHsms/H1/keys/k1")
	if h.ManagedHSM() != "h1" || h.Vault() != "" {
		t.Errorf("accessors of %q = hsm %q, vault %q; want h1, \"\"", h, h.ManagedHSM(), h.Vault())
	}
	if !PlatformScope().IsPlatform() || s.IsPlatform() {
		t.Errorf("IsPlatform is wrong")
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"/", "/tenants/t1", "/tenants/t1/vaults/v1", "/tenants/t1/vaults/v1/keys/k1",
		"/tenants/t1/vaults/v1/secrets/s", "/tenants/t1/vaults/V/certificates/C",
		"/tenants/t1/managedHsms/h1", "/tenants/t1/managedHsms/h1/keys/k1",
		"/tenants//", "/tenants/a/../b", "", "//", "/tenants/t1/vaults/v1/keys/k1/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseScope(in)
		if err != nil {
			if s.IsValid() {
				t.Fatalf("ParseScope(%q) returned a valid Scope with error %v", in, err)
			}
			return
		}
		// The canonical form parses to the same Scope, and round-trips.
		again, err := ParseScope(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseScope(%q) = %q, but reparsing it gives %q, %v", in, s, again, err)
		}
		if !strings.EqualFold(in, s.String()) {
			t.Fatalf("ParseScope(%q) = %q: canonical form differs beyond case", in, s)
		}
		if !s.Contains(s) || !PlatformScope().Contains(s) {
			t.Fatalf("%q does not contain itself or is not contained by /", s)
		}
		if !s.IsPlatform() {
			ts := mustScope(t, "/tenants/"+s.Tenant())
			if !ts.Contains(s) {
				t.Fatalf("tenant scope %q does not contain %q", ts, s)
			}
			if s != ts && s.Contains(ts) {
				t.Fatalf("%q contains its tenant %q", s, ts)
			}
			ot := s.Tenant()
			if len(ot) < maxNameLen {
				ot += "x"
			} else if ot[len(ot)-1] != 'x' {
				ot = ot[:len(ot)-1] + "x"
			} else {
				ot = ot[:len(ot)-1] + "y"
			}
			other := mustScope(t, "/tenants/"+ot)
			if other.Contains(s) || s.Contains(other) {
				t.Fatalf("%q and %q (another tenant) contain one another", s, other)
			}
		}
	})
}
