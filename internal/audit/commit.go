package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
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

// submit queues r and returns once it is committed (group commit, leader and followers).
//
// A record that must be synced before its caller goes on (Append) is committed by a flush
// leader: the caller that gets the flush slot takes every such record queued, writes them
// with one write (holding the commit slot only for that), syncs, and releases those callers;
// callers that queue meanwhile wait, and the next one to get the flush slot takes them all
// together, so one sync serves every record that arrived during the previous one.
//
// A record that may return once written (AppendLazy: reads) needs only the commit slot: its
// caller takes it, writes every lazy record queued, and returns; its sync follows (run). It
// never waits for a flush leader's sync: holding the commit slot through the sync made
// every tenant's reads queue behind one tenant's writes (BENCHMARKS.md, "Noisy
// neighbour"). A lone caller commits its own record on its own goroutine, with no hand-off
// to another goroutine and back (that hand-off was a large part of an audited read's cost).
func (l *Log) submit(r *request) error {
	r.done = make(chan struct{})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.failures.Add(1)
		return ErrClosed
	}
	if r.lazy {
		l.queue = append(l.queue, r)
	} else {
		l.durable = append(l.durable, r)
	}
	l.mu.Unlock()
	if !r.lazy {
		for {
			select {
			case <-r.done:
				return r.err
			case l.flushSlot <- struct{}{}:
				l.flush()
				<-l.flushSlot
			}
		}
	}
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
			if l.concurrent.Load() > 0 {
				runtime.Gosched()
			}
			p := l.drain(&l.queue)
			<-l.commitSlot
			l.finish(p)
		}
	}
}

// flush commits the records queued for a sync: written under the commit slot, synced
// after it is released. The caller holds the flush slot.
func (l *Log) flush() {
	if l.concurrent.Load() > 0 {
		runtime.Gosched() // as in submit, before the commit slot is taken
	}
	l.commitSlot <- struct{}{}
	p := l.drain(&l.durable)
	<-l.commitSlot
	l.finish(p)
}

// yieldBatches is how many commits after a batch of several records still yield (submit).
const yieldBatches = 8

// drain commits everything in queue (l.queue or l.durable); the caller holds the commit
// slot, and passes what it returns to finish once it has released the slot.
func (l *Log) drain(queue *[]*request) *pending {
	l.mu.Lock()
	batch := *queue
	*queue = nil
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if len(batch) > 1 {
		l.concurrent.Store(yieldBatches)
	} else if l.concurrent.Load() > 0 {
		l.concurrent.Add(-1)
	}
	p := l.commit(batch)
	l.maybeRotate()
	l.maybeGrow()
	if l.pendingSync() && !l.syncArmed {
		// The background goroutine schedules the deferred sync. Waking it once per
		// sync, not once per batch, saves a goroutine switch per audited read.
		l.syncArmed = true
		l.signal()
	}
	l.hold(p)
	return p
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
			var p *pending
			l.withSlot(func() {
				p = l.commit([]*request{{kind: kindTick}})
				l.maybeRotate()
				l.hold(p)
			})
			l.finish(p)
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
// to sync, and syncs without it (syncWrites): appends go on meanwhile, since a lazy record
// waits for its write, not for a sync. Holding the slot across the sync stalled every request
// of every tenant for as long as one fdatasync took — up to 300 ms on this project's shared
// VM (BENCHMARKS.md, "Noisy neighbour"). Records written while it syncs get the next sync.
func (l *Log) backgroundSync() {
	var p *pending
	l.withSlot(func() {
		l.syncArmed = false // batches written from now on wake the background goroutine again
		l.adoptSyncErr()
		if !l.pendingSync() || l.syncErr != nil || l.file == nil {
			return
		}
		p = &pending{gen: l.writeGen.Load()}
		l.hold(p)
	})
	l.finish(p)
}

// pending is a committed batch whose records are written and wait for a sync, which its
// leader makes after it has released the commit slot (finish).
type pending struct {
	batch []*request
	gen   uint64   // the batch's write: durable once syncedGen reaches it
	f     *os.File // the file it was written to, held open by fileRef (hold)
}

// hold readies p for finish: it keeps the file open (fileRef) until the sync outside the
// slot is done. Commit slot holder only; a nil p is no work.
func (l *Log) hold(p *pending) {
	if p == nil {
		return
	}
	l.fileRef.RLock()
	p.f = l.file
}

// finish makes p's records durable and then releases their callers. It runs after the
// commit slot is released; a nil p is no work.
func (l *Log) finish(p *pending) {
	if p == nil {
		return
	}
	err := l.syncWrites(p.f, p.gen)
	l.fileRef.RUnlock()
	if err != nil {
		// Undo the unsynced writes before the callers learn of the failure, so that a
		// failed append leaves the log as it was (adoptSyncErr).
		l.commitSlot <- struct{}{}
		l.adoptSyncErr()
		<-l.commitSlot
	}
	p.resolve(l, err)
}

// resolve releases p's callers, failing those without an error of their own with err.
func (p *pending) resolve(l *Log, err error) {
	failed := 0
	for _, r := range p.batch {
		if err != nil && r.err == nil {
			r.err, r.cp = err, nil
			failed++
		}
		if r.done != nil {
			close(r.done)
		}
	}
	l.failures.Add(uint64(failed))
}

// syncWrites makes the writes up to gen durable, by a data sync of f unless a sync that
// began after them has succeeded already. Syncs outside the commit slot run one at a time
// (syncMu), and each covers every write made before it began, so batches that wrote while
// one sync ran share the next (group commit of syncs). Once a sync has failed, the records
// not known durable fail too: the log refuses them rather than acknowledging records that
// a crash could lose with the failed ones before them.
func (l *Log) syncWrites(f *os.File, gen uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncedGen.Load() >= gen {
		return nil
	}
	if e := l.bgSyncErr.Load(); e != nil {
		return *e
	}
	through := l.writeGen.Load() // every write up to it is in f (fileRef keeps f current)
	if err := l.syncFile(f, true); err != nil {
		err = fmt.Errorf("audit: sync %s: %w; records written since the last sync may be lost, and the log refuses new records", l.path, err)
		l.bgSyncErr.CompareAndSwap(nil, &err)
		return *l.bgSyncErr.Load()
	}
	l.syncedGen.Store(through)
	return nil
}

// pendingSync says records were written since the last successful sync.
func (l *Log) pendingSync() bool {
	return l.writeGen.Load() > l.syncedGen.Load()
}

// unsyncedWrite is the log's state before a write that no sync has covered yet: what a
// failed sync rolls the log back to (adoptSyncErr).
type unsyncedWrite struct {
	gen   uint64
	acked bool // a caller was released before the sync (AppendLazy, SyncInterval)
	size  int64
	seq   uint64
	head  string
	since int
	span  fileSpan
}

// adoptSyncErr handles a failed sync outside the slot; commit slot holder only. If no caller
// was told that one of the unsynced records was written, it cuts the file back to the last
// synced record and rewinds the chain, so that appends resume once syncs work again, as
// after a failed write. Otherwise those records may be lost while their callers went on, and
// the error becomes sticky: the log refuses new records (fails closed).
func (l *Log) adoptSyncErr() {
	e := l.bgSyncErr.Load()
	if e == nil || l.syncErr != nil {
		return
	}
	l.lockFile() // let the syncs still outside the slot end (they fail: bgSyncErr)
	defer l.fileRef.Unlock()
	synced := l.syncedGen.Load()
	undo := slices.IndexFunc(l.unsynced, func(w unsyncedWrite) bool { return w.gen > synced })
	if l.stopping || undo < 0 || slices.ContainsFunc(l.unsynced[undo:], func(w unsyncedWrite) bool { return w.acked }) {
		l.syncErr = *e
		return
	}
	w := l.unsynced[undo]
	if err := l.file.Truncate(w.size); err != nil {
		l.dirty = true // the next commit cuts the file back first
	}
	l.size, l.alloc = w.size, w.size
	l.stateMu.Lock()
	l.seq, l.head, l.since = w.seq, w.head, w.since
	l.stateMu.Unlock()
	l.span = w.span
	l.unsynced = l.unsynced[:0]
	l.syncedGen.Store(l.writeGen.Load()) // nothing written is waiting for a sync any more
	l.bgSyncErr.Store(nil)
}

// deferredSync makes every record written so far durable, after the syncs still running
// outside the slot. The commit slot holder calls it before it replaces or closes the file.
// Its failure is sticky: the records' fate on disk is unknown, so the log fails closed.
func (l *Log) deferredSync() {
	l.lockFile() // wait for the syncs outside the slot: the file outlives them
	defer l.fileRef.Unlock()
	l.adoptSyncErr()
	l.syncArmed = false // batches written from now on wake the background goroutine again
	if !l.pendingSync() || l.syncErr != nil || l.file == nil {
		return
	}
	through := l.writeGen.Load()
	if err := l.syncFile(l.file, true); err != nil {
		err = fmt.Errorf("audit: sync %s: %w; records written since the last sync may be lost, and the log refuses new records", l.path, err)
		l.syncErr = err
		l.bgSyncErr.CompareAndSwap(nil, &err)
		return
	}
	l.syncedGen.Store(through)
}

// commit encodes the batch after the current head, adding checkpoints where due, and writes
// it; it advances the head only if that succeeded. It returns the batch as pending when its
// records still need the sync that makes them durable (finish, after the commit slot is
// released); otherwise it has released the batch's callers and returns nil.
func (l *Log) commit(batch []*request) (p *pending) {
	defer func() {
		if p != nil {
			return
		}
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
	if err := l.checkFile(); err != nil {
		for _, r := range batch {
			r.err = err
		}
		l.failures.Add(uint64(len(batch)))
		return
	}
	if l.dirty {
		l.collectGrow(true) // no zeros written after the cut
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
	before := unsyncedWrite{size: l.size, seq: l.seq, head: l.head, since: l.since, span: l.span}
	var werr error
	if len(buf) > 0 {
		werr = l.write(buf)
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
	if werr != nil || len(buf) == 0 || l.file == nil {
		return nil
	}
	synced := l.syncedGen.Load()
	l.unsynced = slices.DeleteFunc(l.unsynced, func(w unsyncedWrite) bool { return w.gen <= synced })
	before.gen = l.writeGen.Add(1)
	before.acked = lazy || l.syncEvery > 0 // deferred: run syncs the file within deferFor
	l.unsynced = append(l.unsynced, before)
	if before.acked {
		return nil
	}
	return &pending{batch: batch, gen: before.gen}
}

// errReplaced says what checkFile found at the log's path when it is another file.
var errReplaced = errors.New("another file is at that path now")

// checkFile returns an error unless the file at the log's path is the file the log writes
// (a writer sink has none to check). Records appended to a file deleted, renamed away or
// replaced while the log is open would be lost without a word: every commit checks first,
// so that those requests fail instead (one stat call; the open file's identity is taken
// once per file). The caller holds the commit slot, under which rotation swaps the file.
func (l *Log) checkFile() error {
	if l.file == nil {
		return nil
	}
	var err error
	if l.opened.file != l.file {
		var info os.FileInfo
		if info, err = l.file.Stat(); err == nil {
			l.opened.file, l.opened.info = l.file, info
		}
	}
	if err == nil {
		var at os.FileInfo
		if at, err = os.Stat(l.path); err == nil {
			if os.SameFile(at, l.opened.info) {
				return nil
			}
			err = errReplaced
		}
	}
	return fmt.Errorf("audit: %s is no longer the audit log file this server opened (%w): it was deleted, renamed or replaced while the server ran, so records are refused rather than written where no one would read them; stop the server and put the file back", l.path, err)
}

// write writes buf after the good records (a file's sync follows: commit). On failure it
// truncates the file back to its last good length, so the file and the in-memory head agree
// again.
func (l *Log) write(buf []byte) error {
	if l.file == nil {
		return l.writeSink(buf)
	}
	n, err := l.writeRecords(buf)
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
