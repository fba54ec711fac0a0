package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
)

func listCases() []testCase {
	return []testCase{
		{"list/empty", testListEmpty},
		{"list/byte-order", testListOrder},
		{"list/prefix-boundary", testListPrefix},
		{"list/after", testListAfter},
		{"list/paging", testListPaging},
	}
}

func testListEmpty(t *testing.T, b storage.Backend) {
	p, err := b.List(context.Background(), "", storage.ListOptions{})
	if err != nil || len(p.Keys) != 0 || p.Next != "" {
		t.Fatalf("List on an empty backend = %+v, %v; want no keys, no Next", p, err)
	}
}

func testListOrder(t *testing.T, b storage.Backend) {
	// Written out of order; byte order puts upper case, digits and '/' before lower case
	// and 0xff after everything, which a locale or rune sort gets wrong.
	keys := []string{"o/b", "o/\xff", "o/B", "o/a/z", "o/a", "o/10", "o/9", "o/\x01", "o/é"}
	for _, k := range keys {
		mustPut(t, b, k, []byte(k))
	}
	want := slices.Clone(keys)
	sort.Strings(want)
	wantKeys(t, b, "o/", want)
	wantKeys(t, b, "", want)
}

func testListPrefix(t *testing.T, b storage.Backend) {
	for _, k := range []string{"a", "a/", "a/x", "a/x/y", "a0", "a.", "a/\xff", "A/x", "b/x", "`/x"} {
		mustPut(t, b, k, []byte("v"))
	}
	tests := []struct {
		name, prefix string
		want         []string
	}{
		{"slash-excludes-a0", "a/", []string{"a/", "a/x", "a/x/y", "a/\xff"}},
		{"nested", "a/x", []string{"a/x", "a/x/y"}},
		{"bare-letter", "a", []string{"a", "a.", "a/", "a/x", "a/x/y", "a/\xff", "a0"}},
		{"case-sensitive", "A", []string{"A/x"}},
		{"no-match", "c", nil},
		{"no-match-between", "a1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantKeys(t, b, tc.prefix, tc.want) })
	}
}

func testListAfter(t *testing.T, b storage.Backend) {
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
		mustPut(t, b, k, []byte("v"))
	}
	tests := []struct {
		name, after string
		want        []string
	}{
		{"start", "", []string{"a/1", "a/2", "a/3"}},
		{"existing-key", "a/1", []string{"a/2", "a/3"}},
		{"between-keys", "a/15", []string{"a/2", "a/3"}},
		{"last-key", "a/3", nil},
		{"before-prefix", "0", []string{"a/1", "a/2", "a/3"}},
		{"after-prefix", "b", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := b.List(context.Background(), "a/", storage.ListOptions{After: tc.after})
			if err != nil {
				t.Fatalf("List(a/, After %q) = %v", tc.after, err)
			}
			if !slices.Equal(p.Keys, tc.want) || p.Next != "" {
				t.Errorf("List(a/, After %q) = %q, Next %q; want %q, no Next", tc.after, p.Keys, p.Next, tc.want)
			}
		})
	}
}

// pagingKeys is how many keys testListPaging writes: several default-size pages.
const pagingKeys = 2500

func testListPaging(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	want := make([]string, 0, pagingKeys)
	err := b.Txn(ctx, func(tx storage.Tx) error {
		// Keys just outside the prefix on both sides must never appear.
		for _, k := range []string{"page", "pagd/z", "pagf", "page0", "page\x00"} {
			if err := tx.Put(ctx, k, []byte("outside")); err != nil {
				return err
			}
		}
		for i := range pagingKeys {
			k := fmt.Sprintf("page/%d", i) // variable width: byte order is not numeric order
			if err := tx.Put(ctx, k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Txn writing %d keys = %v", pagingKeys, err)
	}
	for i := range pagingKeys {
		want = append(want, fmt.Sprintf("page/%d", i))
	}
	sort.Strings(want)
	tests := []struct {
		name  string
		limit int
	}{
		{"limit-7", 7},
		{"default", 0},
		{"exact-max", storage.MaxListLimit},
		{"just-under-max", storage.MaxListLimit - 1},
		{"clamped-over-max", storage.MaxListLimit + 1},
		{"clamped-huge", 1 << 30},
		{"clamped-negative", -5},
		{"last-page-exactly-full", pagingKeys / 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, pages := listAll(t, b, "page/", tc.limit)
			if !slices.Equal(got, want) {
				t.Fatalf("paging with limit %d returned %d keys (first diff at %d); want %d keys in order, each once",
					tc.limit, len(got), firstDiff(got, want), len(want))
			}
			size := storage.ClampLimit(tc.limit)
			if wantPages := (pagingKeys + size - 1) / size; pages != wantPages {
				t.Errorf("paging with limit %d took %d pages; want %d of %d keys", tc.limit, pages, wantPages, size)
			}
		})
	}
}

// listAll pages through prefix with limit and returns every key and the number of pages. It
// fails the test if a page other than the last is not full, if a page is empty but has a Next,
// or if the last page has a Next.
func listAll(t testing.TB, r storage.Reader, prefix string, limit int) ([]string, int) {
	t.Helper()
	size := storage.ClampLimit(limit)
	var keys []string
	after := ""
	for pages := 1; ; pages++ {
		p, err := r.List(context.Background(), prefix, storage.ListOptions{After: after, Limit: limit})
		if err != nil {
			t.Fatalf("List(%q, After %q, Limit %d) = %v", prefix, after, limit, err)
		}
		if len(p.Keys) > size {
			t.Fatalf("List(%q, Limit %d) returned %d keys; want at most %d", prefix, limit, len(p.Keys), size)
		}
		keys = append(keys, p.Keys...)
		if p.Next == "" {
			return keys, pages
		}
		if len(p.Keys) != size {
			t.Fatalf("List(%q, After %q, Limit %d) page %d has %d keys and a Next; want a full page of %d",
				prefix, after, limit, pages, len(p.Keys), size)
		}
		if pages > 2*pagingKeys {
			t.Fatalf("List(%q, Limit %d) is still returning a Next after %d pages", prefix, limit, pages)
		}
		after = p.Next
	}
}

// wantKeys checks that listing prefix (through every page) yields exactly want.
func wantKeys(t testing.TB, r storage.Reader, prefix string, want []string) {
	t.Helper()
	got, _ := listAll(t, r, prefix, 0)
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q; want %q", prefix, trimKeys(got), trimKeys(want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// trimKeys shortens a key list for an error message.
func trimKeys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = short(k)
	}
	return out
}
