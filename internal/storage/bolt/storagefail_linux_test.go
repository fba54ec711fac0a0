package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/testfs"
)

// putSome puts n keys under prefix, all of which must be acknowledged, and adds them to acked.
func putSome(t *testing.T, b *Backend, prefix string, n int, acked map[string][]byte) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("%s/%03d", prefix, i)
		if err := b.Put(context.Background(), k, fullValue(i)); err != nil {
			t.Fatalf("Put %s = %v; want success", k, err)
		}
		acked[k] = fullValue(i)
	}
}

// openClosed opens the database at path and closes it at cleanup (a Backend closed before
// answers ErrClosed, which is ignored).
func openClosed(t *testing.T, path string) *Backend {
	t.Helper()
	b := mustOpen(t, path)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// reopen closes b, runs remount (which drops the page cache), checks the file with bbolt and
// opens it again: every acknowledged key must be there.
func reopen(t *testing.T, b *Backend, remount func(), acked map[string][]byte) *Backend {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	remount()
	checkFile(t, b.Path())
	b = openClosed(t, b.Path())
	checkDB(t, b, acked)
	return b
}

// refused checks that every kind of write fails with storage.ErrUnavailable wrapping cause
// (nil: any), that Ping reports it, and that reads of acked keys go on.
func refused(t *testing.T, b *Backend, cause error, acked map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	writes := map[string]func() error{
		"Put":    func() error { return b.Put(ctx, "refused/put", []byte("x")) },
		"Delete": func() error { return b.Delete(ctx, "refused/put") },
		"Txn": func() error {
			return b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, "refused/txn", []byte("x")) })
		},
	}
	for name, write := range writes {
		err := write()
		if !errors.Is(err, storage.ErrUnavailable) || (cause != nil && !errors.Is(err, cause)) {
			t.Fatalf("%s on failing storage = %v; want storage.ErrUnavailable wrapping %v", name, err, cause)
		}
	}
	if err := b.Ping(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping on failing storage = %v; want storage.ErrUnavailable", err)
	}
	for k, v := range acked {
		if got, err := b.Get(ctx, k); err != nil || string(got) != string(v) {
			t.Fatalf("Get %s on failing storage = %.20q, %v; want its value", k, got, err)
		}
	}
	if _, err := b.Get(ctx, "refused/put"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of a refused Put = %v; want ErrNotFound", err)
	}
}

// TestCommitFileGone deletes, renames away and replaces the database file under an open
// Backend: every write is refused with storage.ErrUnavailable instead of being committed into
// a file the next Open would not see, Ping fails, reads go on; putting the same file back
// (renaming it home) lets writes resume.
func TestCommitFileGone(t *testing.T) {
	for _, how := range []string{"deleted", "renamed", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "coffer.db")
			b := mustOpen(t, path)
			defer func() { _ = b.Close() }()
			acked := map[string][]byte{}
			putSome(t, b, "before", 5, acked)
			aside := filepath.Join(dir, "aside.db")
			switch how {
			case "deleted":
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			case "renamed":
				if err := os.Rename(path, aside); err != nil {
					t.Fatal(err)
				}
			case "replaced":
				other := mustOpen(t, aside) // a valid database, but not this one
				if err := other.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(aside, path); err != nil {
					t.Fatal(err)
				}
			}
			commits := b.commits.Load()
			refused(t, b, nil, acked)
			if n := b.commits.Load() - commits; n != 0 {
				t.Errorf("%d bbolt commits ran into the %s file; want none", n, how)
			}
			if how != "renamed" {
				return
			}
			if err := os.Rename(aside, path); err != nil {
				t.Fatal(err)
			}
			if err := b.Ping(context.Background()); err != nil {
				t.Fatalf("Ping with the file back in place = %v", err)
			}
			putSome(t, b, "after", 5, acked)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b = mustOpen(t, path)
			checkDB(t, b, acked)
		})
	}
}

// TestCommitEIO fails the device under the database (testfs.Flaky: fdatasync answers EIO):
// writes fail with storage.ErrUnavailable wrapping EIO and keep nothing, Ping fails, reads go
// on; once the device heals, Ping's probe commit succeeds and writes resume on the same
// Backend; after a remount (the page cache dropped) every acknowledged key is there.
func TestCommitEIO(t *testing.T) {
	fl := testfs.NewFlaky(t, "64m")
	b := openClosed(t, filepath.Join(fl.Dir, "coffer.db"))
	acked := map[string][]byte{}
	putSome(t, b, "before", 20, acked)
	fl.Fail()
	refused(t, b, syscall.EIO, acked)
	if err := b.Ping(context.Background()); !errors.Is(err, syscall.EIO) {
		t.Errorf("Ping again on the failed device = %v; want its probe commit to fail with EIO", err)
	}
	fl.Heal()
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the device healed = %v; want nil (its probe commit succeeds)", err)
	}
	putSome(t, b, "after", 20, acked)
	b = reopen(t, b, fl.Remount, acked)
	if _, err := b.Get(context.Background(), "refused/txn"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of a refused Txn's key after the remount = %v; want ErrNotFound", err)
	}
}

// TestCommitReadOnly turns the file system read-only under the open database (ext4's
// errors=remount-ro, testfs.Thin.ForceReadOnly): writes fail with storage.ErrUnavailable
// wrapping EROFS, Ping fails, reads go on; after a remount every acknowledged key is there
// and writes work again.
func TestCommitReadOnly(t *testing.T) {
	th := testfs.NewFragile(t, "16m", "32m")
	b := openClosed(t, filepath.Join(th.Dir, "coffer.db"))
	acked := map[string][]byte{}
	putSome(t, b, "before", 20, acked)
	th.ForceReadOnly()
	refused(t, b, syscall.EROFS, acked)
	b = reopen(t, b, th.Remount, acked)
	putSome(t, b, "after", 5, acked)
}
