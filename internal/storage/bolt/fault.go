package bolt

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"go.etcd.io/bbolt"

	"github.com/coffer-kms/coffer/internal/storage"
)

// bbolt reads the database through a memory map. A page the kernel cannot bring in (the
// device fails the read, or the file was truncated under the map) is a SIGBUS at the
// instruction that touches it, which kills the process unless the goroutine has asked for a
// panic instead (debug.SetPanicOnFault). Every call into bbolt and every read of a bucket
// runs under guard, which turns such a fault into storage.ErrUnavailable.
//
// A fault that unwinds through bbolt is safe when bbolt's deferred rollback closes the
// transaction: a read transaction's rollback touches no page, a write transaction's reads
// the meta and freelist pages. A fault inside Begin, or in a rollback, leaves bbolt's locks
// held for good, and the next transaction would block on them: the Backend is then wedged,
// refuses everything without calling bbolt, and needs a restart. To keep truncation (the
// one failure that takes the meta pages away) from getting that far, every transaction
// first checks that the file is no shorter than the database (checkSize).

// errFault is what a fault under the memory map is reported as, inside storage.ErrUnavailable.
var errFault = errors.New("the device or file failed under the memory map")

// isFault reports whether a recovered panic value is the runtime's report of a memory fault
// at an address (SetPanicOnFault); a nil dereference and every other panic are not.
func isFault(r any) bool {
	if _, ok := r.(runtime.Error); !ok {
		return false
	}
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}

// guard runs fn with memory faults turned into panics on this goroutine, and returns a fault
// as storage.ErrUnavailable; any other panic goes on unchanged. tx, if not nil, is where fn
// stores the bbolt transaction it runs in: a fault that left it open (nil: Begin never
// returned; still bound to the database: its rollback failed) wedges the Backend.
func (b *Backend) guard(tx **bbolt.Tx, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if !isFault(r) {
			panic(r)
		}
		err = fmt.Errorf("%w: reading %s failed: %w (a page could not be read: the device failed, or the file was truncated or overwritten; check the kernel log and the file)",
			storage.ErrUnavailable, b.path, errFault)
		if tx != nil && (*tx == nil || (*tx).DB() != nil) {
			b.wedge(err)
		}
	}()
	return fn()
}

// wedge records that bbolt's locks may be held for good after err: from now on every
// operation fails without calling bbolt.
func (b *Backend) wedge(err error) {
	err = fmt.Errorf("%w; it happened inside bbolt, which may still hold its locks, so this process cannot use the database again: restart the server once the device and the file are sound", err)
	b.wedged.CompareAndSwap(nil, &err)
}

// usable returns the error every operation must return before it calls bbolt: the wedge, or
// a file shorter than the database.
func (b *Backend) usable() error {
	if err := b.wedged.Load(); err != nil {
		return *err
	}
	if b.noSizeCheck {
		return nil
	}
	return b.checkSize()
}

// checkSize returns storage.ErrUnavailable if the open file is shorter than the database
// has been (bbolt never shrinks it): its memory map would then cover pages the file no
// longer holds.
// If Close has closed the file meanwhile, it reports storage.ErrClosed.
func (b *Backend) checkSize() error {
	size, err := b.fileSize()
	if (err != nil || size < b.size.Load()) && b.closed.Load() {
		return storage.ErrClosed
	}
	switch {
	case err != nil:
		return fmt.Errorf("%w: stat %s: %w", storage.ErrUnavailable, b.path, err)
	case size < b.size.Load():
		return fmt.Errorf("%w: %s is shorter than the database (%d bytes, want at least %d): it was truncated or overwritten while the server ran; put the file back as it was, or stop the server and restore it from a backup",
			storage.ErrUnavailable, b.path, size, b.size.Load())
	}
	return nil
}

// noteSize records the file's size after a commit, which may have grown it.
func (b *Backend) noteSize() {
	if size, err := b.fileSize(); err == nil && size > b.size.Load() {
		b.size.Store(size) // only the committer stores
	}
}

// getFailed records, if err is a fault, that reading key faulted: Ping reads it again.
func (b *Backend) getFailed(err error, key string) {
	if errors.Is(err, errFault) {
		b.noteReadFault(func(ctx context.Context) error { _, err := b.Get(ctx, key); return err })
	}
}

// listFailed records, if err is a fault, that a List faulted: Ping lists again.
func (b *Backend) listFailed(err error, prefix string, opts storage.ListOptions) {
	if errors.Is(err, errFault) {
		b.noteReadFault(func(ctx context.Context) error { _, err := b.List(ctx, prefix, opts); return err })
	}
}

// noteReadFault records a read that faulted, for Ping, which runs retry (the same read)
// until it no longer fails with storage.ErrUnavailable.
func (b *Backend) noteReadFault(retry func(context.Context) error) {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	b.readRetry = &retry
}

// pingReads runs the read that faulted last, if any, and clears it once it succeeds.
func (b *Backend) pingReads(ctx context.Context) error {
	b.failMu.Lock()
	retry := b.readRetry
	b.failMu.Unlock()
	if retry == nil {
		return nil
	}
	if err := (*retry)(ctx); errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.failMu.Lock()
	defer b.failMu.Unlock()
	if b.readRetry == retry {
		b.readRetry = nil
	}
	return nil
}
