package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
)

func txnCases() []testCase {
	return []testCase{
		{"txn/commit-multi-key", testTxnCommit},
		{"txn/fn-error-rolls-back", testTxnRollback},
		{"txn/reads-own-writes", testTxnReadsOwnWrites},
		{"txn/lists-own-writes", testTxnListsOwnWrites},
		{"txn/value-copied", testTxnCopies},
		{"txn/panic-propagates", testTxnPanic},
		{"txn/concurrent-counter", testTxnCounter},
	}
}

func testTxnCommit(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "old", []byte("x"))
	err := b.Txn(ctx, func(tx storage.Tx) error {
		for _, k := range []string{"m/a", "m/b", "m/c"} {
			if err := tx.Put(ctx, k, []byte("v-"+k)); err != nil {
				return err
			}
		}
		return tx.Delete(ctx, "old")
	})
	if err != nil {
		t.Fatalf("Txn = %v", err)
	}
	for _, k := range []string{"m/a", "m/b", "m/c"} {
		wantValue(t, b, k, []byte("v-"+k))
	}
	wantMissing(t, b, "old")
}

func testTxnRollback(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	mustPut(t, b, "keep", []byte("v1"))
	mustPut(t, b, "keep2", []byte("v2"))
	err := b.Txn(ctx, func(tx storage.Tx) error {
		if err := tx.Put(ctx, "new", []byte("n")); err != nil {
			return err
		}
		if err := tx.Put(ctx, "keep", []byte("changed")); err != nil {
			return err
		}
		if err := tx.Delete(ctx, "keep2"); err != nil {
			return err
		}
		return fmt.Errorf("validate: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Txn with failing fn = %v; want fn's error", err)
	}
	wantMissing(t, b, "new")
	wantValue(t, b, "keep", []byte("v1"))
	wantValue(t, b, "keep2", []byte("v2"))
	wantKeys(t, b, "", []string{"keep", "keep2"})
}

func testTxnReadsOwnWrites(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "untouched", []byte("u"))
	mustPut(t, b, "overwritten", []byte("old"))
	mustPut(t, b, "deleted", []byte("d"))
	mustPut(t, b, "recreated", []byte("r1"))
	err := b.Txn(ctx, func(tx storage.Tx) error {
		steps := []struct {
			name string
			do   func() error
		}{
			{"put new", func() error { return tx.Put(ctx, "new", []byte("n")) }},
			{"overwrite", func() error { return tx.Put(ctx, "overwritten", []byte("new")) }},
			{"delete", func() error { return tx.Delete(ctx, "deleted") }},
			{"delete recreated", func() error { return tx.Delete(ctx, "recreated") }},
			{"put recreated", func() error { return tx.Put(ctx, "recreated", []byte("r2")) }},
			{"put then delete", func() error { return tx.Put(ctx, "ghost", []byte("g")) }},
			{"delete ghost", func() error { return tx.Delete(ctx, "ghost") }},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		wantValue(t, tx, "new", []byte("n"))
		wantValue(t, tx, "overwritten", []byte("new"))
		wantValue(t, tx, "untouched", []byte("u"))
		wantValue(t, tx, "recreated", []byte("r2"))
		wantMissing(t, tx, "deleted")
		wantMissing(t, tx, "ghost")
		wantMissing(t, tx, "never")
		return nil
	})
	if err != nil {
		t.Fatalf("Txn = %v", err)
	}
	wantKeys(t, b, "", []string{"new", "overwritten", "recreated", "untouched"})
}

func testTxnListsOwnWrites(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, k := range []string{"x/1", "x/3", "x/5", "x/7", "y/0"} {
		mustPut(t, b, k, []byte("old"))
	}
	type page struct {
		keys []string
		next bool
	}
	err := b.Txn(ctx, func(tx storage.Tx) error {
		for _, k := range []string{"x/2", "x/4", "x/5", "x/8", "x0", "w/9"} {
			if err := tx.Put(ctx, k, []byte("new")); err != nil {
				return err
			}
		}
		for _, k := range []string{"x/3", "x/7", "x/9"} {
			if err := tx.Delete(ctx, k); err != nil {
				return err
			}
		}
		tests := []struct {
			name  string
			opts  storage.ListOptions
			pages []page
		}{
			{"all", storage.ListOptions{}, []page{{[]string{"x/1", "x/2", "x/4", "x/5", "x/8"}, false}}},
			{"limit-2", storage.ListOptions{Limit: 2}, []page{
				{[]string{"x/1", "x/2"}, true}, {[]string{"x/4", "x/5"}, true}, {[]string{"x/8"}, false}}},
			{"after-deleted", storage.ListOptions{After: "x/3"}, []page{{[]string{"x/4", "x/5", "x/8"}, false}}},
			{"last-page-full", storage.ListOptions{After: "x/2", Limit: 3}, []page{{[]string{"x/4", "x/5", "x/8"}, false}}},
		}
		for _, tc := range tests {
			opts := tc.opts
			for i, want := range tc.pages {
				p, err := tx.List(ctx, "x/", opts)
				if err != nil {
					return fmt.Errorf("%s: tx.List: %w", tc.name, err)
				}
				if !slices.Equal(p.Keys, want.keys) || (p.Next != "") != want.next {
					t.Errorf("%s: tx.List(x/, %+v) page %d = %q, Next %q; want %q, Next set %v",
						tc.name, opts, i, p.Keys, p.Next, want.keys, want.next)
				}
				opts.After = p.Next
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Txn = %v", err)
	}
	wantKeys(t, b, "x/", []string{"x/1", "x/2", "x/4", "x/5", "x/8"})
}

func testTxnCopies(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	err := b.Txn(ctx, func(tx storage.Tx) error {
		buf := []byte("original")
		if err := tx.Put(ctx, "k", buf); err != nil {
			return err
		}
		copy(buf, "MUTATED!")
		v, err := tx.Get(ctx, "k")
		if err != nil {
			return err
		}
		copy(v, "CHANGED!")
		wantValue(t, tx, "k", []byte("original"))
		return nil
	})
	if err != nil {
		t.Fatalf("Txn = %v", err)
	}
	wantValue(t, b, "k", []byte("original"))
}

func testTxnPanic(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	type boom struct{}
	func() {
		defer func() {
			if r := recover(); r != (boom{}) {
				t.Errorf("Txn with a panicking fn: recovered %v; want the panic value to reach the caller", r)
			}
		}()
		_ = b.Txn(ctx, func(tx storage.Tx) error {
			if err := tx.Put(ctx, "half", []byte("written")); err != nil {
				return err
			}
			panic(boom{})
		})
		t.Errorf("Txn with a panicking fn returned normally")
	}()
	wantMissing(t, b, "half")
	mustPut(t, b, "after", []byte("ok")) // the backend still works
	wantValue(t, b, "after", []byte("ok"))
}

// Concurrency of testTxnCounter: 32 goroutines, each incrementing one key this many times.
const (
	counterWorkers = 32
	counterRounds  = 25
)

func testTxnCounter(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "counter", []byte("0"))
	var wg sync.WaitGroup
	errs := make(chan error, counterWorkers)
	for range counterWorkers {
		wg.Go(func() {
			for range counterRounds {
				err := b.Txn(ctx, func(tx storage.Tx) error {
					v, err := tx.Get(ctx, "counter")
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						return err
					}
					return tx.Put(ctx, "counter", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment Txn = %v", err)
	}
	wantValue(t, b, "counter", []byte(strconv.Itoa(counterWorkers*counterRounds)))
}
