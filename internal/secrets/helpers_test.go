package secrets

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/records/recordstest"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

const (
	tenantA = "11111111-1111-4111-8111-111111111111"
	tenantB = "22222222-2222-4222-8222-222222222222"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock = recordstest.Clock

// wantErr checks that err wraps want (nil: no error); mustJSON marshals v.
var wantErr, mustJSON = recordstest.WantErr, recordstest.MustJSON

// fixture is a Service over a fresh mem store and a fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	svc   *Service
	store *mem.Backend
	clk   *fakeClock
	bkey  []byte
	v     tenancy.Vault
	base  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		t:     t,
		ctx:   context.Background(),
		store: mem.New(),
		clk:   recordstest.NewClock(t0),
		bkey:  randomKey(t),
		v:     vault(tenantA, "vault1", 90, false),
		base:  "https://vault1.coffer.test:8443",
	}
	f.svc = NewService(f.store, f.clk.Now, f.bkey)
	return f
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func vault(tenant, name string, retention int, purgeProtection bool) tenancy.Vault {
	return tenancy.Vault{TenantID: tenant, Name: name, Kind: tenancy.KindVault, SoftDeleteRetention: retention, PurgeProtection: purgeProtection}
}

func ptr[T any](v T) *T { return &v }

// val returns a *Value.
func val(s string) *Value { v := Value(s); return &v }

// set stores a secret in the fixture's vault or fails the test.
func (f *fixture) set(name, value string) SecretBundle {
	f.t.Helper()
	return f.setIn(f.v, name, SetParams{Value: val(value)})
}

func (f *fixture) setIn(v tenancy.Vault, name string, p SetParams) SecretBundle {
	f.t.Helper()
	b, err := f.svc.Set(f.ctx, v, f.base, name, p)
	if err != nil {
		f.t.Fatalf("Set(%q) = %v", name, err)
	}
	return b
}

// versionOf returns the version at the end of an id.
func versionOf(id string) string {
	i := strings.LastIndex(id, "/")
	return id[i+1:]
}

// dump returns every key and value of the store.
func (f *fixture) dump() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	opts := storage.ListOptions{}
	for {
		page, err := f.store.List(f.ctx, "", opts)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, k := range page.Keys {
			b, err := f.store.Get(f.ctx, k)
			if err != nil {
				f.t.Fatal(err)
			}
			out[k] = string(b)
		}
		if page.Next == "" {
			return out
		}
		opts.After = page.Next
	}
}

// listAll pages through a listing with page size n and returns every item and the number of
// pages.
func listAll[T any](t *testing.T, n int, page func(ListOptions) (Page[T], error)) ([]T, int) {
	t.Helper()
	var all []T
	opts := ListOptions{MaxResults: n}
	for pages := 1; ; pages++ {
		p, err := page(opts)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(p.Value) > n {
			t.Fatalf("page %d has %d items; want at most %d", pages, len(p.Value), n)
		}
		all = append(all, p.Value...)
		if p.NextToken == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		opts.SkipToken = p.NextToken
	}
}
