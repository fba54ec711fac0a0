package audit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
