package audit

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckpointEvery is the checkpoint period, in records, when Options leaves it zero.
const DefaultCheckpointEvery = 1000

// ErrClosed is returned by Append and Checkpoint after Close.
var ErrClosed = errors.New("audit: log is closed")

// Options configures a Log.
type Options struct {
	// Signer signs checkpoints (required; Ed25519 expected, ECDSA accepted). Keep its key
	// sealed and away from the log: whoever holds it can forge a whole log.
	Signer crypto.Signer
	// HMACKey is the per-log salt of Log.HMAC (required, at least 16 bytes). Keep it sealed.
	HMACKey []byte
	// LogID names a new log ([A-Za-z0-9._-], at most 64 bytes); random if empty. When
	// reopening, it must match the file's log id if set.
	LogID string
	// CheckpointEvery is the number of records between checkpoints; DefaultCheckpointEvery
	// if zero.
	CheckpointEvery int
	// CheckpointInterval, if positive, also makes a checkpoint every interval in which
	// records were appended (the "every T seconds" rule), bounding the unsigned tail in time.
	CheckpointInterval time.Duration
	// Clock supplies Event.Time when a caller leaves it zero, and checkpoint times;
	// time.Now if nil.
	Clock func() time.Time
	// Continue, for a new file, is the Head of the previous file of the same log (after its
	// Close): the chain continues from it (rotation). For an existing file it must match the
	// file's first record.
	Continue *Head
	// VerifyFromCheckpoint makes Open check the file only from its last checkpoint record
	// whose hash and signature verify (searched for in the last 64 MiB; the whole file if
	// there is none): the records before it are not read, so Open's cost stays bounded as
	// the log grows (~16 µs and ~490 bytes per record otherwise: 1M records take ~16 s on
	// every unseal). Tampering before that checkpoint is then found by Verify (`coffer
	// audit verify`) only, not by Open. Ignored with Continue.
	VerifyFromCheckpoint bool
	// MaxFileBytes, if positive, rotates the file once it holds at least this many bytes of
	// records: it is closed with a checkpoint, renamed to RotatedName(path, n) and a new file
	// continues the chain at path (rotate.go). Zero never rotates. Ignored by writer sinks.
	MaxFileBytes int64
	// OnRotate, if set, is called by the committer (holding the commit slot) after each rotation with the
	// rotated file's name, or with the error that kept the file from rotating (the log then
	// goes on in the same file and tries again later). It must not call the Log.
	OnRotate func(rotated string, err error)
	// SyncInterval, if positive, lets Append return once its record is written to the file
	// (in the operating system's cache: it survives the process being killed) and syncs the
	// file to disk at most SyncInterval later, like Vault's file audit device; a power loss
	// can then lose up to SyncInterval of records. A failed sync fails every later Append
	// and Checkpoint (the log fails closed). Zero, the default, syncs before Append returns.
	SyncInterval time.Duration
	// LazySyncInterval, if positive, is SyncInterval for the records appended with
	// AppendLazy only (the server uses it for operations that change no stored state):
	// they return once written, and are synced within LazySyncInterval or by the next
	// Append's sync, whichever comes first. Zero makes AppendLazy the same as Append.
	LazySyncInterval time.Duration
}

// Log is an append-only, hash-chained audit log. Its methods are safe for concurrent use.
type Log struct {
	signer   crypto.Signer
	hmacKey  []byte
	logID    string
	every    int
	interval time.Duration
	clock    func() time.Time

	file *os.File  // nil for a writer sink
	w    io.Writer // the file or the sink's writer
	path string

	mu      sync.Mutex // guards queue, durable and closed
	queue   []*request // records that return once written (AppendLazy)
	durable []*request // records that return once synced (flush)
	closed  bool
	wake    chan struct{} // a deferred sync is due (run)
	quit    chan struct{} // Close: stop run
	stopped chan struct{} // run has returned

	// commitSlot (capacity 1) is held by whoever writes records, rotates or closes: a caller
	// leading a group commit (submit), the background goroutine, or Close. Syncs run outside
	// it (syncWrites). Everything below is touched only by its holder (and by Open before
	// the log is shared), except where noted, and the chain state also under stateMu so
	// Head can read it. stopping is set by Close.
	commitSlot chan struct{}
	// flushSlot (capacity 1) is held by the caller leading the commit of the records that
	// wait for a sync, across their write and sync (flush).
	flushSlot chan struct{}
	stopping  bool

	stateMu   sync.Mutex
	seq       uint64
	head      string   // hash of record seq (genesis before seq 1)
	since     int      // records since the last checkpoint record
	span      fileSpan // times of the current file's records (Checkpoint.Span)
	size      int64    // length of the file's good records
	alloc     int64    // length of the file: size plus zero padding written ahead (prealloc.go)
	dirty     bool     // the file may hold bytes past size (a failed truncate)
	partialNL bool     // writer sink: a write failed part-way, start the next on a new line
	// opened is the identity of file, taken once per file (checkFile).
	opened struct {
		file *os.File
		info os.FileInfo
	}
	buf []byte

	// syncFile makes the file durable: the data only (fdatasync) or with its metadata
	// (fsync). Tests replace it to make syncs fail.
	syncFile func(f *os.File, dataOnly bool) error
	// syncEvery is Options.SyncInterval; syncErr is the sticky error of a failed sync,
	// which the commit slot holder adopts from bgSyncErr (adoptSyncErr).
	syncEvery time.Duration
	lazyEvery time.Duration // Options.LazySyncInterval
	syncErr   error
	// writeGen counts the writes of records to the file (written by the commit slot
	// holder); syncedGen is the last write known durable (written under syncMu, or under
	// fileRef's write lock). Records are unsynced while writeGen > syncedGen.
	writeGen, syncedGen atomic.Uint64
	// unsynced holds the state before each write not known durable (commit slot only).
	unsynced []unsyncedWrite
	// syncMu makes the syncs outside the commit slot one at a time (syncWrites), so each
	// covers all the writes made while the one before it ran. fileRef is read-held by each
	// of them for the file it syncs, from the commit slot holder's hold to finish; the
	// holder that closes or replaces the file takes it for writing first (deferredSync), so
	// the file outlives the syncs. bgSyncErr is the first failure of such a sync.
	syncMu    sync.Mutex
	fileRef   sync.RWMutex
	bgSyncErr atomic.Pointer[error]
	// growing says a goroutine is extending the padding (maybeGrow), and grown is where it
	// leaves the outcome for the commit slot holder (collectGrow).
	growing bool
	grown   chan grown
	// syncArmed says the background goroutine has been told to schedule the deferred sync
	// and has not run it yet: later batches need not wake it again. Commit slot only.
	syncArmed bool
	// concurrent counts down the commits since the last batch of several records (from
	// yieldBatches); while it is positive, submit and flush yield before they drain.
	// Changed by commit slot holders only; read before the slot is taken, so atomic.
	concurrent atomic.Int32

	// Rotation (rotate.go): commit slot holder only, except filesMu, which the holder keeps
	// while it renames and replaces the file and OpenFiles while it opens the files.
	maxBytes      int64
	onRotate      func(string, error)
	rotated       int   // n of the newest rotated file
	rotateRetryAt int64 // after a failed rotation: the size at which to try again
	filesMu       sync.Mutex

	failures atomic.Uint64
	syncs    atomic.Uint64 // successful write+fsync rounds (group commits), for benchmarks
}

// newLog validates opts and returns a Log without a writer.
func newLog(opts Options) (*Log, error) {
	if err := checkSigner(opts.Signer); err != nil {
		return nil, err
	}
	if len(opts.HMACKey) < 16 {
		return nil, errors.New("audit: Options.HMACKey must be at least 16 bytes")
	}
	if opts.SyncInterval < 0 || opts.LazySyncInterval < 0 {
		return nil, errors.New("audit: Options.SyncInterval and LazySyncInterval must not be negative")
	}
	if opts.MaxFileBytes < 0 {
		return nil, errors.New("audit: Options.MaxFileBytes must not be negative")
	}
	if opts.CheckpointEvery < 0 {
		return nil, errors.New("audit: Options.CheckpointEvery must not be negative")
	}
	if opts.LogID != "" {
		if err := checkLogID(opts.LogID); err != nil {
			return nil, err
		}
	}
	if c := opts.Continue; c != nil {
		if err := checkLogID(c.LogID); err != nil {
			return nil, fmt.Errorf("audit: Options.Continue: %w", err)
		}
		if c.Seq == 0 || !isHash(c.Hash) {
			return nil, errors.New("audit: Options.Continue must be the Head of a non-empty log")
		}
		if opts.LogID != "" && opts.LogID != c.LogID {
			return nil, fmt.Errorf("audit: Options.LogID %q differs from Options.Continue.LogID %q", opts.LogID, c.LogID)
		}
	}
	l := &Log{
		signer:     opts.Signer,
		hmacKey:    append([]byte(nil), opts.HMACKey...),
		every:      opts.CheckpointEvery,
		interval:   opts.CheckpointInterval,
		clock:      opts.Clock,
		syncFile:   syncFile,
		syncEvery:  opts.SyncInterval,
		lazyEvery:  opts.LazySyncInterval,
		maxBytes:   opts.MaxFileBytes,
		onRotate:   opts.OnRotate,
		wake:       make(chan struct{}, 1),
		grown:      make(chan grown, 1),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
		commitSlot: make(chan struct{}, 1),
		flushSlot:  make(chan struct{}, 1),
	}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	l.span.known = true // a new file or sink: every record goes through the writer
	return l, nil
}

// startFresh sets the chain state of a new log.
func (l *Log) startFresh(opts Options) error {
	switch {
	case opts.Continue != nil:
		l.logID, l.seq, l.head = opts.Continue.LogID, opts.Continue.Seq, opts.Continue.Hash
		return nil
	case opts.LogID != "":
		l.logID = opts.LogID
	default:
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("audit: log id: %w", err)
		}
		l.logID = hex.EncodeToString(b[:])
	}
	l.head = genesis(l.logID)
	return nil
}

// checkLogID reports whether id is a valid log id.
func checkLogID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("audit: log id must be 1–64 bytes, got %d", len(id))
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("audit: log id %q may hold only A–Z a–z 0–9 . _ -", id)
		}
	}
	return nil
}

// Open opens the log file at path, creating it (mode 0600) if needed, and continues its
// chain. It reads and checks the whole file first (or, with Options.VerifyFromCheckpoint,
// the part from its last good checkpoint): a torn final line is truncated away and
// reported in a recovery record appended next; any other bad line makes Open fail with a
// *VerifyError naming the line. Checkpoints in the file must verify under opts.Signer.
// Only one Log may have a file open at a time (an advisory lock enforces it across
// processes on Unix).
func Open(path string, opts Options) (*Log, error) {
	l, err := newLog(opts)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // written at offsets: see prealloc.go
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	fail := func(err error) (*Log, error) {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fail(err)
		}
	}
	l.file, l.w, l.path = f, f, path

	c := newChain(opts.Signer.Public(), opts.LogID)
	c.anyStart = opts.Continue == nil
	if opts.Continue != nil {
		c.continueFrom(*opts.Continue)
	}
	var start int64 // where checking begins: 0, or the last checkpoint (VerifyFromCheckpoint)
	if opts.VerifyFromCheckpoint && opts.Continue == nil {
		off, rec, ok, err := lastCheckpoint(f, fi.Size(), opts.Signer.Public(), opts.LogID)
		if err != nil {
			return fail(err)
		}
		if ok {
			start = off
			c.continueFrom(Head{LogID: rec.LogID, Seq: rec.Seq - 1, Hash: rec.Prev})
			c.span.startAt(rec.Checkpoint) // the records before it are not read
		}
	}
	lr := newLineReader(io.NewSectionReader(f, start, fi.Size()-start))
	lr.off = start
	last, verr := c.readAll(lr)
	if err := lr.failure(); err != nil {
		return fail(err)
	}
	if verr != nil {
		if start > 0 { // line numbers counted from the checkpoint: make them the file's
			n, err := countLines(io.NewSectionReader(f, 0, start))
			if err != nil {
				return fail(err)
			}
			verr.Line += n
		}
		return fail(verr)
	}
	var torn int64
	if c.torn != nil {
		torn = c.torn.size
	}
	if fi.Size() > c.goodLen { // a torn final line, or padding left by a crash
		if err := f.Truncate(c.goodLen); err != nil {
			return fail(fmt.Errorf("remove torn final line: %w", err))
		}
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	rotated, err := RotatedFiles(path)
	if err != nil {
		return fail(err)
	}
	if len(rotated) > 0 {
		l.rotated = rotatedIndex(rotated[len(rotated)-1])
	}
	if last == nil {
		// An empty file after a rotation continues the newest rotated file's chain.
		h, since, ok, err := newestRotatedHead(path, opts.Signer.Public(), opts.LogID)
		switch {
		case err != nil:
			return fail(err)
		case ok && opts.Continue == nil:
			l.logID, l.seq, l.head, l.since = h.LogID, h.Seq, h.Hash, since
		default:
			if err := l.startFresh(opts); err != nil {
				return fail(err)
			}
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return fail(err)
		}
	} else {
		l.logID, l.seq, l.head = c.logID, c.seq, c.head
		l.since = int(c.seq - c.signedThrough)
		l.span = c.span
	}
	l.size, l.alloc = c.goodLen, c.goodLen
	go l.run()
	if torn > 0 {
		ev := Event{Operation: "AuditRecovery", Reason: fmt.Sprintf("torn final line of %d bytes removed", torn)}
		if err := l.submit(&request{kind: KindRecovery, ev: ev}); err != nil {
			l.Close()
			return nil, fmt.Errorf("audit: open %s: record recovery: %w", path, err)
		}
	}
	return l, nil
}

// countLines counts the newlines in r.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// NewWriterSink returns a Log that writes the same records to w (e.g. os.Stdout for a log
// collector) without fsync and without reading anything back: it always starts a new chain
// (or continues opts.Continue). If a write to w fails, Append returns the error and the
// chain does not advance; if the failed write got part of a line out, the next write starts
// on a new line, and the stream holds one broken line that Verify will report.
func NewWriterSink(w io.Writer, opts Options) (*Log, error) {
	if w == nil {
		return nil, errors.New("audit: NewWriterSink: nil writer")
	}
	l, err := newLog(opts)
	if err != nil {
		return nil, err
	}
	if err := l.startFresh(opts); err != nil {
		return nil, err
	}
	l.w = w
	go l.run()
	return l, nil
}

// HMAC returns "hmac-sha256:" ‖ hex(HMAC-SHA256(Options.HMACKey, s)): a stable stand-in for
// a sensitive string (token id, client secret, password) that lets whoever holds the key
// check or correlate it without the audit file revealing it.
func (l *Log) HMAC(s string) string {
	return hmacString(l.hmacKey, s)
}

// Append writes ev as the next record and returns once it is durable (written and, for a
// file, fsynced). Concurrent calls share one write and fsync (group commit). If Append
// returns an error the caller must fail its request: no unaudited operation. Errors are
// ErrInvalidEvent (wrapped) for an event it refuses, ErrClosed, or the write/fsync error.
func (l *Log) Append(ev Event) error { return l.appendEvent(ev, false) }

// AppendLazy is Append for a record whose operation changed no stored state: with
// Options.LazySyncInterval set it returns once the record is written to the file (so it
// survives the process being killed, and a failed write still fails the caller) and the
// sync follows within that interval. Reads are the bulk of the data plane, and a sync per
// read batch made the log cost a third of their throughput (BENCHMARKS.md).
func (l *Log) AppendLazy(ev Event) error { return l.appendEvent(ev, l.lazyEvery > 0) }

// appendEvent validates and encodes ev, then queues it for the writer and waits.
func (l *Log) appendEvent(ev Event, lazy bool) error {
	if ev.Time.IsZero() {
		ev.Time = l.clock()
	}
	ev.Time = ev.Time.UTC()
	if err := ev.validate(); err != nil {
		l.failures.Add(1)
		return err
	}
	return l.submit(&request{kind: KindEvent, ev: ev, evJSON: appendEventJSON(nil, &ev), lazy: lazy})
}

// Checkpoint appends a signed checkpoint of the current head now and returns it, for the
// caller to export off the host (and later pass to Verify as VerifyOptions.ExpectHead).
func (l *Log) Checkpoint() (Checkpoint, error) {
	r := &request{kind: KindCheckpoint}
	if err := l.submit(r); err != nil {
		return Checkpoint{}, err
	}
	return *r.cp, nil
}

// Close writes a final checkpoint if any record followed the last one, stops the writer and
// closes the file (not the writer of a sink). Appends after Close fail with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true // nothing queues after this
	l.mu.Unlock()
	l.flushSlot <- struct{}{} // no flush leader is between its write and its sync
	l.commitSlot <- struct{}{}
	l.mu.Lock()
	batch := append(append(l.queue, l.durable...), &request{kind: kindClose})
	l.queue, l.durable = nil, nil
	l.mu.Unlock()
	p := l.commit(batch) // what is still queued, then the final checkpoint
	l.deferredSync()
	if p != nil {
		p.resolve(l, l.syncErr)
	}
	last := batch[len(batch)-1]
	if l.syncErr != nil && last.err == nil {
		last.err = l.syncErr
	}
	l.stopping = true
	<-l.commitSlot
	<-l.flushSlot
	close(l.quit)
	<-l.stopped
	err := last.err
	if l.file != nil {
		if terr := l.trimPadding(); err == nil && terr != nil {
			err = fmt.Errorf("audit: close: remove padding: %w", terr)
		}
		if cerr := l.file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: close: %w", cerr)
		}
	}
	return err
}

// Failures returns how many Append (and Checkpoint) calls failed and how many automatic
// checkpoints could not be written, for the audit_failures_total metric.
func (l *Log) Failures() uint64 {
	return l.failures.Load()
}

// Head returns the log id, seq and hash of the last record written (durable once its
// Append has returned).
func (l *Log) Head() Head {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return Head{LogID: l.logID, Seq: l.seq, Hash: l.head}
}

// Path returns the file a log was opened on ("" for a writer sink).
func (l *Log) Path() string { return l.path }
