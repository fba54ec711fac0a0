package testfs

import (
	"bytes"
	"os/exec"
	"testing"
)

// Strace returns the path of strace, or skips t saying why it cannot trace here (strace is
// not installed, or the container forbids ptrace) and that what is therefore not checked.
func Strace(t testing.TB, what string) string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skipf("SKIPPED: strace is not installed (apt-get install strace); %s is not checked", what)
	}
	if out, err := exec.Command(strace, "-f", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: strace cannot trace here (%v: %s); %s is not checked", err, bytes.TrimSpace(out), what)
	}
	return strace
}
