package audit

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// Internal request kinds, besides the record kinds.
const (
	kindClose = "close" // final checkpoint, then stop the writer
	kindTick  = "tick"  // CheckpointInterval elapsed
)

// request is one caller waiting for its record to be committed.
type request struct {
	kind string
	ev   Event
	// evJSON, if set, is json.Marshal(&ev) (appendEventJSON), done by the caller before it
	// queues, so that a committer, which every waiting request queues behind, does not run
	// the JSON encoder.
	evJSON []byte
	lazy   bool        // AppendLazy: may return before the sync
	cp     *Checkpoint // out: the checkpoint written for a KindCheckpoint request
	err    error
	done   chan struct{} // closed when the request is durable or failed; nil for ticks
}

// submit queues r and returns once it is committed (group commit, leader and followers):
// the caller that gets the commit slot takes everything queued, writes it with one write
// and one sync, and releases those callers; callers that queue meanwhile wait, and the
// next one to get the slot takes them all together. A lone caller therefore commits its
// own record on its own goroutine, with no hand-off to another goroutine and back (that
// hand-off was a large part of an audited read's cost, BENCHMARKS.md).
func (l *Log) submit(r *request) error {
	r.done = make(chan struct{})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.failures.Add(1)
		return ErrClosed
	}
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	for {
		select {
		case <-r.done:
			return r.err
		case l.commitSlot <- struct{}{}:
			// Under concurrent load (one of the last batches held more than one record),
			// let the goroutines that are ready to run queue their records first, so this
			// commit takes them too: on a busy two-core server a batch was ~1.4 records and
			// a read paid 0.7 pwrites; with the yield it pays ~0.2 (BENCHMARKS.md). A lone
			// caller does not yield: it would only wake an idle processor to look for work.
			if l.concurrent > 0 {
				runtime.Gosched()
			}
			l.drain()
			<-l.commitSlot
		}
	}
}

// yieldBatches is how many commits after a batch of several records still yield (submit).
const yieldBatches = 8

// drain commits everything queued; the caller holds the commit slot.
func (l *Log) drain() {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if len(batch) > 1 {
		l.concurrent = yieldBatches
	} else if l.concurrent > 0 {
		l.concurrent--
	}
	l.commit(batch)
	l.maybeRotate()
	if l.unsynced && !l.syncArmed {
		// The background goroutine schedules the deferred sync. Waking it once per
		// sync, not once per batch, saves a goroutine switch per audited read.
		l.syncArmed = true
		l.signal()
	}
}

// signal tells the background goroutine that written records wait for a deferred sync.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// withSlot runs f holding the commit slot, unless the log is closing (the background
// goroutine's work: timed checkpoints and deferred syncs).
func (l *Log) withSlot(f func()) {
	l.commitSlot <- struct{}{}
	defer func() { <-l.commitSlot }()
	if !l.stopping {
		f()
	}
}

// run is the background goroutine: checkpoints every CheckpointInterval and the deferred
// syncs of SyncInterval and LazySyncInterval. Records are committed by their callers.
func (l *Log) run() {
	defer close(l.stopped)
	var tick <-chan time.Time
	if l.interval > 0 {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	var syncDue <-chan time.Time // armed while written records wait for a deferred sync
	for {
		select {
		case <-l.quit:
			return
		case <-l.wake:
			if syncDue == nil {
				syncDue = time.After(l.deferFor())
			}
		case <-tick:
			l.withSlot(func() {
				l.commit([]*request{{kind: kindTick}})
				l.maybeRotate()
			})
		case <-syncDue:
			syncDue = nil
			l.backgroundSync()
		}
	}
}

// deferFor is how long written records may wait for their sync: the shorter of the
// intervals that are set.
func (l *Log) deferFor() time.Duration {
	if l.syncEvery > 0 && (l.lazyEvery == 0 || l.syncEvery < l.lazyEvery) {
		return l.syncEvery
	}
	return l.lazyEvery
}

// backgroundSync is run's deferred sync. It holds the commit slot only to see what there is
// to sync, and syncs without it: appends go on meanwhile, since a lazy record waits for its
// write, not for a sync. Holding the slot across the sync stalled every request of every
// tenant for as long as one fdatasync took — up to 300 ms on this project's shared VM — and
// a tenant above its quota made those stalls more frequent (BENCHMARKS.md, "Noisy
// neighbour"). Records written while it syncs set unsynced again and get the next sync.
func (l *Log) backgroundSync() {
	var f *os.File
	l.withSlot(func() {
		l.syncArmed = false // batches written from now on wake the background goroutine again
		l.adoptSyncErr()
		if !l.unsynced || l.syncErr != nil || l.file == nil {
			return
		}
		l.unsynced = false
		f = l.file
		l.syncMu.Lock() // taken before the slot is left: the file stays open until the sync ends
	})
	if f == nil {
		return
	}
	defer l.syncMu.Unlock()
	if err := l.syncFile(f, true); err != nil {
		err = fmt.Errorf("audit: sync %s: %w; records written since the last sync may be lost, and the log refuses new records", l.path, err)
		l.bgSyncErr.CompareAndSwap(nil, &err)
	}
}

// adoptSyncErr makes a failed background sync's error sticky; commit slot holder only.
func (l *Log) adoptSyncErr() {
	if e := l.bgSyncErr.Load(); e != nil && l.syncErr == nil {
		l.syncErr = *e
	}
}

// deferredSync makes the records written since the last sync durable (SyncInterval mode),
// after any background sync still running. The commit slot holder calls it before it
// replaces or closes the file. Its failure is sticky: the records' fate on disk is unknown,
// so the log fails closed.
func (l *Log) deferredSync() {
	l.syncMu.Lock() // wait for a background sync of the file
	l.syncMu.Unlock()
	l.adoptSyncErr()
	l.syncArmed = false // batches written from now on wake the background goroutine again
	if !l.unsynced || l.syncErr != nil || l.file == nil {
		return
	}
	l.unsynced = false
	if err := l.syncFile(l.file, true); err != nil {
		l.syncErr = fmt.Errorf("audit: sync %s: %w; records written since the last sync may be lost, and the log refuses new records", l.path, err)
	}
}

// commit encodes the batch after the current head, adding checkpoints where due, writes and
// syncs it, and advances the head only if that succeeded.
func (l *Log) commit(batch []*request) {
	defer func() {
		for _, r := range batch {
			if r.done != nil {
				close(r.done)
			}
		}
	}()
	l.adoptSyncErr()
	if l.syncErr != nil {
		for _, r := range batch {
			r.err = l.syncErr
		}
		l.failures.Add(uint64(len(batch)))
		return
	}
	if l.dirty {
		if err := l.file.Truncate(l.size); err != nil {
			err = fmt.Errorf("audit: %s holds a failed write that cannot be removed: %w", l.path, err)
			for _, r := range batch {
				r.err = err
			}
			l.failures.Add(uint64(len(batch)))
			return
		}
		l.dirty, l.alloc = false, l.size
	}

	buf := l.buf[:0]
	seq, head, since, span := l.seq, l.head, l.since, l.span
	now := l.clock().UTC()
	autoFailed := 0
	add := func(kind string, ev Event, evJSON []byte, cp *Checkpoint) error {
		r := Record{Seq: seq + 1, Kind: kind, LogID: l.logID, Event: ev, Checkpoint: cp}
		if r.Seq != 1 {
			r.Prev = head
		}
		var err error
		if evJSON != nil {
			buf = encodeEventLine(buf, &r, evJSON, head)
		} else if buf, err = encodeLine(buf, &r, head); err != nil {
			return fmt.Errorf("audit: encode record: %w", err)
		}
		seq, head = r.Seq, r.Hash
		span.add(ev.Time)
		if kind == KindCheckpoint {
			since = 0
		} else {
			since++
		}
		return nil
	}
	checkpoint := func() (*Checkpoint, error) {
		span.add(now) // the checkpoint record's own time
		cp := &Checkpoint{LogID: l.logID, Seq: seq, HeadHash: head, Time: now, Span: span.span()}
		if err := sign(l.signer, cp); err != nil {
			return nil, err
		}
		if err := add(KindCheckpoint, Event{Time: now}, nil, cp); err != nil {
			return nil, err
		}
		return cp, nil
	}
	for _, r := range batch {
		switch r.kind {
		case KindEvent, KindRecovery:
			if r.kind == KindRecovery {
				r.ev.Time = now
			}
			if r.err = add(r.kind, r.ev, r.evJSON, nil); r.err != nil {
				continue
			}
			if since >= l.every {
				if _, err := checkpoint(); err != nil {
					autoFailed++ // the events stand; the next record retries the checkpoint
				}
			}
		case KindCheckpoint:
			r.cp, r.err = checkpoint()
		case kindClose, kindTick:
			if since > 0 {
				_, r.err = checkpoint()
			}
		}
	}
	l.buf = buf[:0]
	if cap(l.buf) > 1<<20 {
		l.buf = nil
	}

	lazy := true // the batch may skip its sync only if every record in it may
	for _, r := range batch {
		lazy = lazy && r.lazy
	}
	var werr error
	if len(buf) > 0 {
		werr = l.write(buf, lazy)
	}
	failed := 0
	for _, r := range batch {
		if werr != nil && r.err == nil {
			r.err, r.cp = werr, nil
		}
		if r.err != nil {
			failed++
		}
	}
	if werr == nil {
		l.syncs.Add(1)
		failed += autoFailed
		l.stateMu.Lock()
		l.seq, l.head, l.since = seq, head, since
		l.stateMu.Unlock()
		l.span = span
	}
	l.failures.Add(uint64(failed))
}

// write makes buf durable after the good records (for a lazy batch: written, with the sync
// deferred). On failure it truncates the file back to
// its last good length, so the file and the in-memory head agree again.
func (l *Log) write(buf []byte, lazy bool) error {
	if l.file == nil {
		return l.writeSink(buf)
	}
	n, err := l.writeDurable(buf, lazy)
	if err == nil {
		l.size += int64(n)
		return nil
	}
	if terr := l.file.Truncate(l.size); terr != nil {
		l.dirty = true
	} else {
		l.alloc = l.size
	}
	return fmt.Errorf("audit: write %s: %w", l.path, err)
}

// writeSink writes buf to a sink's writer. A sink cannot be truncated: after a write that
// got part of a line out, the next write begins with a newline so the damage stays on one
// line.
func (l *Log) writeSink(buf []byte) error {
	out := buf
	if l.partialNL {
		out = append([]byte{'\n'}, buf...)
	}
	n, err := l.w.Write(out)
	if err == nil && n < len(out) {
		err = io.ErrShortWrite
	}
	if err == nil {
		l.partialNL = false
		return nil
	}
	if l.partialNL {
		l.partialNL = n != 1
	} else {
		l.partialNL = n > 0
	}
	return fmt.Errorf("audit: write: %w", err)
}
