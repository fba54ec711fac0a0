package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

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
