package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	}{
		{"recover/half-a-record", func(last string) string { return last[:len(last)/2] }},
		{"recover/record-without-newline", func(last string) string { return last }},
		{"recover/zero-filled-block", func(string) string { return strings.Repeat("\x00", 4096) }},
		{"recover/garbage-line-with-newline", func(string) string { return "{\"seq\":9,\"kin\n" }},
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
			wantReason := fmt.Sprintf("torn final line of %d bytes removed", len(tail))
			if rec.Kind != KindRecovery || rec.Seq != 5 || rec.Reason != wantReason {
				t.Errorf("record after the good lines = kind %q seq %d reason %q; want recovery, 5, %q",
					rec.Kind, rec.Seq, rec.Reason, wantReason)
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if err != nil {
				t.Fatalf("Verify after recovery = %v", err)
			}
			checkReport(t, rep, Report{Records: 7, LastSeq: 7, LastCheckpointSeq: 7})
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

func TestCanaryNeverWritten(t *testing.T) {
	key := newSigner(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, testOptions(key, "log-a", 2))
	if err != nil {
		t.Fatal(err)
	}
	canary := "CANARY-" + hex.EncodeToString(randomBytes(t, 16))
	h := l.HMAC(canary)
	ev := testEvent(1)
	ev.CorrelationID = h
	ev.CallerOID = h
	ev.CallerAppID = h
	ev.ObjectID = h
	ev.Reason = "token " + h
	for i := 0; i < 3; i++ {
		if err := l.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{
		canary,
		strings.ToLower(canary),
		hex.EncodeToString([]byte(canary)),
		base64.StdEncoding.EncodeToString([]byte(canary)),
		base64.RawURLEncoding.EncodeToString([]byte(canary)),
	} {
		if bytes.Contains(content, []byte(form)) {
			t.Errorf("audit file contains the canary as %q", form)
		}
	}
	if !bytes.Contains(content, []byte(h)) {
		t.Errorf("audit file lacks the canary's HMAC %q", h)
	}
}

func TestHMAC(t *testing.T) {
	key := newSigner(t)
	opts := testOptions(key, "log-a", 10)
	l, err := NewWriterSink(io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := hmac.New(sha256.New, opts.HMACKey)
	m.Write([]byte("s3cret"))
	want := "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
	if got := l.HMAC("s3cret"); got != want {
		t.Errorf("HMAC(%q) = %q; want %q", "s3cret", got, want)
	}
	opts.HMACKey = []byte("another per-log salt, 32 bytes..")
	l2, err := NewWriterSink(io.Discard, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.HMAC("s3cret") == want {
		t.Errorf("HMAC under another salt = the same value; want a different one")
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendRejectsInvalidEvents(t *testing.T) {
	key := newSigner(t)
	var out bytes.Buffer
	l, err := NewWriterSink(&out, testOptions(key, "log-a", 10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		name   string
		modify func(*Event)
	}{
		{"fail/no-operation", func(e *Event) { e.Operation = "" }},
		{"fail/unknown-result", func(e *Event) { e.Result = "ok" }},
		{"fail/empty-result", func(e *Event) { e.Result = "" }},
		{"fail/long-reason", func(e *Event) { e.Reason = strings.Repeat("r", MaxReasonLen+1) }},
		{"fail/long-object-id", func(e *Event) { e.ObjectID = strings.Repeat("o", MaxFieldLen+1) }},
		{"fail/invalid-utf8", func(e *Event) { e.ClientAddr = "\xff\xfe" }},
		{"fail/year-10000", func(e *Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"fail/negative-status", func(e *Event) { e.Status = -1 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent(1)
			tt.modify(&ev)
			if err := l.Append(ev); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Append = %v; want ErrInvalidEvent", err)
			}
			if got := l.Failures(); got != uint64(i+1) {
				t.Errorf("Failures = %d; want %d", got, i+1)
			}
		})
	}
	if out.Len() != 0 {
		t.Errorf("refused events wrote %d bytes; want none", out.Len())
	}
}

// flakyWriter fails while fail is set, after writing partial bytes of the buffer.
type flakyWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	fail    bool
	partial int
}

var errPipeClosed = errors.New("pipe closed")

func (w *flakyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		n := min(w.partial, len(p))
		w.buf.Write(p[:n])
		return n, errPipeClosed
	}
	return w.buf.Write(p)
}

func (w *flakyWriter) set(fail bool) {
	w.mu.Lock()
	w.fail = fail
	w.mu.Unlock()
}

func TestWriterSinkFailure(t *testing.T) {
	key := newSigner(t)
	tests := []struct {
		name        string
		partial     int    // bytes a failing write gets out
		wantBadLine int    // 0: the output verifies
		wantKind    string // of the Verify error
	}{
		{name: "fail-closed/nothing-written", partial: 0},
		{name: "fail-closed/part-of-a-line-written", partial: 40, wantBadLine: 3, wantKind: BadSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &flakyWriter{partial: tt.partial}
			l, err := NewWriterSink(w, testOptions(key, "log-a", 1000))
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 2; i++ {
				if err := l.Append(testEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			w.set(true)
			err = l.Append(testEvent(3))
			if !errors.Is(err, errPipeClosed) {
				t.Fatalf("Append to a failing writer = %v; want the writer's error (the request must fail)", err)
			}
			if l.Failures() != 1 {
				t.Errorf("Failures = %d; want 1", l.Failures())
			}
			if h := l.Head(); h.Seq != 2 {
				t.Errorf("Head after a failed write = seq %d; want 2 (not advanced)", h.Seq)
			}
			w.set(false)
			if err := l.Append(testEvent(4)); err != nil {
				t.Fatalf("Append after the writer recovered = %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(bytes.NewReader(w.buf.Bytes()), key.Public(), VerifyOptions{})
			if tt.wantBadLine == 0 {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				checkReport(t, rep, Report{Records: 4, Checkpoints: 1, LastSeq: 4})
				return
			}
			v := asVerifyError(t, err)
			if v.Line != tt.wantBadLine || v.Kind != tt.wantKind {
				t.Errorf("Verify = %v; want %s at line %d (the partial line)", err, tt.wantKind, tt.wantBadLine)
			}
		})
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

func TestRotationContinuesChain(t *testing.T) {
	dir := t.TempDir()
	key := newSigner(t)
	opts := testOptions(key, "log-a", 1000)
	first, second := filepath.Join(dir, "audit-1.log"), filepath.Join(dir, "audit-2.log")
	writeLog(t, first, opts, 3) // seq 1–3, checkpoint 4
	rep, err := verifyFile(t, first, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prev := Head{LogID: rep.LogID, Seq: rep.LastSeq, Hash: rep.HeadHash}

	next := opts
	next.LogID = ""
	next.Continue = &prev
	writeLog(t, second, next, 2) // seq 5–6, checkpoint 7
	if got := parseLine(t, readLines(t, second)[0]); got.Seq != 5 || got.Prev != prev.Hash {
		t.Fatalf("first record of the new file = seq %d prev %.16s; want 5, %.16s", got.Seq, got.Prev, prev.Hash)
	}
	// Reopening the rotated file needs no Continue.
	l, err := Open(second, testOptions(key, "", 1000))
	if err != nil {
		t.Fatalf("reopen rotated file = %v", err)
	}
	if h := l.Head(); h.Seq != 7 || h.LogID != "log-a" {
		t.Errorf("reopened Head = %+v; want seq 7 of log-a", h)
	}
	l.Close()

	f1, _ := os.Open(first)
	f2, _ := os.Open(second)
	defer f1.Close()
	defer f2.Close()
	rep, err = Verify(io.MultiReader(f1, f2), key.Public(), VerifyOptions{})
	if err != nil || rep.LastSeq != 7 {
		t.Errorf("Verify(both files) = %+v, %v; want seq 1–7 valid", rep, err)
	}
	if _, err := verifyFile(t, second, key.Public(), VerifyOptions{}); err == nil || asVerifyError(t, err).Kind != BadGenesis {
		t.Errorf("Verify(second file alone) = %v; want %s", err, BadGenesis)
	}
	if _, err := verifyFile(t, second, key.Public(), VerifyOptions{Continue: &prev}); err != nil {
		t.Errorf("Verify(second file, Continue) = %v", err)
	}
	wrong := prev
	wrong.Hash = strings.Repeat("1", 64)
	if _, err := verifyFile(t, second, key.Public(), VerifyOptions{Continue: &wrong}); err == nil || asVerifyError(t, err).Kind != BadPrev {
		t.Errorf("Verify(second file, wrong Continue) = %v; want %s", err, BadPrev)
	}
}

func TestECDSACheckpoints(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, path, testOptions(key, "log-a", 2), 5)
	if _, err := verifyFile(t, path, &key.PublicKey, VerifyOptions{}); err != nil {
		t.Errorf("Verify(ECDSA) = %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := verifyFile(t, path, &other.PublicKey, VerifyOptions{}); err == nil || asVerifyError(t, err).Kind != BadCheckpointSignature {
		t.Errorf("Verify(other ECDSA key) = %v; want %s", err, BadCheckpointSignature)
	}
}

func TestOptionsValidation(t *testing.T) {
	key := newSigner(t)
	good := testOptions(key, "log-a", 10)
	tests := []struct {
		name   string
		modify func(*Options)
	}{
		{"fail/no-signer", func(o *Options) { o.Signer = nil }},
		{"fail/short-hmac-key", func(o *Options) { o.HMACKey = []byte("short") }},
		{"fail/bad-log-id", func(o *Options) { o.LogID = "a/b" }},
		{"fail/negative-checkpoint-every", func(o *Options) { o.CheckpointEvery = -1 }},
		{"fail/continue-empty-log", func(o *Options) { o.Continue = &Head{LogID: "log-a"} }},
		{"fail/continue-other-log", func(o *Options) {
			o.Continue = &Head{LogID: "log-b", Seq: 3, Hash: strings.Repeat("a", 64)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.modify(&o)
			if l, err := Open(filepath.Join(t.TempDir(), "a.log"), o); err == nil {
				l.Close()
				t.Errorf("Open = nil; want an error")
			}
			if l, err := NewWriterSink(io.Discard, o); err == nil {
				l.Close()
				t.Errorf("NewWriterSink = nil; want an error")
			}
		})
	}
}
