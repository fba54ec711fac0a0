// Package storagetest owns the conformance suite that every storage.Backend must pass: the
// error contract (ErrNotFound, ErrInvalidKey, ErrClosed, context errors), value ownership,
// List order and paging, Txn atomicity, isolation and serialisability, and View snapshots that do
// not hold up writes.
//
// Threat model: storage is untrusted for confidentiality and integrity (the barrier seals what
// it stores), but Coffer trusts a backend to be durable and atomic. The suite checks the
// atomicity, isolation and error halves of that promise in process; durability across a
// restart is each backend's own test (it needs a real file and a reopen).
//
// Context choice: every operation (Get, List, Put, Delete, Txn, Ping) checks its context before
// doing any work. An operation called with a context that is already cancelled or past its
// deadline returns an error that wraps ctx.Err() and has no effect. A backend may still finish
// a write it had already started when the context is cancelled later; the suite does not test
// that race.
//
// This package imports only internal/storage of Coffer's packages, never a concrete backend;
// it is test code and must not be imported by non-test code.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

// testCase is one named conformance check run against a fresh backend.
type testCase struct {
	name string
	fn   func(t *testing.T, b storage.Backend)
}

// Run runs the conformance suite as subtests of t. Every subtest gets a fresh, empty backend
// from open and closes it when it ends (a second Close by open's own cleanup may return
// ErrClosed). open should register any other cleanup, such as removing files, with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) storage.Backend) {
	t.Helper()
	RunMaxKeyLen(t, storage.MaxKeyLen, open)
}

// RunMaxKeyLen is Run for a backend whose longest key is maxKeyLen bytes rather than
// storage.MaxKeyLen: a layering backend such as the barrier, which prefixes every key it
// passes down.
func RunMaxKeyLen(t *testing.T, maxKeyLen int, open func(t *testing.T) storage.Backend) {
	t.Helper()
	var cases []testCase
	cases = append(cases, basicCases(maxKeyLen)...)
	cases = append(cases, listCases()...)
	cases = append(cases, txnCases()...)
	cases = append(cases, viewCases()...)
	cases = append(cases, lifecycleCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() { _ = b.Close() })
			tc.fn(t, b)
		})
	}
}

func basicCases(maxKeyLen int) []testCase {
	return []testCase{
		{"get/missing", testGetMissing},
		{"put/round-trip", testRoundTrip},
		{"put/overwrite", testOverwrite},
		{"put/value-copied", testPutCopies},
		{"get/value-copied", testGetCopies},
		{"put/empty-value", testEmptyValue},
		{"key/invalid", func(t *testing.T, b storage.Backend) { testInvalidKeys(t, b, maxKeyLen) }},
		{"key/max-length", func(t *testing.T, b storage.Backend) { testMaxKey(t, b, maxKeyLen) }},
		{"delete/missing", testDeleteMissing},
		{"delete/existing", testDeleteExisting},
		{"ping", testPing},
	}
}

func testGetMissing(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	v, err := b.Get(ctx, "no/such/key")
	if err == nil {
		t.Fatalf("Get(missing) = %q, nil; want ErrNotFound (never a nil error)", v)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v; want ErrNotFound", err)
	}
}

func testRoundTrip(t *testing.T, b storage.Backend) {
	tests := []struct {
		name, key string
		value     []byte
	}{
		{"ascii", "keys/k1", []byte("hello")},
		{"binary", "keys/bin", []byte{0, 1, 2, 0xff, 0}},
		{"non-utf8-key", "keys/\xff\x00x", []byte("v")},
		{"large-value", "keys/large", bytes.Repeat([]byte("0123456789abcdef"), 64<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustPut(t, b, tc.key, tc.value)
			wantValue(t, b, tc.key, tc.value)
		})
	}
}

func testOverwrite(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("first, longer value"))
	mustPut(t, b, "k", []byte("second"))
	wantValue(t, b, "k", []byte("second"))
}

func testPutCopies(t *testing.T, b storage.Backend) {
	buf := []byte("original")
	mustPut(t, b, "k", buf)
	copy(buf, "MUTATED!")
	wantValue(t, b, "k", []byte("original"))
}

func testGetCopies(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("original"))
	v := mustGet(t, b, "k")
	copy(v, "MUTATED!")
	wantValue(t, b, "k", []byte("original"))
}

func testEmptyValue(t *testing.T, b storage.Backend) {
	mustPut(t, b, "empty", []byte{})
	mustPut(t, b, "nil", nil)
	for _, key := range []string{"empty", "nil"} {
		v, err := b.Get(context.Background(), key)
		if err != nil || v == nil || len(v) != 0 {
			t.Errorf("Get(%q) = %#v, %v; want a non-nil empty slice (never nil, nil)", key, v, err)
		}
	}
}

func testInvalidKeys(t *testing.T, b storage.Backend, maxKeyLen int) {
	ctx := context.Background()
	tooLong := strings.Repeat("k", maxKeyLen+1)
	ops := []struct {
		name string
		call func(key string) error
	}{
		{"get", func(k string) error { _, err := b.Get(ctx, k); return err }},
		{"put", func(k string) error { return b.Put(ctx, k, []byte("v")) }},
		{"delete", func(k string) error { return b.Delete(ctx, k) }},
		{"tx-get", func(k string) error {
			return b.Txn(ctx, func(tx storage.Tx) error { _, err := tx.Get(ctx, k); return err })
		}},
		{"tx-put", func(k string) error {
			return b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, k, []byte("v")) })
		}},
		{"tx-delete", func(k string) error {
			return b.Txn(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, k) })
		}},
	}
	for _, key := range []struct{ name, key string }{{"empty", ""}, {"too-long", tooLong}} {
		for _, op := range ops {
			t.Run(op.name+"/"+key.name, func(t *testing.T) {
				if err := op.call(key.key); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("%s(%d-byte key) = %v; want ErrInvalidKey", op.name, len(key.key), err)
				}
			})
		}
	}
	wantKeys(t, b, "", nil)
}

func testMaxKey(t *testing.T, b storage.Backend, maxKeyLen int) {
	key := strings.Repeat("m", maxKeyLen)
	mustPut(t, b, key, []byte("v"))
	wantValue(t, b, key, []byte("v"))
	wantKeys(t, b, "", []string{key})
}

func testDeleteMissing(t *testing.T, b storage.Backend) {
	if err := b.Delete(context.Background(), "never/written"); err != nil {
		t.Fatalf("Delete(missing) = %v; want nil", err)
	}
}

func testDeleteExisting(t *testing.T, b storage.Backend) {
	mustPut(t, b, "a", []byte("1"))
	mustPut(t, b, "b", []byte("2"))
	if err := b.Delete(context.Background(), "a"); err != nil {
		t.Fatalf("Delete(a) = %v", err)
	}
	wantMissing(t, b, "a")
	wantValue(t, b, "b", []byte("2"))
	if err := b.Delete(context.Background(), "a"); err != nil {
		t.Fatalf("second Delete(a) = %v; want nil", err)
	}
}

func testPing(t *testing.T, b storage.Backend) {
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping = %v; want nil", err)
	}
}

// mustPut stores value at key or fails the test.
func mustPut(t testing.TB, b storage.Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, value); err != nil {
		t.Fatalf("Put(%s) = %v", short(key), err)
	}
}

// mustGet returns the value at key or fails the test.
func mustGet(t testing.TB, r storage.Reader, key string) []byte {
	t.Helper()
	v, err := r.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s) = %v", short(key), err)
	}
	return v
}

// wantValue checks that key holds exactly want.
func wantValue(t testing.TB, r storage.Reader, key string, want []byte) {
	t.Helper()
	if got := mustGet(t, r, key); !bytes.Equal(got, want) {
		t.Errorf("Get(%s) = %q; want %q", short(key), trim(got), trim(want))
	}
}

// wantMissing checks that key holds no value.
func wantMissing(t testing.TB, r storage.Reader, key string) {
	t.Helper()
	if v, err := r.Get(context.Background(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(%s) = %q, %v; want ErrNotFound", short(key), trim(v), err)
	}
}

// trim shortens a value for an error message.
func trim(v []byte) []byte {
	if len(v) > 64 {
		return append(v[:64:64], "..."...)
	}
	return v
}

// short quotes a key for an error message, eliding the middle of a long one.
func short(key string) string {
	if len(key) > 48 {
		return fmt.Sprintf("%q...(%d bytes)", key[:32], len(key))
	}
	return fmt.Sprintf("%q", key)
}

func lifecycleCases() []testCase {
	return []testCase{
		{"concurrent-writers", testConcurrentWriters},
		{"ctx/cancelled", func(t *testing.T, b storage.Backend) { testDoneContext(t, b, cancelled()) }},
		{"ctx/deadline-exceeded", func(t *testing.T, b storage.Backend) { testDoneContext(t, b, expired()) }},
		{"closed", testClosed},
	}
}

// Concurrency of testConcurrentWriters: 32 goroutines, each writing its own keys.
const (
	writerWorkers = 32
	writerKeys    = 20
)

func testConcurrentWriters(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writerWorkers)
	for w := range writerWorkers {
		wg.Go(func() {
			for i := range writerKeys {
				k := fmt.Sprintf("w/%02d/%02d", w, i)
				var err error
				if i%4 == 3 { // mix single Puts with small transactions
					err = b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, k, []byte(k)) })
				} else {
					err = b.Put(ctx, k, []byte(k))
				}
				if err != nil {
					errs <- fmt.Errorf("write %s: %w", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []string
	for w := range writerWorkers {
		for i := range writerKeys {
			want = append(want, fmt.Sprintf("w/%02d/%02d", w, i))
		}
	}
	wantKeys(t, b, "w/", want)
	for _, k := range want {
		wantValue(t, b, k, []byte(k))
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func expired() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	cancel() // the deadline has already passed, so Err stays DeadlineExceeded
	return ctx
}

// testDoneContext checks the suite's context choice: an operation whose context is already
// done returns an error wrapping ctx.Err() and has no effect.
func testDoneContext(t *testing.T, b storage.Backend, ctx context.Context) {
	mustPut(t, b, "existing", []byte("v"))
	ops := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := b.Get(ctx, "existing"); return err }},
		{"list", func() error { _, err := b.List(ctx, "", storage.ListOptions{}); return err }},
		{"put", func() error { return b.Put(ctx, "put-key", []byte("v")) }},
		{"delete", func() error { return b.Delete(ctx, "existing") }},
		{"txn", func() error {
			return b.Txn(ctx, func(tx storage.Tx) error {
				return tx.Put(context.Background(), "txn-key", []byte("v"))
			})
		}},
		{"view", func() error { return b.View(ctx, func(storage.Reader) error { return nil }) }},
		{"ping", func() error { return b.Ping(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.call(); !errors.Is(err, ctx.Err()) {
				t.Errorf("%s with a done context = %v; want %v", op.name, err, ctx.Err())
			}
		})
	}
	wantKeys(t, b, "", []string{"existing"})
}

func testClosed(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "k", []byte("v"))
	if err := b.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	ops := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := b.Get(ctx, "k"); return err }},
		{"get-missing", func() error { _, err := b.Get(ctx, "missing"); return err }},
		{"list", func() error { _, err := b.List(ctx, "", storage.ListOptions{}); return err }},
		{"put", func() error { return b.Put(ctx, "k2", []byte("v")) }},
		{"delete", func() error { return b.Delete(ctx, "k") }},
		{"txn", func() error {
			return b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, "k3", []byte("v")) })
		}},
		{"view", func() error { return b.View(ctx, func(storage.Reader) error { return nil }) }},
		{"ping", func() error { return b.Ping(ctx) }},
		{"close-again", b.Close},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.call(); !errors.Is(err, storage.ErrClosed) {
				t.Errorf("%s after Close = %v; want ErrClosed", op.name, err)
			}
		})
	}
}
