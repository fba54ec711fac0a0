package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSyncIntervalDefersSyncs: with SyncInterval, Append returns without a sync of its own;
// the writer syncs once per interval in which records were written, and the closed log
// holds every record and verifies.
func TestSyncIntervalDefersSyncs(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := testOptions(key, "log-s", 50)
	opts.SyncInterval = 20 * time.Millisecond
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	dataSyncs := countDataSyncs(l)
	// 200 appends spread over ~10 sync intervals: one data sync per interval at most, not
	// one per append.
	const n = 200
	for i := range n {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dataSyncs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := dataSyncs.Load(); got == 0 || got > n/2 {
		t.Errorf("deferred data syncs = %d for %d appends; want at least one and far fewer than one per append", got, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil || rep.Records-rep.Checkpoints != n {
		t.Fatalf("Verify = %+v, %v; want %d events", rep, err, n)
	}
}

// TestSyncIntervalFailsClosed: after a deferred sync fails, every later Append fails and
// Close reports it.
func TestSyncIntervalFailsClosed(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := testOptions(key, "log-f", 50)
	opts.SyncInterval = 5 * time.Millisecond
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly {
			return syscall.EIO
		}
		return syncFile(f, dataOnly)
	}
	if err := l.Append(testEvent(1)); err != nil {
		t.Fatalf("Append before the deferred sync = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := l.Append(testEvent(2))
		if errors.Is(err, syscall.EIO) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append after a failed deferred sync = %v; want the sync's EIO", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Append(testEvent(3)); !errors.Is(err, syscall.EIO) {
		t.Errorf("Append = %v; want it to keep failing", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close = %v; want the sync failure", err)
	}
}

// TestLazySyncOnlyForLazyAppends: with LazySyncInterval, an AppendLazy returns without a
// sync of its own and the writer syncs within the interval, while an Append still returns
// only after a sync (which also covers the lazy records before it). Without the option
// AppendLazy syncs like Append.
func TestLazySyncOnlyForLazyAppends(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"lazy", time.Hour}, {"off", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			key := newSigner(t)
			path := filepath.Join(t.TempDir(), "audit.log")
			opts := testOptions(key, "log-l", 1000)
			opts.LazySyncInterval = tc.interval
			l, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			dataSyncs := countDataSyncs(l)
			for i := range 20 {
				if err := l.AppendLazy(testEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			lazySyncs := dataSyncs.Load()
			if tc.interval > 0 && lazySyncs != 0 {
				t.Errorf("20 lazy appends (interval 1h) made %d syncs; want 0", lazySyncs)
			}
			if tc.interval == 0 && lazySyncs != 20 {
				t.Errorf("20 lazy appends without the option made %d syncs; want 20", lazySyncs)
			}
			// The records are in the file already: a reader (or a killed process) sees them.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b[:max(0, bytes.IndexByte(b, 0))], []byte("\n")); n < 20 {
				t.Errorf("the file holds %d records after 20 lazy appends; want them written", n)
			}
			if err := l.Append(testEvent(99)); err != nil {
				t.Fatal(err)
			}
			if got := dataSyncs.Load() - lazySyncs; got != 1 {
				t.Errorf("a durable append after lazy ones made %d syncs; want 1", got)
			}
			if l.pendingSync() {
				t.Error("after a durable append's sync the log still counts records as unsynced")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if err != nil || rep.Records-rep.Checkpoints != 21 {
				t.Fatalf("Verify = %+v, %v; want 21 events", rep, err)
			}
		})
	}
}

// TestLazySyncFollows: a lazy record is synced by the writer within LazySyncInterval even
// when nothing else is appended.
func TestLazySyncFollows(t *testing.T) {
	key := newSigner(t)
	opts := testOptions(key, "log-z", 1000)
	opts.LazySyncInterval = 10 * time.Millisecond
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dataSyncs := countDataSyncs(l)
	// Three rounds: each round's records must get a sync of their own after the previous
	// round's (the background goroutine is woken once per deferred sync, not per batch).
	for round := int64(1); round <= 3; round++ {
		for i := range 5 {
			if err := l.AppendLazy(testEvent(int(round)*10 + i)); err != nil {
				t.Fatal(err)
			}
		}
		// The sync runs outside the commit slot: it has ended once the log counts nothing
		// unsynced.
		deadline := time.Now().Add(5 * time.Second)
		for dataSyncs.Load() < round || l.pendingSync() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the lazy records were not synced within 5 s (interval 10 ms; %d syncs so far, unsynced: %v)", round, dataSyncs.Load(), l.pendingSync())
			}
			time.Sleep(2 * time.Millisecond)
		}
		if got := dataSyncs.Load(); got != round {
			t.Errorf("round %d: %d syncs so far; want one per round", round, got)
		}
	}
}

// countDataSyncs counts l's data syncs (fdatasync) from now on.
func countDataSyncs(l *Log) *atomic.Int64 {
	var n atomic.Int64
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly {
			n.Add(1)
		}
		return syncFile(f, dataOnly)
	}
	return &n
}

// TestDeferredSyncDoesNotBlockAppends: while the background goroutine's deferred sync waits
// on a slow disk, lazy appends are still written and return (only a sync-waiting append
// would wait); the file stays open until that sync ends, even across Close; and the closed
// log holds every record.
func TestDeferredSyncDoesNotBlockAppends(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := testOptions(key, "log-d", 50)
	opts.LazySyncInterval = time.Millisecond
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	syncAfter := make(chan error, 1)
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly && blocked.CompareAndSwap(false, true) { // the first deferred sync hangs
			close(entered)
			<-release
			err := syncFile(f, dataOnly) // the file must still be open
			syncAfter <- err
			return err
		}
		return syncFile(f, dataOnly)
	}
	if err := l.AppendLazy(testEvent(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no deferred sync started")
	}
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= 20; i++ {
			if err := l.AppendLazy(testEvent(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("lazy appends waited for the deferred sync of earlier records")
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	time.Sleep(20 * time.Millisecond) // let Close reach the sync it must wait for
	close(release)
	if err := <-syncAfter; err != nil {
		t.Errorf("the deferred sync's file after Close began: %v; want it still open", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil || rep.Records-rep.Checkpoints != 21 {
		t.Fatalf("Verify = %+v, %v; want 21 events", rep, err)
	}
}

// TestDurableSyncDoesNotBlockOthers: while a durable append waits for a slow sync, a lazy
// append is still written and returns (it waits for no sync), and a durable one queues for
// the next flush, which writes and syncs it after the slow sync (one sync serves every
// durable record that arrived meanwhile). Before, the leader held the commit slot through
// its sync, so one tenant's writes stalled every tenant's reads.
func TestDurableSyncDoesNotBlockOthers(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := testOptions(key, "log-o", 50)
	opts.LazySyncInterval = time.Hour // lazy records are synced by the next durable append
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	var syncs atomic.Int64
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly {
			syncs.Add(1)
			if blocked.CompareAndSwap(false, true) { // the first data sync hangs
				close(entered)
				<-release
			}
		}
		return syncFile(f, dataOnly)
	}
	first := make(chan error, 1)
	go func() { first <- l.Append(testEvent(0)) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the durable append did not start its sync")
	}
	lazy := make(chan error, 1)
	go func() { lazy <- l.AppendLazy(testEvent(1)) }()
	select {
	case err := <-lazy:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a lazy append waited for another caller's sync")
	}
	second := make(chan error, 1)
	go func() { second <- l.Append(testEvent(2)) }()
	select {
	case err := <-second:
		close(release)
		t.Fatalf("the second durable append returned (%v) before any sync covering it", err)
	case err := <-first:
		close(release)
		t.Fatalf("the first durable append returned (%v) before its sync", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d data syncs; want 2 (the hung one, then one for the durable record that queued meanwhile)", n)
	}
	if l.pendingSync() {
		t.Error("records unsynced after both durable appends returned")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil || rep.Records-rep.Checkpoints != 3 {
		t.Fatalf("Verify = %+v, %v; want 3 events", rep, err)
	}
}

// TestFailedSyncAfterLazyRecordFailsClosed: a durable append's sync that fails while it also
// covers a lazy record — whose caller was told it was written — cannot be undone by cutting
// the file back (that record would vanish after it was acknowledged), so the log fails
// closed, as after a failed deferred sync. Without a lazy record in its range the same
// failure is undone and appends resume (TestSyncFailureFailsAppend).
func TestFailedSyncAfterLazyRecordFailsClosed(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := testOptions(key, "log-c", 50)
	opts.LazySyncInterval = time.Hour
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly && failing.Load() {
			return syscall.EIO
		}
		return syncFile(f, dataOnly)
	}
	if err := l.Append(testEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendLazy(testEvent(2)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if err := l.Append(testEvent(3)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append whose sync fails = %v; want EIO", err)
	}
	failing.Store(false)
	if err := l.Append(testEvent(4)); !errors.Is(err, syscall.EIO) {
		t.Errorf("Append after a failed sync that covered an acknowledged lazy record = %v; want the log to keep failing (EIO)", err)
	}
	if err := l.AppendLazy(testEvent(5)); !errors.Is(err, syscall.EIO) {
		t.Errorf("AppendLazy after it = %v; want EIO", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close = %v; want the sync failure", err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got := rep.Records - rep.Checkpoints; got < 2 {
		t.Errorf("the log holds %d events; want at least the two acknowledged ones", got)
	}
}
