package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/coffer-kms/coffer/internal/storage"
)

// fillPages commits n values of about 1 KiB under prefix in one Txn (n = 4000 spans about 4
// MB of pages) and adds them to acked.
func fillPages(t *testing.T, b *Backend, prefix string, n int, acked map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	err := b.Txn(ctx, func(tx storage.Tx) error {
		for i := range n {
			if err := tx.Put(ctx, fmt.Sprintf("%s/%05d", prefix, i), fullValue(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Txn putting %d values = %v", n, err)
	}
	for i := range n {
		acked[fmt.Sprintf("%s/%05d", prefix, i)] = fullValue(i)
	}
}

// readsFail checks that Get, List and Ping (and, with writes, a reading Txn and a Put) all
// fail with storage.ErrUnavailable, each error saying want, and that nothing crashed.
func readsFail(t *testing.T, b *Backend, want string, writes bool) {
	t.Helper()
	ctx := context.Background()
	type op struct {
		name string
		do   func() error
	}
	ops := []op{
		{"Get", func() error { _, err := b.Get(ctx, "read/01234"); return err }},
		{"Get of a missing key", func() error { _, err := b.Get(ctx, "read/missing"); return err }},
		{"List", func() error { _, err := b.List(ctx, "read/", storage.ListOptions{Limit: 5}); return err }},
	}
	if writes {
		ops = append(ops, op{"Txn that reads", func() error {
			return b.Txn(ctx, func(tx storage.Tx) error {
				if _, err := tx.Get(ctx, "read/03999"); err != nil {
					return err
				}
				return tx.Put(ctx, "refused/txn", []byte("x"))
			})
		}}, op{"Put", func() error { return b.Put(ctx, "refused/put", []byte("x")) }})
	}
	ops = append(ops, op{"Ping", func() error { return b.Ping(ctx) }})
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s on the unreadable file = %v; want storage.ErrUnavailable saying %q", op.name, err, want)
		}
	}
}

// closeWithin closes b, failing the test if Close does not return within d (a lock leaked
// inside bbolt would block it forever).
func closeWithin(t *testing.T, b *Backend, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
		return nil
	}
}

// TestReadFault truncates the database file under an open Backend, so that bbolt's memory
// map covers pages the file no longer has and reading them would raise SIGBUS (as a device
// that fails reads does). Every read, every write and Ping must fail with
// storage.ErrUnavailable instead of killing the process, and nothing refused may be stored.
//
// "truncated": every bbolt transaction first checks that the file is no shorter than the
// database, so none of them touches the missing pages; putting the original bytes back
// makes reads, writes and Ping work again on the same Backend. "faulted-in-fn" turns that
// check off and keeps the two meta pages: reads fault inside their transaction, which
// bbolt rolls back, so the Backend recovers once the file is back. "faulted-in-begin" turns
// the check off and cuts the meta pages too: the fault hits inside bbolt's Begin, which
// then holds its locks for good; the Backend refuses everything from then on without
// touching bbolt (which would block), Close returns, and reopening the restored file
// serves everything acknowledged.
func TestReadFault(t *testing.T) {
	cases := []struct {
		name      string
		noCheck   bool
		size      int64
		want      string // in every error
		recovered bool   // the same Backend serves again once the file is back
	}{
		{"truncated", false, 4096, "shorter than the database", true},
		{"faulted-in-fn", true, 8192, "failed under the memory map", true},
		{"faulted-in-begin", true, 4096, "failed under the memory map", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "coffer.db")
			b, err := Open(path, Options{noSizeCheck: c.noCheck})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			acked := map[string][]byte{}
			fillPages(t, b, "read", 4000, acked)
			putSome(t, b, "small", 5, acked)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, c.size); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes truncated to %d", path, len(orig), c.size)

			// A write whose transaction faults has bbolt's rollback read the freelist page,
			// which "faulted-in-fn" cuts too: that is "faulted-in-begin"'s end.
			writes := c.name != "faulted-in-fn"
			readsFail(t, b, c.want, writes)
			readsFail(t, b, c.want, writes) // and again: nothing blocks, nothing crashes

			if err := os.WriteFile(path, orig, fileMode); err != nil { // same inode
				t.Fatal(err)
			}
			if !c.recovered {
				if err := b.Ping(ctx); !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "restart") {
					t.Errorf("Ping after a fault inside bbolt's Begin = %v; want storage.ErrUnavailable saying to restart", err)
				}
				if err := closeWithin(t, b, 10*time.Second); err == nil {
					t.Errorf("Close after a fault inside bbolt's Begin = nil; want it to say the database was not closed cleanly")
				}
				checkFile(t, path)
				b = openClosed(t, path)
				checkDB(t, b, acked)
				putSome(t, b, "after", 5, acked)
				return
			}
			if err := b.Ping(ctx); err != nil {
				t.Fatalf("Ping with the file restored = %v; want nil", err)
			}
			checkDB(t, b, acked)
			if page, err := b.List(ctx, "read/", storage.ListOptions{Limit: 5}); err != nil || len(page.Keys) != 5 {
				t.Errorf("List with the file restored = %v, %v; want 5 keys", page.Keys, err)
			}
			putSome(t, b, "after", 5, acked)
			if err := closeWithin(t, b, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path)
			b = openClosed(t, path)
			checkDB(t, b, acked)
			for _, k := range []string{"refused/put", "refused/txn"} {
				if _, err := b.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Get %s, refused while the file was short = %v; want ErrNotFound", k, err)
				}
			}
		})
	}
}

// pageOf returns the page of bbolt's memory map that holds key's value (its leaf). Setting
// its protection to PROT_NONE makes reading it fault as a page the device cannot read does;
// PROT_READ (bbolt's own) puts it back.
func pageOf(t *testing.T, b *Backend, key string) []byte {
	t.Helper()
	var page []byte
	err := b.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if len(v) == 0 {
			return fmt.Errorf("no value at %s", key)
		}
		pageSize := os.Getpagesize()
		p := unsafe.Pointer(unsafe.SliceData(v))
		page = unsafe.Slice((*byte)(unsafe.Add(p, -int(uintptr(p)%uintptr(pageSize)))), pageSize)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

// protect sets the protection of page, a page of bbolt's memory map.
func protect(t *testing.T, page []byte, prot int) {
	t.Helper()
	if err := unix.Mprotect(page, prot); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
}

// TestReadFaultOnePage makes the leaf page of one key unreadable under an open Backend:
// reading it faults inside bbolt's transaction (Get, a Put to a key on it) or on the caller's
// goroutine (a Txn's fn reading it). Each fails with storage.ErrUnavailable, the rest of the
// database is served, nothing refused is stored, bbolt's locks are released (the Backend is
// not wedged), and Ping fails until the page can be read again, then recovers by itself.
func TestReadFaultOnePage(t *testing.T) {
	ctx := context.Background()
	b := openTemp(t, Options{})
	acked := map[string][]byte{}
	fillPages(t, b, "read", 4000, acked)
	const bad, good = "read/01234", "read/00007"
	page := pageOf(t, b, bad)
	protect(t, page, unix.PROT_NONE)
	faults := []struct {
		name string
		do   func() error
	}{
		{"Txn reading it", func() error {
			return b.Txn(ctx, func(tx storage.Tx) error {
				if _, err := tx.Get(ctx, bad); err != nil {
					return err
				}
				return tx.Put(ctx, "refused/txn", []byte("x"))
			})
		}},
		{"Ping after the Txn", func() error { return b.Ping(ctx) }},
		{"Get", func() error { _, err := b.Get(ctx, bad); return err }},
		{"Put next to it", func() error { return b.Put(ctx, bad, []byte("refused")) }},
		{"Ping", func() error { return b.Ping(ctx) }},
	}
	for _, f := range faults {
		if err := f.do(); !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, errFault) {
			t.Errorf("%s with the page unreadable = %v; want storage.ErrUnavailable (a fault)", f.name, err)
		}
	}
	if got, err := b.Get(ctx, good); err != nil || string(got) != string(acked[good]) {
		t.Errorf("Get %s, on another page = %.20q, %v; want its value", good, got, err)
	}
	if err := b.wedged.Load(); err != nil {
		t.Fatalf("Backend wedged after faults inside transactions that bbolt rolled back: %v", *err)
	}
	protect(t, page, unix.PROT_READ)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping with the page readable again = %v; want nil", err)
	}
	checkDB(t, b, acked)
	if _, err := b.Get(ctx, "refused/txn"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of the refused Txn's key = %v; want ErrNotFound", err)
	}
	putSome(t, b, "after", 5, acked)
}

// TestGuardRepanics checks that guard turns only memory faults into errors: any other panic,
// a nil dereference included, goes on unchanged, and the goroutine's SetPanicOnFault setting
// is restored.
func TestGuardRepanics(t *testing.T) {
	b := openTemp(t, Options{})
	var nilMap *map[string]int
	for name, fn := range map[string]func() error{
		"panic":           func() error { panic("not a fault") },
		"nil dereference": func() error { return fmt.Errorf("%d", len(*nilMap)) },
	} {
		got := func() (r any) {
			defer func() { r = recover() }()
			err := b.guard(nil, fn)
			t.Errorf("guard(%s) returned %v; want the panic to go on", name, err)
			return nil
		}()
		if e, ok := got.(error); name == "panic" && got != "not a fault" || name != "panic" && (!ok || isFault(e) || !strings.Contains(e.Error(), "nil pointer")) {
			t.Errorf("guard(%s) panicked with %v; want the original panic", name, got)
		}
	}
	if debug.SetPanicOnFault(false) {
		t.Errorf("SetPanicOnFault left on after guard")
	}
}
