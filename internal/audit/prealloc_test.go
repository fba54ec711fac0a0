package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestPaddingWhileOpen: while a log is open its file holds zero padding after the records
// (prealloc.go). Every acknowledged record is in the file at once, a copy of the file taken
// then (what a kill -9 leaves) verifies and reopens without a recovery record, and Close
// trims the padding away.
func TestPaddingWhileOpen(t *testing.T) {
	key := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 10))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	for i := 1; i <= 25; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	live, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != PreallocBytes {
		t.Errorf("open log file is %d bytes; want %d (records and zero padding)", len(live), PreallocBytes)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify of the open log = %v", err)
	}
	if rep.TornBytes != 0 || rep.LastSeq != head.Seq || rep.HeadHash != head.Hash {
		t.Errorf("Verify of the open log = %+v; want no torn bytes and the Head %+v", rep, head)
	}

	crashed := filepath.Join(dir, "crashed.log")
	if err := os.WriteFile(crashed, live, 0o600); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(crashed, testOptions(key, "log-a", 10))
	if err != nil {
		t.Fatalf("Open of the crashed copy = %v", err)
	}
	if h := l2.Head(); h != head {
		t.Errorf("Head after reopening the crashed copy = %+v; want %+v", h, head)
	}
	if err := l2.Append(testEvent(26)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, crashed)
	if rec := parseLine(t, lines[len(lines)-2]); rec.Kind != KindEvent || rec.Seq != head.Seq+1 {
		t.Errorf("record after the crash = kind %q seq %d; want event %d (padding is no torn line)", rec.Kind, rec.Seq, head.Seq+1)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = nil
	closed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(closed); n == 0 || n >= PreallocBytes || closed[n-1] != '\n' {
		t.Errorf("closed log file is %d bytes ending %q; want only its records", n, closed[max(n-1, 0):])
	}
}

// TestSyncFailureFailsAppend: when the sync after a write fails, every Append of that group
// commit fails (so its request fails instead of answering), the head does not advance, the
// file is cut back to the acknowledged records, and appends resume once syncs work again.
// With 16 concurrent writers: every acknowledged record is in the log exactly once, in one
// valid chain, and no failed one is.
func TestSyncFailureFailsAppend(t *testing.T) {
	const writers, each = 16, 30
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 50))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failing, flaky := false, true
	syncs := 0
	l.syncFile = func(f *os.File, dataOnly bool) error {
		mu.Lock()
		defer mu.Unlock()
		syncs++
		if failing || flaky && syncs%7 == 0 { // and every 7th sync fails while the writers run
			return syscall.EIO
		}
		return syncFile(f, dataOnly)
	}

	if err := l.Append(testEvent(1)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	failing = true
	mu.Unlock()
	before := l.Head()
	if err := l.Append(testEvent(2)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append when fsync fails = %v; want an error wrapping EIO (the request must fail)", err)
	}
	if h := l.Head(); h != before {
		t.Errorf("Head after a failed sync = %+v; want %+v (not advanced)", h, before)
	}
	if l.Failures() != 1 {
		t.Errorf("Failures = %d; want 1", l.Failures())
	}
	mu.Lock()
	failing = false
	mu.Unlock()

	acked := make([][]bool, writers)
	var wg sync.WaitGroup
	for w := range writers {
		acked[w] = make([]bool, each)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := testEvent(i)
				ev.CorrelationID = fmt.Sprintf("w%02d-%03d", w, i)
				err := l.Append(ev)
				if err != nil && !errors.Is(err, syscall.EIO) {
					t.Errorf("Append = %v; want nil or EIO", err)
				}
				acked[w][i] = err == nil
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	flaky = false
	mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep.TornBytes != 0 {
		t.Errorf("Verify: TornBytes = %d; want 0 (failed writes cut back)", rep.TornBytes)
	}
	recs, err := queryFile(t, path, Filter{Tenant: "tenant-a", Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.CorrelationID]++
	}
	nacked, nfailed := 0, 0
	for w := range writers {
		for i := range each {
			id := fmt.Sprintf("w%02d-%03d", w, i)
			want := 0
			if acked[w][i] {
				want = 1
				nacked++
			} else {
				nfailed++
			}
			if seen[id] != want {
				t.Errorf("event %s (acknowledged %v) appears %d times; want %d", id, acked[w][i], seen[id], want)
			}
		}
	}
	if nacked == 0 || nfailed == 0 {
		t.Errorf("%d acknowledged, %d failed appends; want some of each", nacked, nfailed)
	}
	t.Logf("%d acknowledged, %d failed appends", nacked, nfailed)
}

// TestPaddingGrowsAhead: the padding is extended before it runs out, by a goroutine that
// writes and syncs the zeros outside the commit slot, so appends go on while it syncs (a
// commit that extended it itself held every caller for a megabyte's write and fsync). When
// that extension fails, the log extends the padding itself later and loses nothing; Close
// leaves exactly the records.
func TestPaddingGrowsAhead(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			key := newSigner(t)
			path := filepath.Join(t.TempDir(), "audit.log")
			opts := testOptions(key, "log-g", 1000)
			opts.LazySyncInterval = time.Hour
			l, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Append(testEvent(0)); err != nil { // the first megabyte of padding
				t.Fatal(err)
			}
			entered, release := make(chan struct{}), make(chan struct{})
			var first atomic.Bool
			l.syncFile = func(f *os.File, dataOnly bool) error {
				if !dataOnly && first.CompareAndSwap(false, true) { // the next extension's sync hangs
					close(entered)
					<-release
					if fail {
						return syscall.EIO
					}
				}
				return syncFile(f, dataOnly)
			}
			n := 0
			appendLazy := func() error {
				n++
				return l.AppendLazy(testEvent(n))
			}
			// Until less than half the first megabyte is left, then 200 records written
			// into the padding while the extension's sync hangs.
			written := make(chan error, 1)
			go func() {
				for !first.Load() {
					if err := appendLazy(); err != nil || n > 1e5 {
						written <- fmt.Errorf("append %d: %v (the padding was never extended?)", n, err)
						return
					}
				}
				<-entered
				for range 200 {
					if err := appendLazy(); err != nil {
						written <- err
						return
					}
				}
				written <- nil
			}()
			select {
			case err := <-written:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				close(release)
				t.Fatal("appends waited for the sync of the padding's extension")
			}
			at := n - 200
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() <= PreallocBytes {
				t.Errorf("file is %d bytes while the extension's sync hangs; want the zeros written after the first %d", st.Size(), PreallocBytes)
			}
			close(release)
			for range 4000 { // well past the first megabyte
				if err := appendLazy(); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Append(testEvent(n + 1)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if err != nil || rep.Records-rep.Checkpoints != n+2 || rep.TornBytes != 0 {
				t.Fatalf("Verify = %+v, %v; want %d events and no torn bytes", rep, err, n+2)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) <= PreallocBytes || b[len(b)-1] != '\n' || bytes.IndexByte(b, 0) >= 0 {
				t.Errorf("closed log is %d bytes, last byte %q, NUL at %d; want only records, past the first megabyte", len(b), b[len(b)-1:], bytes.IndexByte(b, 0))
			}
			t.Logf("extension began after %d records; 200 written while its sync hung", at)
		})
	}
}
