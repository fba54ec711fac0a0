package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/audit"
)

// TestAuditVerifyRotatedFiles: `coffer audit verify DIR/audit.log*` verifies a rotated log
// as one chain whatever the order of the names, names the file of an edited record, finds a
// removed file, and verifies what remains after the oldest file is removed with --continue.
func TestAuditVerifyRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path, audit.Options{Signer: priv, HMACKey: bytes.Repeat([]byte{1}, 32), MaxFileBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		ev := audit.Event{Time: time.Now(), Tenant: "t1", Operation: "KeyGet", ObjectID: fmt.Sprintf("https://v.localhost/keys/k%d", i), Status: 200, Result: audit.ResultSuccess}
		if err := l.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := audit.RotatedFiles(path)
	if len(rotated) < 3 {
		t.Fatalf("rotated files = %v; want at least 3", rotated)
	}
	all := append([]string{path}, rotated...) // the order a shell glob gives
	verify := func(files []string, extra ...string) (int, string, string) {
		return run(t, "", append(append([]string{"audit", "verify", "--public-key-file", keyFile}, extra...), files...)...)
	}
	if code, out, errOut := verify(all); code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "seq 1-") {
		t.Fatalf("verify of every file = %d %q %q; want OK from seq 1", code, out, errOut)
	}

	orig, _ := os.ReadFile(rotated[1])
	os.WriteFile(rotated[1], bytes.Replace(orig, []byte(`"op":"KeyGet"`), []byte(`"op":"KeyPut"`), 1), 0o600)
	if code, _, errOut := verify(all); code == 0 || !strings.Contains(errOut, rotated[1]) || !strings.Contains(errOut, audit.BadHash) {
		t.Errorf("verify with an edit in %s = %d %q; want a hash failure naming it", rotated[1], code, errOut)
	}
	os.WriteFile(rotated[1], orig, 0o600)
	if code, _, errOut := verify([]string{path, rotated[0], rotated[2]}); code == 0 || !strings.Contains(errOut, audit.BadGap) {
		t.Errorf("verify without %s = %d %q; want a gap", rotated[1], code, errOut)
	}

	// The oldest file archived away: the rest verifies from its head.
	rep, err := audit.VerifyFiles(rotated[:1], pub, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rest := append([]string{path}, rotated[1:]...)
	if code, _, errOut := verify(rest); code == 0 || !strings.Contains(errOut, audit.BadGenesis) {
		t.Errorf("verify without the oldest file, no --continue = %d %q; want %s", code, errOut, audit.BadGenesis)
	}
	head := fmt.Sprintf("%d:%s", rep.LastSeq, rep.HeadHash)
	if code, out, errOut := verify(rest, "--continue", head); code != 0 || !strings.Contains(out, fmt.Sprintf("seq %d-", rep.LastSeq+1)) {
		t.Errorf("verify --continue %s = %d %q %q; want OK from seq %d", head, code, out, errOut, rep.LastSeq+1)
	}
}
