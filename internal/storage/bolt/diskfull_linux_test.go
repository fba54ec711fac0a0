package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/coffer-kms/coffer/internal/storage"

	"github.com/coffer-kms/coffer/internal/testfs"
)

// fullValue is the value the disk-full tests store at key i: about 1 KiB, unique to i.
func fullValue(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("value-%06d;", i)), 80)
}

// fillUntilFull puts keys until a Put fails, then tries three more; it returns the
// acknowledged keys and the first error.
func fillUntilFull(t *testing.T, b *Backend, prefix string) (acked map[string][]byte, firstErr error) {
	t.Helper()
	ctx := context.Background()
	acked = make(map[string][]byte)
	fails := 0
	for i := 0; i < 100000 && fails < 4; i++ {
		k, v := fmt.Sprintf("%s/%06d", prefix, i), fullValue(i)
		if err := b.Put(ctx, k, v); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			fails++
			continue
		}
		acked[k] = v
	}
	if firstErr == nil {
		t.Fatalf("100000 puts of 1 KiB fit on the small disk; it never filled")
	}
	return acked, firstErr
}

// checkFile opens the database file at path read-only and fails t if bbolt's consistency
// check finds a problem; unlike Open, it never writes to the file or panics on a bad page.
func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	defer db.Close()
	if err := db.View(checkTx); err != nil {
		t.Fatalf("bbolt check of %s: %v", path, err)
	}
}

// checkTx runs bbolt's consistency check in tx and returns every problem it reports.
func checkTx(tx *bbolt.Tx) error {
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkDB fails t if bbolt's consistency check finds a problem (a dangling page, a page
// freed twice, a page that is not what its parent says) or an acknowledged key is missing
// or holds another value.
func checkDB(t *testing.T, b *Backend, acked map[string][]byte) {
	t.Helper()
	if err := b.db.View(checkTx); err != nil {
		t.Fatalf("bbolt check of %s: %v", b.Path(), err) // reading keys now could panic
	}
	for k, v := range acked {
		got, err := b.Get(context.Background(), k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("acknowledged %s = %.20q, %v; want its value", k, got, err)
		}
	}
}

// TestCommitDiskFull fills a real tmpfs: the commit that does not fit fails with ENOSPC,
// reported as storage.ErrNoSpace, and keeps nothing, reads keep working, and writes resume on the same Backend once space returns.
func TestCommitDiskFull(t *testing.T) {
	dir := testfs.Tmpfs(t, "1m")
	filler := filepath.Join(dir, "filler")
	testfs.Fill(t, filler, 256<<10)
	path := filepath.Join(dir, "coffer.db")
	b := mustOpen(t, path)
	defer func() { _ = b.Close() }()

	acked, err := fillUntilFull(t, b, "k")
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("Put on a full disk = %v; want an error wrapping ENOSPC and storage.ErrNoSpace", err)
	}
	t.Logf("%d puts acknowledged before ENOSPC", len(acked))
	checkDB(t, b, acked)

	putsResume(t, b, filler, acked, 100)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	b = mustOpen(t, path)
	checkDB(t, b, acked)
}

// TestFailedSyncThenCommitsSurviveCacheDrop fills an ext4 file system on thin storage, where
// writes land in the page cache and fdatasync fails: after the failed commits, space returns,
// more commits succeed, and once the page cache is dropped (a remount, as after a reboot)
// the database must pass bbolt's check and hold every acknowledged key. Without dropCache
// the commits after the failure reuse pages whose first write-back failed, and one of them
// reads back as zeros: "page expected to be: N, but self identifies as 0".
func TestFailedSyncThenCommitsSurviveCacheDrop(t *testing.T) {
	th := testfs.NewThin(t, "4m", "64m")
	filler := filepath.Join(th.Backing, "filler")
	testfs.Fill(t, filler, 512<<10)
	b := openClosed(t, filepath.Join(th.Dir, "coffer.db"))

	acked, err := fillUntilFull(t, b, "k")
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("Put on full thin storage = %v; want an error wrapping ENOSPC or EIO", err)
	}
	t.Logf("%d puts acknowledged before the sync failed: %v", len(acked), err)
	putsResume(t, b, filler, acked, 50)
	b = reopen(t, b, th.Remount, acked)
	if err := b.Put(context.Background(), "after-remount", []byte("x")); err != nil {
		t.Errorf("Put after the remount = %v", err)
	}
}

// putsResume frees the space filler takes and requires n more puts to succeed on the same
// Backend, without reopening it; they join acked.
func putsResume(t *testing.T, b *Backend, filler string, acked map[string][]byte, n int) {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := fmt.Sprintf("after/%03d", i)
		if err := b.Put(context.Background(), k, fullValue(i)); err != nil {
			t.Fatalf("Put %s after space returned = %v; want success without reopening", k, err)
		}
		acked[k] = fullValue(i)
	}
}
