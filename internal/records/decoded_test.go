package records

import (
	"context"
	"maps"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/mem"
)

type rec struct {
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

func cloneRec(r *rec) *rec { c := *r; c.Tags = maps.Clone(r.Tags); return &c }

// The cache returns what is stored now, never an older decode, and what a caller changes
// in its copy never reaches the cache.
func TestDecodedFollowsWritesAndCopies(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	d := NewDecoded(2, cloneRec)
	put := func(key string, r rec) {
		t.Helper()
		if err := st.Txn(ctx, func(tx storage.Tx) error { return Put(ctx, tx, key, r) }); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) *rec {
		t.Helper()
		r, found, err := d.Get(ctx, st, key)
		if err != nil || !found {
			t.Fatalf("Get(%s) = %v, %v, %v", key, r, found, err)
		}
		return r
	}
	put("a", rec{Name: "one", Tags: map[string]string{"k": "v"}})
	if got := get("a"); got.Name != "one" {
		t.Fatalf("Name = %q", got.Name)
	}
	got := get("a") // from the cache
	got.Name, got.Tags["k"] = "changed", "changed"
	if again := get("a"); again.Name != "one" || again.Tags["k"] != "v" {
		t.Errorf("a caller's change reached the cache: %+v", again)
	}
	put("a", rec{Name: "two"})
	if got := get("a"); got.Name != "two" {
		t.Errorf("after a write Name = %q; want two", got.Name)
	}
	// Past max the cache starts over and still answers right.
	put("b", rec{Name: "b"})
	put("c", rec{Name: "c"})
	for _, k := range []string{"a", "b", "c", "a"} {
		if got := get(k); got.Name != map[string]string{"a": "two", "b": "b", "c": "c"}[k] {
			t.Errorf("Get(%s).Name = %q", k, got.Name)
		}
	}
	if len(d.m) > 2 {
		t.Errorf("cache holds %d records; max 2", len(d.m))
	}
	if _, found, err := d.Get(ctx, st, "missing"); found || err != nil {
		t.Errorf("missing: found=%v err=%v", found, err)
	}
	if err := st.Put(ctx, "bad", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get(ctx, st, "bad"); err == nil {
		t.Error("a damaged record decoded without error")
	}
}

// GetShared hands out the cache's own record on a hit (no copy), and still follows writes.
func TestDecodedGetShared(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	d := NewDecoded(4, cloneRec)
	if err := st.Txn(ctx, func(tx storage.Tx) error { return Put(ctx, tx, "a", rec{Name: "one"}) }); err != nil {
		t.Fatal(err)
	}
	first, _, err := d.GetShared(ctx, st, "a") // a miss: decoded for this caller
	if err != nil {
		t.Fatal(err)
	}
	hit1, _, _ := d.GetShared(ctx, st, "a")
	hit2, _, _ := d.GetShared(ctx, st, "a")
	if hit1 != hit2 || hit1 == first || hit1.Name != "one" {
		t.Fatalf("GetShared hits = %p, %p (first %p), name %q; want one shared record named one", hit1, hit2, first, hit1.Name)
	}
	if copied, _, _ := d.Get(ctx, st, "a"); copied == hit1 {
		t.Fatal("Get returned the shared record; want a copy")
	}
	if err := st.Txn(ctx, func(tx storage.Tx) error { return Put(ctx, tx, "a", rec{Name: "two"}) }); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := d.GetShared(ctx, st, "a"); got.Name != "two" {
		t.Fatalf("GetShared after a write = %q; want two", got.Name)
	}
}
