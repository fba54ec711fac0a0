package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
	"github.com/coffer-kms/coffer/internal/tlsutil"
)

// flagValue returns the value following name in flags.
func flagValue(flags []string, name string) string {
	for i := 0; i+1 < len(flags); i++ {
		if flags[i] == name {
			return flags[i+1]
		}
	}
	return ""
}

// setFlag returns flags with name's value replaced.
func setFlag(flags []string, name, value string) []string {
	out := append([]string(nil), flags...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == name {
			out[i+1] = value
		}
	}
	return out
}

// TestPKCS11AutoUnseal: with --seal pkcs11, `init` wraps the root key with an AES key it
// creates in the token and returns recovery shares; a restart on the same data directory is
// unsealed without shares; the database holds no root key in clear; a token without the
// seal key, and a token that is gone, leave the server sealed with an error naming the
// setting (no fallback), and the recovery shares then unseal it.
func TestPKCS11AutoUnseal(t *testing.T) {
	hsm, args, files, data, stop := pkcs11SealSetup(t, "unseal-test")

	ts := start(t, loadConfig(t, args...), files.CACert)
	if status, body, _ := ts.do(t, "GET", "/v1/sys/seal-status", "", nil); status != 200 || body["initialized"] != false {
		t.Fatalf("seal-status before init = %d %v; want not initialized", status, body)
	}
	status, body, _ := ts.do(t, "POST", "/v1/sys/init", "", map[string]int{"shares": 3, "threshold": 2})
	if status != 200 {
		t.Fatalf("init = %d %v; want 200", status, body)
	}
	shares, _ := body["shares"].([]any)
	if len(shares) != 3 {
		t.Fatalf("init shares = %v; want 3 recovery shares", body["shares"])
	}
	status, body, _ = ts.do(t, "GET", "/v1/sys/seal-status", "", nil)
	if status != 200 || body["sealed"] != false || body["type"] != "pkcs11" || body["threshold"] != float64(2) {
		t.Fatalf("seal-status after init = %d %v; want unsealed pkcs11, threshold 2", status, body)
	}
	stop(ts)

	// Restart on the same data directory: unsealed, no shares entered.
	ts = start(t, loadConfig(t, args...), files.CACert)
	if status, body, _ := ts.do(t, "GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz after restart = %d %v; want 200 (unsealed by the token)", status, body)
	}
	stop(ts)

	// The database holds the root key wrapped by the token only.
	rootKey := unwrapRootKey(t, filepath.Join(data, DBFile), hsm, "unseal-test")
	db, err := os.ReadFile(filepath.Join(data, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rootKey) != 32 || bytes.Contains(db, rootKey) {
		t.Fatalf("the database contains the %d-byte root key in clear", len(rootKey))
	}

	// A token without the seal key: sealed, the error names pkcs11-seal-key-label.
	util, _ := exec.LookPath("softhsm2-util")
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "other", "--pin", "4321", "--so-pin", "8765").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	ts = start(t, loadConfig(t, setFlag(args, "--pkcs11-token-label", "other")...), files.CACert)
	checkSealedBy(t, ts, `"pkcs11-seal-key-label"`)
	stop(ts)

	// The token is gone: sealed, the error names pkcs11-token-label; recovery shares unseal.
	tokens := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	if err := os.RemoveAll(tokens); err != nil || os.Mkdir(tokens, 0o700) != nil {
		t.Fatal(err)
	}
	ts = start(t, loadConfig(t, args...), files.CACert)
	checkSealedBy(t, ts, `"pkcs11-token-label"`)
	if status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]any{"share": shares[0]}); status != 200 || body["sealed"] != true {
		t.Fatalf("first recovery share = %d %v; want 200 sealed", status, body)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]any{"share": shares[1]}); status != 200 || body["sealed"] != false {
		t.Fatalf("second recovery share = %d %v; want 200 unsealed", status, body)
	}
	for _, s := range shares {
		if strings.Contains(ts.logs.String(), s.(string)) {
			t.Error("the server log contains a recovery share")
		}
	}
}

// pkcs11SealSetup makes a SoftHSM2 token, a TLS certificate and the flags of a server
// sealed by the token's key labelled label, and a stop that shuts a server down.
func pkcs11SealSetup(t *testing.T, label string) (hsm, args []string, files tlsutil.DevFiles, data string, stop func(*testServer)) {
	hsm = softHSMToken(t)
	dir := t.TempDir()
	files, err := tlsutil.EnsureDevCA(filepath.Join(dir, "tls"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "data")
	args = append([]string{"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--seal", "pkcs11", "--pkcs11-seal-key-label", label}, hsm...)
	stop = func(ts *testServer) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return hsm, args, files, data, stop
}

// checkSealedBy checks that ts is sealed, not ready, and reports an auto-unseal error
// naming setting in its seal status and its log.
func checkSealedBy(t *testing.T, ts *testServer, setting string) {
	t.Helper()
	if status, body, _ := ts.do(t, "GET", "/readyz", "", nil); status != 503 || body["status"] != "sealed" {
		t.Errorf("readyz = %d %v; want 503 sealed", status, body)
	}
	status, body, _ := ts.do(t, "GET", "/v1/sys/seal-status", "", nil)
	msg, _ := body["error"].(string)
	if status != 200 || body["sealed"] != true || !strings.Contains(msg, setting) {
		t.Errorf("seal-status = %d %v; want sealed with an error naming %s", status, body, setting)
	}
	if !strings.Contains(ts.logs.String(), strings.Trim(setting, `"`)) { // the JSON log escapes quotes
		t.Errorf("the server log does not name %s", setting)
	}
	if status, _, _ := ts.do(t, "GET", "/keys/k1", "", nil); status != 503 {
		t.Errorf("data plane while sealed = %d; want 503", status)
	}
}

// unwrapRootKey opens the token as an independent client and unwraps core/root-key with
// the associated data docs/FORMAT.md specifies ("core/root-key" ‖ 0x00 ‖ core/seal-config).
func unwrapRootKey(t *testing.T, dbPath string, hsm []string, label string) []byte {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg, err := db.Get(ctx, "core/seal-config")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := db.Get(ctx, "core/root-key")
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := os.ReadFile(flagValue(hsm, "--pkcs11-pin-file"))
	p, err := pkcs11.Open(pkcs11.Config{Library: softhsmLib, TokenLabel: "coffer", PIN: strings.TrimSpace(string(pin))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	key, err := p.Seal(label).Unwrap(ctx, blob, append([]byte("core/root-key\x00"), cfg...))
	if err != nil {
		t.Fatalf("unwrap core/root-key with the token = %v", err)
	}
	return key
}
