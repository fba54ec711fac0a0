package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

// openTemp opens a fresh database in a test's temporary directory and closes it at cleanup.
func openTemp(t testing.TB, opts Options) *Backend {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "coffer.db"), opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// mustOpen opens path or fails the test.
func mustOpen(t testing.TB, path string) *Backend {
	t.Helper()
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return openTemp(t, Options{}) })
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coffer.db")
	b := mustOpen(t, path)
	want := map[string][]byte{
		"put":       []byte("v1"),
		"empty":     {},
		"txn/a":     []byte("a"),
		"txn/b":     bytes.Repeat([]byte{0xab}, 20000), // spans overflow pages
		"overwrite": []byte("second"),
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return b.Put(ctx, "put", want["put"]) }},
		{"put empty", func() error { return b.Put(ctx, "empty", nil) }},
		{"put doomed", func() error { return b.Put(ctx, "deleted", []byte("x")) }},
		{"overwrite 1", func() error { return b.Put(ctx, "overwrite", []byte("first")) }},
		{"overwrite 2", func() error { return b.Put(ctx, "overwrite", want["overwrite"]) }},
		{"delete", func() error { return b.Delete(ctx, "deleted") }},
		{"txn", func() error {
			return b.Txn(ctx, func(tx storage.Tx) error {
				if err := tx.Put(ctx, "txn/a", want["txn/a"]); err != nil {
					return err
				}
				return tx.Put(ctx, "txn/b", want["txn/b"])
			})
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	held, err := b.Get(ctx, "txn/b")
	if err != nil {
		t.Fatalf("Get(txn/b) = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// A value returned by Get is a copy: reading it after the mmap is gone must not fault.
	if !bytes.Equal(held, want["txn/b"]) {
		t.Errorf("value read before Close changed after Close")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	b = mustOpen(t, path)
	defer b.Close()
	for k, v := range want {
		got, err := b.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("after reopen Get(%q) = %.20q, %v; want %.20q", k, got, err, v)
		}
	}
	if _, err := b.Get(ctx, "deleted"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after reopen Get(deleted) = %v; want ErrNotFound", err)
	}
}

func TestOpenRejectsCorruptFile(t *testing.T) {
	random := make([]byte, 64<<10)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
	}{
		{"random-64KiB", random},
		{"text", []byte(strings.Repeat("this is not a bbolt database\n", 1000))},
		{"zeros-16KiB", make([]byte, 16<<10)},
		{"short", []byte("garbage")},
		{"truncated-page", random[:4097]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "coffer.db")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := Open(path, Options{})
			if err == nil {
				b.Close()
				t.Fatalf("Open(%s) of a corrupt file succeeded; want an error", tc.name)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Open error %q does not name the file %s", err, path)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.content) {
				t.Errorf("failed Open modified the file (%d bytes, was %d)", len(got), len(tc.content))
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coffer.db")
	b := mustOpen(t, path)
	defer b.Close()
	// flock locks belong to the open file, so a second Open in this process is refused too.
	start := time.Now()
	second, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded; want a lock error")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open error = %q; want it to name %s and say it is locked", err, path)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("second Open waited %s; want about the 100ms LockTimeout", waited)
	}
}

func TestConcurrentWritersSurviveReopen(t *testing.T) {
	const workers, perWorker = 32, 40
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coffer.db")
	b := mustOpen(t, path)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := fmt.Sprintf("w%02d/%03d", w, i)
				var err error
				if i%5 == 0 {
					err = b.Txn(ctx, func(tx storage.Tx) error {
						if err := tx.Put(ctx, k, []byte(k)); err != nil {
							return err
						}
						return tx.Put(ctx, k+"/twin", []byte(k))
					})
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
		t.Fatal(err)
	}
	commits := b.commits.Load()
	if err := b.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	t.Logf("%d writes from %d writers took %d commits", workers*perWorker, workers, commits)
	if commits >= workers*perWorker {
		t.Errorf("%d writes took %d commits; want fewer (writers should share commits)", workers*perWorker, commits)
	}

	b = mustOpen(t, path)
	defer b.Close()
	for w := range workers {
		for i := range perWorker {
			k := fmt.Sprintf("w%02d/%03d", w, i)
			keys := []string{k}
			if i%5 == 0 {
				keys = append(keys, k+"/twin")
			}
			for _, key := range keys {
				if v, err := b.Get(ctx, key); err != nil || string(v) != k {
					t.Errorf("after reopen Get(%q) = %q, %v; want %q", key, v, err, k)
				}
			}
		}
	}
}
