package bolt

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/coffer-kms/coffer/internal/storage"
)

// maxBatch caps how many requests share one bbolt transaction; the rest wait for the next.
const maxBatch = 1024

// op is what a request does.
type op uint8

const (
	opPut op = iota
	opDelete
	opTxn
	opProbe // writes nothing: the commit of bbolt's meta page alone tells whether commits work
)

// state is where a request stands in the batch the committer is running.
type state uint8

const (
	stUnrun   state = iota // not reached: the batch failed before it
	stApplied              // its writes are in the batch's bbolt transaction
	stFailed               // it failed on committed state (or its context was done); err is its answer
	stRetry                // its fn failed after earlier writes in the batch: run it again, first
	stAborted              // its fn panicked or exited the goroutine; nobody waits for an answer
)

// errAborted tells the committer that a Txn's fn did not return.
var errAborted = errors.New("bolt: transaction function panicked or exited its goroutine")

// request is one write waiting for the committer. A Txn's fn runs on the caller's goroutine:
// the committer sends it a view on run and waits for fn's result on ran, so panics, stack
// traces and t.Fatal behave as if fn had been called directly.
type request struct {
	ctx   context.Context
	op    op
	key   string
	value []byte
	fn    func(storage.Tx) error

	run  chan *txView // committer → caller: run fn against this view (Txn only)
	ran  chan error   // caller → committer: fn's result, or errAborted
	done chan error   // committer → caller: the final outcome

	state state // owned by the committer
	err   error // fn's own error when state is stFailed
}

// Put stores a copy of value at key and returns once it is committed and synced.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := checkValue(key, value); err != nil {
		return err
	}
	v := make([]byte, len(value)) // never nil: bbolt keeps the slice until the commit
	copy(v, value)
	return b.submit(ctx, &request{op: opPut, key: key, value: v})
}

// Delete removes key and returns once the removal is committed and synced.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	return b.submit(ctx, &request{op: opDelete, key: key})
}

// Txn runs fn against a view of the database that buffers its writes, and commits them with
// the rest of the batch. fn runs on the caller's goroutine while the committer waits, so it
// must be quick and must not call the Backend itself (that would deadlock). If fn fails after
// other writes in the same batch, it is run again, first in the next batch, and its error is
// returned only from a run that saw committed data alone (as bbolt's own Batch does).
func (b *Backend) Txn(ctx context.Context, fn func(tx storage.Tx) error) error {
	return b.submit(ctx, &request{op: opTxn, fn: fn, run: make(chan *txView, 1), ran: make(chan error, 1)})
}

// checkValue rejects values bbolt cannot store.
func checkValue(key string, value []byte) error {
	if int64(len(value)) > bbolt.MaxValueSize {
		return fmt.Errorf("bolt: put %q: value is %d bytes, more than %d: %w", key, len(value), bbolt.MaxValueSize, berrors.ErrValueTooLarge)
	}
	return nil
}

// submit queues r for the committer, wakes it, and waits for the outcome, running a Txn's fn
// whenever the committer asks.
func (b *Backend) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.ctx = ctx
	r.done = make(chan error, 1)
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		return storage.ErrClosed
	}
	b.pending = append(b.pending, r)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // already awake, or will drain pending on its next round
	}
	for {
		select {
		case err := <-r.done:
			return err
		case v := <-r.run: // nil channel for Put and Delete: never ready
			r.ran <- r.runFn(v)
		}
	}
}

// runFn runs the Txn's fn against v. If fn panics or exits the goroutine, the committer is told
// errAborted before the panic continues up the caller's stack.
func (r *request) runFn(v *txView) (err error) {
	returned := false
	defer func() {
		v.ended.Store(true)
		if !returned {
			r.ran <- errAborted
		}
	}()
	err = r.fn(v)
	returned = true
	return err
}

// run is the committer: it sleeps until woken, then commits everything pending (up to
// maxBatch, after any requests carried over for a retry) in one bbolt transaction. A lone
// writer is committed as soon as it arrives; writers that arrive during a commit share the
// next one.
func (b *Backend) run() {
	defer close(b.stopped)
	var carry []*request
	more := false
	for {
		if len(carry) == 0 && !more {
			select {
			case <-b.wake:
			case <-b.quit:
				return
			}
		}
		b.mu.Lock()
		n := min(len(b.pending), max(maxBatch-len(carry), 0))
		batch := append(carry, b.pending[:n]...)
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		more = rest > 0
		b.mu.Unlock()
		carry = b.commit(batch)
	}
}

// commit runs batch in one bbolt write transaction, answers every request that is decided,
// and returns the requests to run again first in the next batch.
//
// A Txn's fn sees the writes of the requests before it in the batch, so if it fails it may
// have failed because of data that the commit could still lose. Its writes are buffered, so
// nothing needs rolling back, but it is answered only from a run where it came first.
func (b *Backend) commit(batch []*request) (carry []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		r.state, r.err = stUnrun, nil
		live = append(live, r)
	}
	if len(live) == 0 {
		return nil
	}
	err := b.checkFile()
	if err == nil {
		if err = b.usable(); err != nil {
			err = fmt.Errorf("bolt: %w", err)
		}
	}
	if err != nil {
		b.setFailed(err)
		for _, r := range live {
			r.done <- err
		}
		return nil
	}
	var tx *bbolt.Tx
	err = b.guard(&tx, func() error {
		return b.db.Update(func(t *bbolt.Tx) error {
			tx = t
			bk := t.Bucket(bucket)
			dirty := false // the transaction holds writes that are not committed yet
			for _, r := range live {
				wrote, err := apply(b, bk, r, dirty)
				if err != nil {
					return err
				}
				dirty = dirty || wrote
			}
			return nil
		})
	})
	b.commits.Add(1)
	if err != nil {
		err = fmt.Errorf("bolt: commit to %s: %w", b.path, classify(err))
		if derr := b.dropCache(); derr != nil {
			err = fmt.Errorf("%w (and %w)", err, derr)
		}
		if errors.Is(err, storage.ErrUnavailable) {
			b.setFailed(err)
		}
	} else {
		b.setFailed(nil)
		b.noteSize()
	}
	for _, r := range live {
		switch r.state {
		case stApplied, stUnrun:
			r.done <- err // nil once synced; the commit's error if nothing was kept
		case stFailed:
			r.done <- r.err
		case stRetry:
			carry = append(carry, r)
		case stAborted:
		}
	}
	return carry
}

// classify wraps a failed commit's error with what it means for the caller: a full device
// (ENOSPC, EDQUOT, or the test-only size cap) is storage.ErrNoSpace, which freeing space
// cures; any other error of the operating system (EIO from a failed write-back, EROFS from a
// file system gone read-only, ESTALE, ENXIO…) is storage.ErrUnavailable, which an operator
// must look at. Errors of bbolt's own making are left as they are.
func classify(err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	case errors.As(err, &errno):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// apply runs one request inside the batch's transaction, sets its state and reports whether
// it wrote anything. It returns an error only if bbolt itself failed, which fails the batch.
func apply(b *Backend, bk *bbolt.Bucket, r *request, dirty bool) (wrote bool, err error) {
	switch r.op {
	case opPut:
		if err := bk.Put([]byte(r.key), r.value); err != nil {
			return false, fmt.Errorf("put %q: %w", r.key, err)
		}
	case opDelete:
		if err := bk.Delete([]byte(r.key)); err != nil {
			return false, fmt.Errorf("delete %q: %w", r.key, err)
		}
	case opProbe:
		r.state = stApplied
		return false, nil
	case opTxn:
		v := newTxView(b, bk)
		r.run <- v
		switch err := <-r.ran; {
		case err == errAborted:
			r.state = stAborted
			return false, nil
		case err != nil && dirty:
			r.state = stRetry
			return false, nil
		case err != nil, len(v.writes) == 0 && !dirty:
			// fn failed, or only read, on committed data: that answer stands whatever
			// happens to the rest of the batch.
			r.state, r.err = stFailed, err
			return false, nil
		}
		if err := v.apply(bk); err != nil {
			return false, err
		}
		// A read-only fn that saw uncommitted writes shares the batch's fate.
		r.state = stApplied
		return len(v.writes) > 0, nil
	}
	r.state = stApplied
	return true, nil
}
