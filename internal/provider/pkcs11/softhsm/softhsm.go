// Package softhsm makes throwaway SoftHSM2 tokens for the tests of the pkcs11 provider and the
// server, and for tools/loadgen: a token directory and a SOFTHSM2_CONF file in a folder the
// caller owns, tokens initialised by softhsm2-util, and files holding their PINs. It is for
// development only: the PINs are written in plain files next to the tokens.
//
// It imports only the standard library (no Coffer package, no PKCS#11 binding): the caller
// points SOFTHSM2_CONF at Tokens.Conf before it loads the library.
package softhsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Library is where Debian's softhsm2 package installs the PKCS#11 module.
const Library = "/usr/lib/softhsm/libsofthsm2.so"

// ErrNotInstalled is returned by Init when the SoftHSM2 module or softhsm2-util is missing;
// its text says what to install.
var ErrNotInstalled = errors.New("SoftHSM2 is not installed: apt-get install softhsm2")

// Tokens describes the tokens Init made.
type Tokens struct {
	// Conf is the configuration file: set SOFTHSM2_CONF to it before loading Library.
	Conf string
	// Dir is the token directory the configuration names.
	Dir string
	// PIN and SOPIN are the user and security officer PINs of every token; PINFile and
	// SOPINFile hold them, each followed by a newline (mode 0600).
	PIN, SOPIN         string
	PINFile, SOPINFile string
}

// Init writes dir/softhsm2.conf (file object store, errors only in the log) and dir/tokens,
// then initialises one token per label with the user PIN pin and the security officer PIN
// soPIN, and writes them to dir/pin and dir/so-pin. It does not change the process's
// environment. Errors wrap ErrNotInstalled when SoftHSM2 is missing.
func Init(dir, pin, soPIN string, labels ...string) (*Tokens, error) {
	if _, err := os.Stat(Library); err != nil {
		return nil, fmt.Errorf("%w (%s is missing)", ErrNotInstalled, Library)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return nil, fmt.Errorf("%w (softhsm2-util is not on PATH)", ErrNotInstalled)
	}
	t := &Tokens{
		Conf: filepath.Join(dir, "softhsm2.conf"), Dir: filepath.Join(dir, "tokens"),
		PIN: pin, SOPIN: soPIN, PINFile: filepath.Join(dir, "pin"), SOPINFile: filepath.Join(dir, "so-pin"),
	}
	if err := os.Mkdir(t.Dir, 0o700); err != nil {
		return nil, err
	}
	conf := "directories.tokendir = " + t.Dir + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	for path, text := range map[string]string{t.Conf: conf, t.PINFile: pin + "\n", t.SOPINFile: soPIN + "\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	for _, label := range labels {
		cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPIN)
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+t.Conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("softhsm2-util --init-token --label %s: %v\n%s", label, err, out)
		}
	}
	return t, nil
}
