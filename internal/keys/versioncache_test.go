package keys

import (
	"reflect"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/records/recordstest"
)

// TestVersionCacheFollowsWrites: reads answered from the version cache see every update,
// and what a caller changes in a record it got never reaches the next reader.
func TestVersionCacheFollowsWrites(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "k", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}})
	sc, err := newScope(f.v, f.base)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second read is a cache hit
		_, ver, err := f.svc.resolve(f.ctx, sc, "k", "")
		if err != nil {
			t.Fatal(err)
		}
		if ver.Tags["a"] != "1" || len(ver.Handle) == 0 || ver.Public == nil {
			t.Fatalf("read %d: tags %v, handle of %d bytes, public key %v; want tag a=1, a handle and a public key", i, ver.Tags, len(ver.Handle), ver.Public != nil)
		}
		ver.Tags["a"] = "changed by a caller"
		ver.Handle[0] ^= 0xff
		ver.Public.X[0] ^= 0xff
	}
	if got, err := f.svc.Get(f.ctx, f.v, f.base, "k", ""); err != nil || got.Tags["a"] != "1" {
		t.Fatalf("Get after callers changed their copies = %v, %v; want tag a=1", got.Tags, err)
	}
	if _, err := f.svc.Sign(f.ctx, f.v, f.base, "k", "", SignParams{Algorithm: "ES256", Value: digest("m")}); err != nil {
		t.Fatalf("Sign after callers changed their copies = %v", err)
	}
	if _, err := f.svc.Update(f.ctx, f.v, f.base, "k", "", UpdateParams{Tags: map[string]string{"b": "2"}, Attributes: &KeyAttributes{Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(f.ctx, f.v, f.base, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tags["b"] != "2" || got.Tags["a"] != "" || *got.Attributes.Enabled {
		t.Errorf("Get after Update = tags %v, enabled %v; want only b=2, disabled", got.Tags, *got.Attributes.Enabled)
	}
}

// TestGetBundleSharesNothing: Get reads the cached records without copying them
// (resolveShared), so the bundle it renders must own all its memory: a caller that changes
// every part of one answer changes nothing in the next.
func TestGetBundleSharesNothing(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "k", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}})
	want, err := f.svc.Get(f.ctx, f.v, f.base, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second Get is a cache hit
		b, err := f.svc.Get(f.ctx, f.v, f.base, "k", "")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, want) {
			t.Fatalf("Get = %+v; want %+v", b, want)
		}
		b.Key.X[0] ^= 0xff
		b.Key.Y[0] ^= 0xff
		b.Key.KeyOps[0] = "changed"
		b.Tags["a"] = "changed"
		*b.Attributes.Enabled = false
		*b.Attributes.Created = 1
		*b.Attributes.Updated = 1
		*b.Attributes.RecoverableDays = 1
	}
	if b, err := f.svc.Get(f.ctx, f.v, f.base, "k", ""); err != nil || !reflect.DeepEqual(b, want) {
		t.Fatalf("Get after a caller changed its answers = %+v, %v; want %+v", b, err, want)
	}
}

// TestCloneIsDeep fills every field of the cached records, clones them and checks the
// clones share no memory with them, so a field added later without a line in its clone
// function fails here.
func TestCloneIsDeep(t *testing.T) {
	recordstest.CheckDeepClone(t, cloneVersion)
	recordstest.CheckDeepClone(t, cloneKeyRecord)
}
