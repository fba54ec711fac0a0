package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sinkLog returns the bytes of a log of n events with a checkpoint every `every` records,
// written through a writer sink (no fsync: fast enough for large logs).
func sinkLog(t *testing.T, opts Options, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	l, err := NewWriterSink(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if err := l.Append(testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestVerifyFromCheckpoint: with Options.VerifyFromCheckpoint, Open continues the chain
// exactly as a full check does, still refuses a file whose records after the last good
// checkpoint were tampered with (naming the file's line), and leaves what lies before that
// checkpoint to Verify.
func TestVerifyFromCheckpoint(t *testing.T) {
	key := newSigner(t)
	opts := testOptions(key, "log-a", 5)
	fast := opts
	fast.VerifyFromCheckpoint = true
	// 12 events: checkpoints at seq 6, 12, 18 (Close); then 2 events (19, 20) unsigned.
	base := sinkLog(t, opts, 15)
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(base), "\n"), "\n") {
		lines = append(lines, l)
	}
	extra := sinkLog(t, Options{Signer: key, HMACKey: opts.HMACKey, LogID: "log-a", CheckpointEvery: 1000,
		Continue: &Head{LogID: "log-a", Seq: uint64(len(lines)), Hash: parseLine(t, lines[len(lines)-1]).Hash}}, 2)
	all := append(lines, strings.Split(strings.TrimSuffix(string(extra), "\n"), "\n")...)
	all = all[:len(all)-1] // drop the sink's closing checkpoint: leave an unsigned tail of 2

	tests := []struct {
		name     string
		tamper   func([]string) []string
		wantKind string // "" if Open must succeed
		wantLine int
	}{
		{name: "ok/untouched", tamper: func(l []string) []string { return l }},
		{name: "ok/edited-before-the-last-checkpoint-left-to-verify",
			tamper: func(l []string) []string { l[1] = strings.Replace(l[1], `"status":200`, `"status":201`, 1); return l }},
		{name: "fail/edited-after-the-last-checkpoint", wantKind: BadHash, wantLine: len(all) - 1,
			tamper: func(l []string) []string {
				l[len(l)-2] = strings.Replace(l[len(l)-2], `"status":200`, `"status":201`, 1)
				return l
			}},
		{name: "fail/deleted-after-the-last-checkpoint", wantKind: BadGap, wantLine: len(all) - 1,
			tamper: func(l []string) []string { return append(l[:len(l)-2], l[len(l)-1]) }},
		// Its signature is inside its hash, so the edit shows as a hash mismatch.
		{name: "fail/forged-last-checkpoint", wantKind: BadHash, wantLine: 18,
			tamper: func(l []string) []string { l[17] = strings.Replace(l[17], `"sig":"`, `"sig":"AAAA`, 1); return l }},
		{name: "fail/no-good-checkpoint-checks-everything", wantKind: BadHash, wantLine: 2,
			tamper: func(l []string) []string {
				for _, i := range []int{5, 11, 17} {
					l[i] = strings.Replace(l[i], `"sig":"`, `"sig":"AAAA`, 1)
				}
				l[1] = strings.Replace(l[1], `"status":200`, `"status":201`, 1)
				return l
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeLines(t, dir, "audit.log", tt.tamper(append([]string(nil), all...)))
			l, err := Open(path, fast)
			if tt.wantKind != "" {
				if err == nil {
					l.Close()
					t.Fatalf("Open = nil; want %s at line %d", tt.wantKind, tt.wantLine)
				}
				if v := asVerifyError(t, err); v.Kind != tt.wantKind || v.Line != tt.wantLine {
					t.Errorf("Open = %v; want %s at line %d", err, tt.wantKind, tt.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			if h := l.Head(); h.Seq != uint64(len(all)) || h.Hash != parseLine(t, all[len(all)-1]).Hash {
				t.Errorf("Head = %+v; want seq %d and the last record's hash", h, len(all))
			}
			if err := l.Append(testEvent(99)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
			if strings.Contains(tt.name, "edited-before") {
				if v := asVerifyError(t, err); v.Kind != BadHash || v.Line != 2 {
					t.Errorf("Verify = %v; want hash at line 2", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			// The 2 unsigned events, the new one and Close's checkpoint: the chain state
			// (records since the last checkpoint) carried over.
			checkReport(t, rep, Report{Records: len(all) + 2, LastSeq: uint64(len(all) + 2), LastCheckpointSeq: uint64(len(all) + 2)})
		})
	}
}

// TestVerifyFromCheckpointFarBack: the last checkpoint lies more than tailWindowMin before
// the end, so the search window has to grow; and a torn tail after it is still recovered.
func TestVerifyFromCheckpointFarBack(t *testing.T) {
	key := newSigner(t)
	opts := testOptions(key, "log-a", 100000)
	b := sinkLog(t, opts, 1)                      // seq 1 event, 2 checkpoint (Close)
	n := tailWindowMin/len(b) + tailWindowMin/400 // well past 1 MiB of events after it
	more := sinkLog(t, Options{Signer: key, HMACKey: opts.HMACKey, LogID: "log-a", CheckpointEvery: 100000,
		Continue: &Head{LogID: "log-a", Seq: 2, Hash: parseLine(t, strings.Split(string(b), "\n")[1]).Hash}}, n)
	more = more[:bytes.LastIndexByte(more[:len(more)-1], '\n')+1] // without its closing checkpoint
	content := append(append(b, more...), `{"seq":99,"ki`...)
	if len(content)-len(b) <= tailWindowMin {
		t.Fatalf("only %d bytes after the checkpoint; want more than %d", len(content)-len(b), tailWindowMin)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	fast := opts
	fast.VerifyFromCheckpoint = true
	l, err := Open(path, fast)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if h := l.Head(); h.Seq != uint64(2+n+1) { // and the recovery record of the torn line
		t.Errorf("Head seq = %d; want %d", h.Seq, 2+n+1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, key.Public(), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	// seq 1–2, n events, the recovery record of the torn line, Close's checkpoint.
	checkReport(t, rep, Report{LastSeq: uint64(2 + n + 2), LastCheckpointSeq: uint64(2 + n + 2)})
}

// TestVerifyFromCheckpointStopsAtHole: a power loss can leave a hole in unsynced records (a
// page of padding not overwritten) with a whole checkpoint after it (TestAuditCrashPoints
// found it). Readers stop at the hole, so Open must not continue from that checkpoint: the
// records appended next would lie where Verify sees only a torn tail.
func TestVerifyFromCheckpointStopsAtHole(t *testing.T) {
	opts := testOptions(newSigner(t), "log-a", 4)
	opts.VerifyFromCheckpoint = true
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, path, opts, 10) // checkpoints at seq 5, 10 and 13 (Close)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	start := len(bytes.Join(lines[:6], nil)) // line 7 (seq 7) lost: zeros, its newline too
	copy(b[start:], make([]byte, len(lines[6])))
	b = append(b, make([]byte, 4096)...) // and the padding after the records
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := verifyFile(t, path, opts.Signer.Public(), VerifyOptions{}); err != nil || rep.LastSeq != 6 || rep.TornBytes == 0 {
		t.Fatalf("Verify of the crashed file = %+v, %v; want seq 6 and a torn tail", rep, err)
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(testEvent(99)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFile(t, path, opts.Signer.Public(), VerifyOptions{})
	if err != nil || rep.TornBytes != 0 || rep.LastSeq != 9 { // recovery 7, event 8, checkpoint 9
		t.Fatalf("Verify after reopening and appending = %+v, %v; want seq 9 (recovery, event, checkpoint) and nothing torn", rep, err)
	}
	if !strings.Contains(readLines(t, path)[7], "req-0099") {
		t.Errorf("the event appended after reopening is not seq 8")
	}
}
