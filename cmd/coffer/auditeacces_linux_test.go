package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestAuditFileUnopenableFailsClosed (SECURITY-NOTES L1, EACCES): the real server, run as
// an unprivileged user (root bypasses file permissions), is sealed; its audit log file is
// made unreadable (mode 000); after the unseal the log cannot be opened (EACCES) and every
// request must fail closed; once the mode is back the server serves again without a
// restart. Needs root, to start the server as another user; skipped otherwise.
func TestAuditFileUnopenableFailsClosed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the server as an unprivileged user (uid 65534), for whom file permissions hold")
	}
	const nobody = 65534
	// The server's binary and data directory must be reachable by that user.
	base := t.TempDir()
	for d := base; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, _ := os.Executable()
	bin := filepath.Join(base, "coffer")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dir: dir, port: freePort(t), exe: bin,
		attr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}}
	s.start()
	defer s.stop()
	if status, _, err := s.call("PUT", "/secrets/probe", map[string]any{"value": "before"}); err != nil || status != 200 {
		t.Fatalf("set secret = %d, %v", status, err)
	}
	opToken, err := os.ReadFile(filepath.Join(dir, "dev-operator-token.UNSAFE"))
	if err != nil {
		t.Fatal(err)
	}
	share, err := os.ReadFile(filepath.Join(dir, "dev-unseal-share.UNSAFE"))
	if err != nil {
		t.Fatal(err)
	}
	sys := func(path, token, body string) int {
		req, _ := http.NewRequest("POST", "https://localhost:"+s.port+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.hc.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := sys("/v1/sys/seal", strings.TrimSpace(string(opToken)), ""); status != 200 {
		t.Fatalf("seal = %d", status)
	}
	auditPath := filepath.Join(dir, "audit.log")
	if err := os.Chmod(auditPath, 0); err != nil {
		t.Fatal(err)
	}
	if status := sys("/v1/sys/unseal", "", `{"share":"`+strings.TrimSpace(string(share))+`"}`); status != 200 {
		t.Fatalf("unseal = %d", status)
	}
	n := probeRefused(t, s, "audit log unopenable")
	if log := s.stderr.String(); !strings.Contains(log, "permission denied") {
		t.Errorf("the server log does not say the audit log cannot be opened:\n%s", log)
	}
	if err := os.Chmod(auditPath, 0o600); err != nil {
		t.Fatal(err)
	}
	status, body, err := s.token()
	if err != nil || status != 200 || body["access_token"] == nil {
		t.Fatalf("token after the mode was restored = %d, %v", status, err)
	}
	if status, _, err := s.call("GET", "/secrets/probe", nil); err != nil || status != 200 {
		t.Fatalf("get secret after the mode was restored = %d, %v", status, err)
	}
	resp, err := s.hc.Get("https://localhost:" + s.port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^coffer_audit_failures_total\{sink="file"\} (\d+)$`).FindSubmatch(metrics)
	if m == nil || string(m[1]) == "0" {
		t.Fatalf("coffer_audit_failures_total{sink=\"file\"} = %q; want the failures counted", m)
	}
	t.Logf("audit log unopenable (EACCES): %d/%d requests refused with a 5xx, coffer_audit_failures_total{sink=\"file\"} %s; served again once the mode was restored", n, n, m[1])
}
