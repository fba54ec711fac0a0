package secrets

import (
	"reflect"
	"testing"
)

// TestGetBundleSharesNothing: Get reads the cached records without copying them
// (records.GetShared), so each bundle must own its memory: a caller that changes every
// part of one answer changes nothing in the next.
func TestGetBundleSharesNothing(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Set(f.ctx, f.v, f.base, "s", SetParams{Value: val("v1"), Tags: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	want, err := f.svc.Get(f.ctx, f.v, f.base, "s", "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second Get is a cache hit
		b, err := f.svc.Get(f.ctx, f.v, f.base, "s", "")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, want) {
			t.Fatalf("Get = %+v; want %+v", b, want)
		}
		b.Tags["a"] = "changed"
		*b.Value = "changed"
		*b.Attributes.Enabled = false
		*b.Attributes.Created = 1
		*b.Attributes.RecoverableDays = 1
	}
	if b, err := f.svc.Get(f.ctx, f.v, f.base, "s", ""); err != nil || !reflect.DeepEqual(b, want) {
		t.Fatalf("Get after a caller changed its answers = %+v, %v; want %+v", b, err, want)
	}
}
