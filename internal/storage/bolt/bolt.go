// Package bolt owns Coffer's default storage.Backend: one bbolt file on local disk, written
// through a single group-commit goroutine so that concurrent writers share fsyncs.
//
// Threat model: the file and the disk are untrusted for confidentiality and integrity —
// everything Coffer writes here has been sealed by the barrier, which detects tampering. This
// package's duties are durability (no write is acknowledged before bbolt's commit has synced
// it; NoSync is never set), atomicity (a failed commit, such as ENOSPC or EIO, leaves nothing
// of its batch behind; a full disk is reported as storage.ErrNoSpace, and writes resume on
// the same Backend once space returns), failing closed when the storage fails (an I/O error,
// a read-only file system, or the file deleted or replaced under the open database: each is
// storage.ErrUnavailable, writes are refused rather than committed into a file nobody will
// read again, and Ping reports the failure until a commit succeeds; a page of the memory map
// that cannot be read, or a file truncated under it, is storage.ErrUnavailable too, not a
// crash: fault.go), and refusing loudly to open a file that is not a bbolt database or
// that another process holds. Values are always copied out of the mmap, so callers never
// alias pages that a later remap or commit may move.
//
// This package imports only internal/storage of Coffer's packages (and go.etcd.io/bbolt); it
// must never import net/http or a domain package.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/coffer-kms/coffer/internal/storage"
)

// DefaultLockTimeout is how long Open waits for another process to release the file lock
// when Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// fileMode is the permission of a newly created database file: owner read and write only.
const fileMode fs.FileMode = 0o600

// mmapSize is the address space bbolt maps at Open (virtual memory, not file size or RSS).
// bbolt must remap to grow the file past its mapping, and a remap waits for every open read
// transaction; mapping 1 GiB up front keeps a long View (verify-store's scan) from holding up
// writes until the store outgrows it, as bbolt's DB.Begin advises.
const mmapSize = 1 << 30

// bucket is the one bbolt bucket that holds every key.
var bucket = []byte("coffer")

// Options tunes Open. The zero value is the production configuration.
type Options struct {
	// LockTimeout is how long Open waits for the exclusive file lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration

	// maxSize caps the file size in bytes (0 is no cap); tests use it to simulate a full disk.
	maxSize int
	// noSizeCheck skips the check that the file still holds every page of the database
	// before each transaction; tests use it to have reads fault inside bbolt.
	noSizeCheck bool
	// noSync opens bbolt with NoSync: commits are never fsynced. Only the negative check of
	// TestCrashPoints (COFFER_CRASH_NOSYNC=1) sets it, to show that its checker sees the
	// writes a power loss then loses.
	noSync bool
}

// Backend is a storage.Backend over one bbolt file. All writes (Put, Delete, Txn) go through a
// single committer goroutine, which runs every request pending when it wakes in one bbolt
// write transaction and so one fsync. Reads run in their own read-only transactions.
type Backend struct {
	db      *bbolt.DB
	file    *os.File    // the file bbolt opened: checked against path before every commit
	fd      uintptr     // file's descriptor, for fileSize
	opened  fs.FileInfo // file's identity, taken at Open
	path    string
	closed  atomic.Bool
	commits atomic.Int64          // bbolt write transactions run by the committer; read by tests
	size    atomic.Int64          // the file's largest size seen; a shorter file has lost pages
	wedged  atomic.Pointer[error] // set once a fault left bbolt holding its locks (fault.go)

	noSizeCheck bool // Options.noSizeCheck

	mu       sync.Mutex // guards pending and stopping
	pending  []*request
	stopping bool

	failMu    sync.Mutex
	failure   error                            // the last commit's storage.ErrUnavailable; nil once a commit succeeds
	readRetry *func(ctx context.Context) error // the last read that faulted; nil once it succeeds again

	wake    chan struct{} // capacity 1: "pending may be non-empty"
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has returned
}

var _ storage.Backend = (*Backend)(nil)

// Open opens or creates the database file at path (mode 0600) and starts its committer. It
// fails with an error naming path if another process holds the file past opts.LockTimeout, or
// if the file is not a valid bbolt database.
func Open(path string, opts Options) (*Backend, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	var file *os.File
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout:         timeout,
		FreelistType:    bbolt.FreelistMapType,
		MaxSize:         opts.maxSize,
		InitialMmapSize: mmapSize,
		NoSync:          opts.noSync, // false: every commit is fsynced before it is acknowledged
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		return nil, openError(path, timeout, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err == nil && created {
		err = syncDir(filepath.Dir(path)) // make the new file's directory entry durable
	}
	var opened fs.FileInfo
	if err == nil {
		opened, err = file.Stat()
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	b := &Backend{
		db:          db,
		file:        file,
		opened:      opened,
		path:        path,
		fd:          file.Fd(),
		noSizeCheck: opts.noSizeCheck,
		wake:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	b.size.Store(opened.Size())
	go b.run()
	return b, nil
}

// openError explains why bbolt could not open path.
func openError(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("bolt: open %s: the file is locked by another process (waited %s; is another coffer server using this data directory?): %w", path, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("bolt: open %s: not a bbolt database, or it is corrupt (restore it from a backup): %w", path, err)
	case errors.As(err, new(*fs.PathError)):
		return fmt.Errorf("bolt: %w", err) // it names the path and the operation already
	default:
		return fmt.Errorf("bolt: open %s: cannot open it as a bbolt database (is it truncated or another kind of file?): %w", path, err)
	}
}

// syncDir fsyncs a directory so that a file just created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}

// Path returns the database file's path.
func (b *Backend) Path() string { return b.path }

// view runs fn in a read-only transaction over the bucket. If a page cannot be read, it
// returns storage.ErrUnavailable wrapping errFault.
func (b *Backend) view(ctx context.Context, fn func(bk *bbolt.Bucket) error) error {
	if b.closed.Load() {
		return storage.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.usable(); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	var tx *bbolt.Tx
	err := b.guard(&tx, func() error {
		return b.db.View(func(t *bbolt.Tx) error {
			tx = t
			return fn(t.Bucket(bucket))
		})
	})
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return storage.ErrClosed // Close won the race after the check above
	case errors.Is(err, errFault):
		return fmt.Errorf("bolt: %w", err)
	}
	return err
}

// Get returns a copy of the value stored at key, or ErrNotFound.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	var v []byte
	err := b.view(ctx, func(bk *bbolt.Bucket) error {
		var ok bool
		v, ok = getValue(bk, key)
		if !ok {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		b.getFailed(err, key)
		return nil, err
	}
	return v, nil
}

// List returns one page of the keys that start with prefix, in ascending byte order.
func (b *Backend) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	var p storage.Page
	err := b.view(ctx, func(bk *bbolt.Bucket) error {
		p = listKeys(bk, nil, prefix, opts)
		return nil
	})
	b.listFailed(err, prefix, opts)
	return p, err
}

// View runs fn in one read-only bbolt transaction: a consistent snapshot that does not go
// through the committer, so writes commit while fn runs.
func (b *Backend) View(ctx context.Context, fn func(r storage.Reader) error) error {
	return b.view(ctx, func(bk *bbolt.Bucket) error {
		v := newTxView(b, bk)
		defer v.ended.Store(true)
		return fn(struct{ storage.Reader }{v})
	})
}

// Ping reports whether the database is open, its bucket readable, the file at the path the
// one the database has open, and commits succeeding. After a commit failed with
// storage.ErrUnavailable, Ping runs a commit that writes only bbolt's meta page and freelist
// (through the committer, so it is one more member of a batch) and reports its failure; so a
// readiness probe sees the storage recover without waiting for a client's write. After a
// read failed because a page could not be read, Ping runs that read again and fails until
// it succeeds; a file shorter than the database fails every Ping until it is put back.
func (b *Backend) Ping(ctx context.Context) error {
	err := b.view(ctx, func(bk *bbolt.Bucket) error {
		if bk == nil {
			return fmt.Errorf("bolt: %s has no %q bucket", b.path, bucket)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := b.pingReads(ctx); err != nil {
		return err
	}
	if err := b.checkFile(); err != nil {
		return err
	}
	if b.failed() == nil {
		return nil
	}
	if err := b.submit(ctx, &request{op: opProbe}); err != nil && !errors.Is(err, storage.ErrUnavailable) {
		return err // closed, or ctx is done
	}
	return b.failed()
}

// errReplaced says what checkFile found at the path when it is another file.
var errReplaced = errors.New("another file is at that path now")

// checkFile returns storage.ErrUnavailable, naming the path and what happened, unless the
// file at the database's path is still the file bbolt opened. A file deleted, renamed away or
// replaced (by a restore, another server's copy, a cleanup job) while the server runs would
// otherwise go on taking commits that the next start never sees.
func (b *Backend) checkFile() error {
	at, err := os.Stat(b.path)
	if err == nil {
		if os.SameFile(at, b.opened) {
			return nil
		}
		err = errReplaced
	}
	return fmt.Errorf("bolt: %w: %s is no longer the database file this server opened (%w): it was deleted, renamed or replaced while the server ran, so writes are refused rather than stored where no restart would find them; stop the server and put the database file back, or restore it from a backup",
		storage.ErrUnavailable, b.path, err)
}

// failed returns the storage.ErrUnavailable of the last failed commit, or nil once a commit
// has succeeded since.
func (b *Backend) failed() error {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	return b.failure
}

// setFailed records the outcome of a commit for failed and Ping.
func (b *Backend) setFailed(err error) {
	b.failMu.Lock()
	defer b.failMu.Unlock()
	b.failure = err
}

// Close stops the committer, fails writes that have not started with ErrClosed, waits for the
// batch in flight to finish, and closes the file. Operations after Close, including Close,
// return ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		return storage.ErrClosed
	}
	b.stopping = true
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()

	b.closed.Store(true)
	for _, r := range pending {
		r.done <- storage.ErrClosed
	}
	close(b.quit)
	if werr := b.wedged.Load(); werr != nil {
		// bbolt's Close would wait for the locks it still holds, and so may the committer
		// if it was inside bbolt then. Unlocking and closing the file lets a new Open have
		// it; the memory map stays until the process exits.
		return fmt.Errorf("bolt: close %s: the database was not closed cleanly: %w", b.path, errors.Join(*werr, b.unlockFile(), b.file.Close()))
	}
	<-b.stopped
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", b.path, err)
	}
	return nil
}

// errTxEnded is returned when a Tx is used after its fn returned.
var errTxEnded = errors.New("bolt: transaction used after its function returned")

// txView is the storage.Tx a Txn's fn gets: reads go to the batch's bbolt transaction under
// fn's own buffered writes, and writes stay buffered until the committer applies them. So a
// failing fn leaves nothing in the shared transaction and never forces the batch to roll back.
type txView struct {
	b      *Backend
	bk     *bbolt.Bucket
	writes map[string]*[]byte // a nil entry is a delete
	ended  atomic.Bool
}

func newTxView(b *Backend, bk *bbolt.Bucket) *txView {
	return &txView{b: b, bk: bk, writes: make(map[string]*[]byte)}
}

// check reports the error an operation on the view must return before doing any work.
func (v *txView) check(ctx context.Context) error {
	if v.ended.Load() {
		return errTxEnded
	}
	return ctx.Err()
}

func (v *txView) Get(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	if err := v.check(ctx); err != nil {
		return nil, err
	}
	if w, ok := v.writes[key]; ok {
		if w == nil {
			return nil, storage.ErrNotFound
		}
		return bytes.Clone(*w), nil
	}
	// fn runs on the caller's goroutine, so the bucket's pages are read here.
	var val []byte
	err := v.b.guard(nil, func() error {
		var ok bool
		if val, ok = getValue(v.bk, key); !ok {
			return storage.ErrNotFound
		}
		return nil
	})
	v.b.getFailed(err, key)
	return val, err
}

func (v *txView) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	if err := v.check(ctx); err != nil {
		return storage.Page{}, err
	}
	var p storage.Page
	err := v.b.guard(nil, func() error {
		p = listKeys(v.bk, v.writes, prefix, opts)
		return nil
	})
	v.b.listFailed(err, prefix, opts)
	return p, err
}

func (v *txView) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := checkValue(key, value); err != nil {
		return err
	}
	if err := v.check(ctx); err != nil {
		return err
	}
	c := make([]byte, len(value)) // never nil, so a put is told apart from a delete
	copy(c, value)
	v.writes[key] = &c
	return nil
}

func (v *txView) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := v.check(ctx); err != nil {
		return err
	}
	v.writes[key] = nil
	return nil
}

// apply writes the buffered writes into bk.
func (v *txView) apply(bk *bbolt.Bucket) error {
	for k, w := range v.writes {
		var err error
		if w == nil {
			err = bk.Delete([]byte(k))
		} else {
			err = bk.Put([]byte(k), *w)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// getValue returns a copy of key's value in bk, taken out of the mmap, and whether it exists.
// It seeks with a cursor so that an empty value is told apart from a missing key.
func getValue(bk *bbolt.Bucket, key string) ([]byte, bool) {
	k, val := bk.Cursor().Seek([]byte(key))
	if k == nil || string(k) != key {
		return nil, false
	}
	out := make([]byte, len(val))
	copy(out, val)
	return out, true
}

// listKeys returns one page of the keys in bk, as changed by writes (which may be nil), that
// start with prefix and sort after opts.After. It merges a cursor over bk with the sorted
// written keys and reads one key past the page to know whether there is a next page.
func listKeys(bk *bbolt.Bucket, writes map[string]*[]byte, prefix string, opts storage.ListOptions) storage.Page {
	limit := storage.ClampLimit(opts.Limit)
	var ov []string
	for k := range writes {
		if k > opts.After && strings.HasPrefix(k, prefix) {
			ov = append(ov, k)
		}
	}
	sort.Strings(ov)

	c := bk.Cursor()
	k, _ := c.Seek([]byte(max(prefix, opts.After)))
	if k != nil && string(k) == opts.After {
		k, _ = c.Next()
	}
	pre := []byte(prefix)
	keys := make([]string, 0, min(limit+1, 64))
	for len(keys) <= limit {
		inBucket := k != nil && bytes.HasPrefix(k, pre)
		if len(ov) > 0 && (!inBucket || ov[0] <= string(k)) {
			w := ov[0]
			ov = ov[1:]
			if inBucket && w == string(k) {
				k, _ = c.Next() // the write shadows the stored key
			}
			if writes[w] != nil {
				keys = append(keys, w)
			}
			continue
		}
		if !inBucket {
			break
		}
		keys = append(keys, string(k))
		k, _ = c.Next()
	}
	if len(keys) > limit {
		return storage.Page{Keys: keys[:limit:limit], Next: keys[limit-1]}
	}
	return storage.Page{Keys: keys}
}
