package softhsm

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestInit: every label becomes a token of the configuration Init wrote, and the PIN files
// hold the PINs.
func TestInit(t *testing.T) {
	tok, err := Init(t.TempDir(), "1111", "2222", "first", "second")
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("Init = %v", err)
	}
	for path, want := range map[string]string{tok.PINFile: "1111\n", tok.SOPINFile: "2222\n"} {
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", path, b, err, want)
		}
	}
	cmd := exec.Command("softhsm2-util", "--show-slots")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, out)
	}
	for _, label := range []string{"first", "second"} {
		if !strings.Contains(string(out), "Label:            "+label+" ") {
			t.Errorf("softhsm2-util --show-slots lists no token %q:\n%s", label, out)
		}
	}
}
