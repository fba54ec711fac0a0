package audit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newSigner returns a fresh Ed25519 checkpoint key.
func newSigner(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// testOptions returns Options for a test log.
func testOptions(signer crypto.Signer, logID string, every int) Options {
	return Options{
		Signer:          signer,
		HMACKey:         []byte("0123456789abcdef0123456789abcdef"),
		LogID:           logID,
		CheckpointEvery: every,
	}
}

// testEvent is a typical successful data-plane event, numbered i.
func testEvent(i int) Event {
	return Event{
		Time:          time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		CorrelationID: fmt.Sprintf("req-%04d", i),
		CallerOID:     "oid-alice",
		CallerAppID:   "app-1",
		CallerTenant:  "tenant-a",
		Tenant:        "tenant-a",
		Vault:         "vault1",
		Operation:     "KeySign",
		ObjectID:      "https://vault1.localhost/keys/k1/v1",
		Status:        200,
		Result:        ResultSuccess,
		ClientAddr:    "127.0.0.1:50000",
	}
}

// writeLog creates a log at path with n events and closes it.
func writeLog(t testing.TB, path string, opts Options, n int) {
	t.Helper()
	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatalf("Append(%d) = %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// readLines returns the lines of a file, without newlines.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// writeLines writes lines, each with a newline, to a new file in dir and returns its path.
func writeLines(t testing.TB, dir, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyFile runs Verify on a file.
func verifyFile(t testing.TB, path string, pub crypto.PublicKey, opts VerifyOptions) (Report, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f, pub, opts)
}

// parseLine decodes one line.
func parseLine(t testing.TB, line string) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return r
}

// encode returns r's line (no newline) with a hash recomputed after head h.
func encode(t testing.TB, r Record, h string) (string, string) {
	t.Helper()
	b, err := encodeLine(nil, &r, h)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b, []byte("\n"))), r.Hash
}

// rechain re-links lines[from:] to the chain before them as an attacker without the
// checkpoint key would: seq, prev and hash recomputed for every record. With
// fixCheckpoints, checkpoint payloads are rewritten to describe the new chain (their
// signatures then fail unless resign is the key they are signed with).
func rechain(t testing.TB, lines []string, from int, fixCheckpoints bool, resign crypto.Signer) []string {
	t.Helper()
	out := append([]string(nil), lines...)
	var seq uint64
	var head string
	if from > 0 {
		prev := parseLine(t, out[from-1])
		seq, head = prev.Seq, prev.Hash
	} else {
		head = genesis(parseLine(t, out[0]).LogID)
	}
	for i := from; i < len(out); i++ {
		r := parseLine(t, out[i])
		r.Seq, r.Prev, r.Hash = seq+1, head, ""
		if r.Seq == 1 {
			r.Prev = ""
		}
		if r.Checkpoint != nil && fixCheckpoints {
			r.Checkpoint.Seq, r.Checkpoint.HeadHash = seq, head
			if resign != nil {
				if err := sign(resign, r.Checkpoint); err != nil {
					t.Fatal(err)
				}
			}
		}
		out[i], head = encode(t, r, head)
		seq = r.Seq
	}
	return out
}

// asVerifyError returns err as a *VerifyError or fails the test.
func asVerifyError(t testing.TB, err error) *VerifyError {
	t.Helper()
	var v *VerifyError
	if !errors.As(err, &v) {
		t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
	}
	return v
}
