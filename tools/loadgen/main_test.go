package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPUProfileWrittenOnError: a run that fails early still stops its -cpuprofile, so the
// file holds a whole profile (gzip-compressed protobuf) rather than nothing.
func TestCPUProfileWrittenOnError(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	var stderr bytes.Buffer
	code := loadgen([]string{"-driver", "go", "-ops", "get-key", "-coffer", filepath.Join(dir, "no-such-coffer"), "-cpuprofile", prof}, &stderr)
	if code == 2 && strings.Contains(stderr.String(), "already in use") {
		t.Skip("the test binary is being profiled itself: " + stderr.String())
	}
	if code != 1 || !strings.Contains(stderr.String(), "no-such-coffer") {
		t.Fatalf("loadgen with a missing coffer binary = %d, stderr %q; want 1 naming the binary", code, stderr.String())
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("the -cpuprofile file holds %d bytes (% x…); want a gzip-compressed profile", len(b), b[:min(len(b), 8)])
	}
}
