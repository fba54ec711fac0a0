package audit

import (
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
	var dataSyncs atomic.Int64
	l.syncFile = func(f *os.File, dataOnly bool) error {
		if dataOnly {
			dataSyncs.Add(1)
		}
		return syncFile(f, dataOnly)
	}
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
