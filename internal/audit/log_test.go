package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	key := newSigner(t)
	path := filepath.Join(dir, "audit.log")
	opts := testOptions(key, "", 1000) // random log id

	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	for i := 1; i <= 5; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatalf("Append = %v", err)
		}
	}
	first := l.Head()
	if first.Seq != 5 || len(first.LogID) != 32 {
		t.Fatalf("Head = %+v; want seq 5 and a random 32-hex log id", first)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	l, err = Open(path, opts)
	if err != nil {
		t.Fatalf("reopen: Open = %v", err)
	}
	if h := l.Head(); h.Seq != 6 || h.LogID != first.LogID {
		t.Errorf("reopened Head = %+v; want seq 6 (after the Close checkpoint) of log %s", h, first.LogID)
	}
	for i := 6; i <= 10; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatalf("Append = %v", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{LogID: first.LogID})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	checkReport(t, rep, Report{Records: 12, Checkpoints: 2, LastSeq: 12, LastCheckpointSeq: 12})
	recs, err := queryFile(t, path, Filter{Tenant: "tenant-a"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("req-%04d", i+1); r.CorrelationID != want {
			t.Errorf("record %d CorrelationID = %q; want %q", i, r.CorrelationID, want)
		}
	}
	if len(recs) != 10 {
		t.Errorf("Query returned %d events; want 10", len(recs))
	}
}

// queryFile runs Query on a file.
func queryFile(t *testing.T, path string, f Filter) ([]Record, error) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	return Query(file, f)
}

func TestOpenTornFinalLine(t *testing.T) {
	key := newSigner(t)
	tests := []struct {
		name string
		tail func(lastLine string) string // what a crash left after the good lines
		// pad is how many bytes at the end of the tail are the writer's zero padding; the
		// rest is torn and reported in a recovery record (none if the tail is all padding).
		pad int
	}{
		{"recover/half-a-record", func(last string) string { return last[:len(last)/2] }, 0},
		{"recover/record-without-newline", func(last string) string { return last }, 0},
		{"recover/garbage-line-with-newline", func(string) string { return "{\"seq\":9,\"kin\n" }, 0},
		// The writer's preallocated zeros (prealloc.go) after a crash: padding, not torn.
		{"ok/zero-padding", func(string) string { return strings.Repeat("\x00", 4096) }, 4096},
		{"recover/half-a-record-then-padding", func(last string) string {
			return last[:50] + strings.Repeat("\x00", 4096)
		}, 4096},
		// An unsynced write whose first block was lost but a later one reached the disk.
		{"recover/lost-block-then-a-whole-record", func(last string) string {
			return strings.Repeat("\x00", 100) + last + "\n" + strings.Repeat("\x00", 100)
		}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			opts := testOptions(key, "log-a", 1000)
			writeLog(t, path, opts, 3) // seq 1–3 events, 4 checkpoint
			good := readLines(t, path)
			// A crash while writing record 5: its bytes are cut short.
			l, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Append(testEvent(4)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			all := readLines(t, path)
			tail := tt.tail(all[len(good)])
			content := strings.Join(good, "\n") + "\n" + tail
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}

			l, err = Open(path, opts)
			if err != nil {
				t.Fatalf("Open after a torn write = %v; want recovery", err)
			}
			if err := l.Append(testEvent(5)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, path)
			rec := parseLine(t, lines[len(good)])
			torn := len(tail) - tt.pad
			wantRecords := 7
			if torn == 0 {
				if rec.Kind != KindEvent || rec.Seq != 5 {
					t.Errorf("record after the good lines = kind %q seq %d; want the next event, 5 (padding is no torn line)", rec.Kind, rec.Seq)
				}
				wantRecords = 6
			} else {
				wantReason := fmt.Sprintf("torn final line of %d bytes removed", torn)
				if rec.Kind != KindRecovery || rec.Seq != 5 || rec.Reason != wantReason {
					t.Errorf("record after the good lines = kind %q seq %d reason %q; want recovery, 5, %q",
						rec.Kind, rec.Seq, rec.Reason, wantReason)
				}
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if err != nil {
				t.Fatalf("Verify after recovery = %v", err)
			}
			checkReport(t, rep, Report{Records: wantRecords, LastSeq: uint64(wantRecords), LastCheckpointSeq: uint64(wantRecords)})
			if rep.TornBytes != 0 {
				t.Errorf("Verify after recovery: TornBytes = %d; want 0", rep.TornBytes)
			}
		})
	}
}

func TestOpenRejectsBadFile(t *testing.T) {
	key := newSigner(t)
	tests := []struct {
		name     string
		tamper   func([]string) []string
		opts     func(Options) Options
		wantKind string
		wantLine int
	}{
		{
			name:     "fail/garbage-line-in-the-middle",
			tamper:   func(l []string) []string { l[2] = "not json"; return l },
			wantKind: BadSyntax, wantLine: 3,
		},
		{
			name:     "fail/edited-record",
			tamper:   func(l []string) []string { l[1] = strings.Replace(l[1], `"status":200`, `"status":201`, 1); return l },
			wantKind: BadHash, wantLine: 2,
		},
		{
			name:     "fail/edited-final-record-is-not-torn",
			tamper:   func(l []string) []string { l[6] = strings.Replace(l[6], `"log":"log-a"`, `"log":"log-x"`, 1); return l },
			wantKind: BadHash, wantLine: 7,
		},
		{
			name:     "fail/deleted-record",
			tamper:   func(l []string) []string { return append(l[:3], l[4:]...) },
			wantKind: BadGap, wantLine: 4,
		},
		{
			name:     "fail/other-signer",
			tamper:   func(l []string) []string { return l },
			opts:     func(o Options) Options { o.Signer = newSigner(t); return o },
			wantKind: BadCheckpointSignature, wantLine: 6,
		},
		{
			name:     "fail/other-log-id",
			tamper:   func(l []string) []string { return l },
			opts:     func(o Options) Options { o.LogID = "log-b"; return o },
			wantKind: BadSplice, wantLine: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(key, "log-a", 5)
			src := filepath.Join(dir, "src.log")
			writeLog(t, src, opts, 5) // seq 1–5 events, 6 checkpoint; Close adds none
			l, err := Open(src, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Append(testEvent(6)); err != nil { // seq 7
				t.Fatal(err)
			}
			l.Close()
			path := writeLines(t, dir, "audit.log", tt.tamper(readLines(t, src)[:7]))
			if tt.opts != nil {
				opts = tt.opts(opts)
			}
			l, err = Open(path, opts)
			if err == nil {
				l.Close()
				t.Fatalf("Open = nil; want %s at line %d", tt.wantKind, tt.wantLine)
			}
			v := asVerifyError(t, err)
			if v.Kind != tt.wantKind || v.Line != tt.wantLine {
				t.Errorf("Open = %v; want kind %s at line %d", err, tt.wantKind, tt.wantLine)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("line %d", tt.wantLine)) {
				t.Errorf("Open error %q does not name line %d", err, tt.wantLine)
			}
		})
	}
}

func TestOpenLockedAndFileMode(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("log file mode = %v; want 0600", perm)
	}
	if l2, err := Open(path, testOptions(key, "log-a", 10)); err == nil {
		l2.Close()
		t.Errorf("second Open of a log in use = nil; want an error")
	}
}

func TestConcurrentAppenders(t *testing.T) {
	const writers, each = 32, 40
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 100))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev := testEvent(i)
				ev.CorrelationID = fmt.Sprintf("w%02d-%03d", w, i)
				if err := l.Append(ev); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Append = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	// 1280 events; a checkpoint after every 100 records and one at Close.
	if rep.Records != writers*each+rep.Checkpoints || rep.Checkpoints != 13 || rep.UnsignedTail != 0 {
		t.Errorf("Verify = %+v; want %d events, 13 checkpoints, no unsigned tail", rep, writers*each)
	}
	recs, err := queryFile(t, path, Filter{Tenant: "tenant-a", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.CorrelationID]++
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if id := fmt.Sprintf("w%02d-%03d", w, i); seen[id] != 1 {
				t.Errorf("event %s appears %d times; want once", id, seen[id])
			}
		}
	}
}

func TestCheckpointOnDemand(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 1000))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint = %v", err)
	}
	if cp.Seq != 3 || cp.HeadHash != head.Hash || cp.LogID != "log-a" || !verifySig(key.Public(), &cp) {
		t.Errorf("Checkpoint = %+v; want a valid signature over seq 3, head %s", cp, head.Hash)
	}
	if err := l.Append(testEvent(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyFile(t, path, key.Public(), VerifyOptions{ExpectHead: &cp}); err != nil {
		t.Errorf("Verify(ExpectHead: exported checkpoint) = %v", err)
	}
	if err := l.Append(testEvent(5)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v; want ErrClosed", err)
	}
	if _, err := l.Checkpoint(); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close = %v; want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	key := newSigner(t)
	opts := testOptions(key, "log-a", 1000)
	opts.CheckpointInterval = 10 * time.Millisecond
	var out flakyWriter
	l, err := NewWriterSink(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(testEvent(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Head().Seq < 2 { // waits on the condition: the timed checkpoint landed
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint within 10s with CheckpointInterval 10ms; Head = %+v", l.Head())
		}
		time.Sleep(time.Millisecond)
	}
	out.mu.Lock()
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	out.mu.Unlock()
	if rec := parseLine(t, lines[1]); rec.Kind != KindCheckpoint {
		t.Errorf("record 2 kind = %q; want checkpoint", rec.Kind)
	}
}
