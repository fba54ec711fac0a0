package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

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

// rotatingLog opens a log at path that rotates past max bytes and collects OnRotate's calls.
func rotatingLog(t *testing.T, path string, key crypto.Signer, max int64) (*Log, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var rotated []string
	opts := testOptions(key, "log-a", 1000)
	opts.MaxFileBytes = max
	opts.OnRotate = func(name string, err error) {
		if err != nil {
			t.Errorf("rotation failed: %v", err)
			return
		}
		mu.Lock()
		rotated = append(rotated, name)
		mu.Unlock()
	}
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, &rotated
}

// logFiles is the rotated files of the log at path and then path.
func logFiles(t *testing.T, path string) []string {
	t.Helper()
	rotated, err := RotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return append(rotated, path)
}

// TestMaxFileBytesRotates writes past the limit from concurrent appenders: the log rotates
// at record boundaries into files that each end with a signed checkpoint, the files verify
// as one log (together, and each alone from the previous file's head), reopening continues
// the chain, OpenFiles reads every record, and tampering in a rotated file is found there.
func TestMaxFileBytesRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	key := newSigner(t)
	const max = 8 << 10
	l, rotated := rotatingLog(t, path, key, max)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Append(testEvent(g*100 + i)); err != nil {
					t.Errorf("Append = %v", err)
				}
			}
		})
	}
	wg.Wait()
	rc, err := l.OpenFiles(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Query(rc, Filter{Tenant: "tenant-a", Limit: 1000})
	rc.Close()
	if err != nil || len(recs) != 200 {
		t.Errorf("Query over OpenFiles = %d records, %v; want all 200 events", len(recs), err)
	}
	head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	files := logFiles(t, path)
	if len(files) < 6 || !slices.Equal(*rotated, files[:len(files)-1]) {
		t.Fatalf("files = %v, OnRotate reported %v; want at least 5 rotated files, all reported", files, *rotated)
	}
	var prev *Head
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		// The current file is empty if the last append filled the one before it.
		if lines := readLines(t, f); f != path {
			last := Record{Kind: "no"}
			if len(lines) > 0 {
				last = parseLine(t, lines[len(lines)-1])
			}
			if fi.Size() < max || fi.Size() > max+4<<10 || last.Kind != KindCheckpoint {
				t.Errorf("%s: %d bytes ending in a %s record; want %d bytes or a record more, ending in a checkpoint", f, fi.Size(), last.Kind, max)
			}
		}
		rep, err := verifyFile(t, f, key.Public(), VerifyOptions{Continue: prev})
		if err != nil {
			t.Errorf("Verify(%s alone, Continue %v) = %v", f, prev, err)
		}
		prev = &Head{LogID: rep.LogID, Seq: rep.LastSeq, Hash: rep.HeadHash}
	}
	shuffled := append([]string{path}, files[:len(files)-1]...)
	slices.Reverse(shuffled[1:])
	if ordered, err := OrderFiles(shuffled); err != nil || !slices.Equal(ordered, files) {
		t.Errorf("OrderFiles(%v) = %v, %v; want %v", shuffled, ordered, err, files)
	}
	rep, err := VerifyFiles(files, key.Public(), VerifyOptions{ExpectHead: &Checkpoint{Seq: head.Seq, HeadHash: head.Hash}})
	if err != nil || rep.LastSeq < head.Seq || rep.Records != int(rep.LastSeq) {
		t.Errorf("VerifyFiles = %+v, %v; want every record from seq 1 through the head %d", rep, err, head.Seq)
	}

	// Reopen: the chain and the numbering of rotated files go on.
	l, rotated = rotatingLog(t, path, key, max)
	for i := range 30 {
		if err := l.Append(testEvent(1000 + i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	files = logFiles(t, path)
	if len(*rotated) == 0 || (*rotated)[0] != RotatedName(path, len(shuffled)) {
		t.Errorf("after reopening, rotated %v; want to go on with %s", *rotated, RotatedName(path, len(shuffled)))
	}
	if _, err := VerifyFiles(files, key.Public(), VerifyOptions{}); err != nil {
		t.Errorf("VerifyFiles after reopening = %v", err)
	}

	// Tampering in a rotated file, and a rotated file removed.
	victim := files[2]
	orig, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(victim, bytes.Replace(orig, []byte(`"status":200`), []byte(`"status":201`), 1), 0o600)
	if _, err := VerifyFiles(files, key.Public(), VerifyOptions{}); err == nil || asVerifyError(t, err).Kind != BadHash || asVerifyError(t, err).File != victim {
		t.Errorf("VerifyFiles with an edited record in %s = %v; want %s there", victim, err, BadHash)
	}
	os.WriteFile(victim, orig, 0o600)
	without := slices.Delete(slices.Clone(files), 2, 3)
	if _, err := VerifyFiles(without, key.Public(), VerifyOptions{}); err == nil || asVerifyError(t, err).Kind != BadGap || asVerifyError(t, err).File != files[3] {
		t.Errorf("VerifyFiles without %s = %v; want %s in %s", victim, err, BadGap, files[3])
	}
}

// TestOpenAfterRotationCrash: a crash between renaming the full file and creating the new
// one leaves no file at path; Open continues the newest rotated file's chain instead of
// starting a new log at seq 1.
func TestOpenAfterRotationCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	key := newSigner(t)
	writeLog(t, path, testOptions(key, "log-a", 1000), 3) // seq 1–3, checkpoint 4
	if err := os.Rename(path, RotatedName(path, 1)); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, testOptions(key, "log-a", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Head(); h.Seq != 4 {
		t.Errorf("Head after the crash = %+v; want seq 4, the rotated file's checkpoint", h)
	}
	if err := l.Append(testEvent(9)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep, err := VerifyFiles(logFiles(t, path), key.Public(), VerifyOptions{}); err != nil || rep.LastSeq != 6 {
		t.Errorf("VerifyFiles = %+v, %v; want seq 1–6", rep, err)
	}
}
