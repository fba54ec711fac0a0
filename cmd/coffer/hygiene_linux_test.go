package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coffer-kms/coffer/internal/testfs"
)

// processReportEnv names a file: a server started with it writes its process state there
// when it receives SIGUSR1 (reportProcessOnSignal).
const processReportEnv = "COFFER_TEST_PROCESS_REPORT"

func init() {
	testMainHook = func() {
		if path := os.Getenv(processReportEnv); path != "" {
			reportProcessOnSignal(path)
		}
	}
}

// reportProcessOnSignal writes, on each SIGUSR1, what the process reads of its own
// hardening: prctl(PR_GET_DUMPABLE) and getrlimit(RLIMIT_CORE).
func reportProcessOnSignal(path string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		for range ch {
			dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
			var core unix.Rlimit
			if err == nil {
				err = unix.Getrlimit(unix.RLIMIT_CORE, &core)
			}
			out := fmt.Sprintf("dumpable=%d core=%d/%d err=%v\n", dumpable, core.Cur, core.Max, err)
			_ = os.WriteFile(path+".tmp", []byte(out), 0o600)
			_ = os.Rename(path+".tmp", path)
		}
	}()
}

// stop ends the server with SIGTERM and waits for it. Under strace (s.wrap), which blocks
// SIGTERM, the signal goes to the traced server, strace's child.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	pid := s.cmd.Process.Pid
	if len(s.wrap) > 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			fmt.Sscan(f[0], &pid)
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	s.cmd.Wait()
}

// running reports whether process pid runs (exists and is not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestServerProcessHardened (SECURITY-NOTES C9): the real `coffer server` makes itself
// non-dumpable (prctl PR_SET_DUMPABLE 0: no core file, no ptrace by other users, its /proc
// files owned by root) and sets RLIMIT_CORE to 0 before it reads a key. The server process
// itself reports what prctl(PR_GET_DUMPABLE) and getrlimit return; /proc/<pid>/limits says
// the same from outside.
func TestServerProcessHardened(t *testing.T) {
	report := filepath.Join(t.TempDir(), "report")
	s := &server{t: t, dir: t.TempDir(), port: freePort(t), env: []string{processReportEnv + "=" + report}}
	s.start()
	defer s.stop()
	pid := s.cmd.Process.Pid
	var got string
	for deadline := time.Now().Add(10 * time.Second); got == "" && time.Now().Before(deadline); {
		s.cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(report)
		got = strings.TrimSpace(string(b))
	}
	if got != "dumpable=0 core=0/0 err=<nil>" {
		t.Errorf("server process reports %q; want dumpable=0 core=0/0 err=<nil>", got)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(limits)
	if m == nil || string(m[1]) != "0" || string(m[2]) != "0" {
		t.Errorf("/proc/%d/limits core line = %q; want soft and hard limit 0", pid, m)
	}
	t.Logf("server pid %d: %s; /proc/%d/limits: Max core file size %s %s", pid, got, pid, m[1], m[2])
}

// refusedCall sends a request to a server whose audit sink fails and checks it fails
// closed: a 5xx in Key Vault's error shape (OAuth's for a token), no token, no value.
func refusedCall(t *testing.T, s *server, what string, status int, body map[string]any, err error) {
	t.Helper()
	raw, _ := json.Marshal(body)
	switch {
	case err != nil:
		t.Errorf("%s: %v (is the server still running? %s)", what, err, s.stderr.String())
	case status < 500:
		t.Errorf("%s = %d %s; want it refused with a 5xx", what, status, raw)
	case body["access_token"] != nil || body["value"] != nil:
		t.Errorf("%s = %d and a token or value", what, status)
	case body["error"] == nil:
		t.Errorf("%s = %d %s; want an error body", what, status, raw)
	}
}

// token asks for a token with the dev credentials.
func (s *server) token() (int, map[string]any, error) {
	form := strings.NewReader("grant_type=client_credentials&client_id=" + s.c.ClientID + "&client_secret=" + s.c.ClientSecret + "&scope=https://localhost:" + s.port + "/.default")
	resp, err := s.hc.Post(strings.TrimSuffix(s.c.AuthorityHost, "/")+"/"+s.c.TenantID+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", form)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	err = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, err
}

// probeRefused sends a token request, a secret write and a secret read to a server whose
// audit sink fails and returns how many it sent; each must fail closed.
func probeRefused(t *testing.T, s *server, what string) int {
	t.Helper()
	status, body, err := s.token()
	refusedCall(t, s, what+": token", status, body, err)
	status, body, err = s.call("PUT", "/secrets/refused", map[string]any{"value": "v"})
	refusedCall(t, s, what+": set secret", status, body, err)
	status, body, err = s.call("GET", "/secrets/probe", nil)
	refusedCall(t, s, what+": get secret", status, body, err)
	return 3
}

// TestAuditStdoutPipeClosed (SECURITY-NOTES L1, pipe closed): the real server with
// --audit-stdout writes its records to a pipe; once the pipe's reader is gone, every request
// must fail closed with a 503 — and the server must go on running, counting the failures and
// saying why in its log, rather than be killed by SIGPIPE (which Go delivers for a write to
// a closed standard output unless the program asks for SIGPIPE itself).
func TestAuditStdoutPipeClosed(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, r); close(drained) }()
	s := &server{t: t, dir: t.TempDir(), port: freePort(t), args: []string{"--audit-stdout"}, stdout: w}
	s.start()
	defer s.stop()
	w.Close() // the server holds the only write end
	if status, _, err := s.call("PUT", "/secrets/probe", map[string]any{"value": "before"}); err != nil || status != 200 {
		t.Fatalf("set secret before the pipe closed = %d, %v", status, err)
	}
	r.Close() // the reader goes away
	<-drained
	n := probeRefused(t, s, "stdout pipe closed")
	if !running(s.cmd.Process.Pid) {
		s.cmd.Wait()
		t.Fatalf("the server is gone (%v); log:\n%s", s.cmd.ProcessState, s.stderr.String())
	}
	if log := s.stderr.String(); !strings.Contains(log, "broken pipe") {
		t.Errorf("the server log does not name the broken pipe:\n%s", log)
	}
	t.Logf("stdout audit sink, reader closed: %d/%d requests refused with a 5xx, server still running", n, n)
}

// TestAuditStdoutDiskFull (SECURITY-NOTES L1, ENOSPC on the stdout sink): the real server
// with --audit-stdout writes its records to a file on a small tmpfs; once that file system
// is full, every request must either fail closed with a 5xx or have its record written
// (a record can still fit in the file's last page: reads fill it first), and the server
// serves again once space returns.
func TestAuditStdoutDiskFull(t *testing.T) {
	disk := testfs.Tmpfs(t, "256k")
	out, err := os.Create(filepath.Join(disk, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	s := &server{t: t, dir: t.TempDir(), port: freePort(t), args: []string{"--audit-stdout"}, stdout: out}
	s.start()
	defer s.stop()
	if status, _, err := s.call("PUT", "/secrets/probe", map[string]any{"value": "before"}); err != nil || status != 200 {
		t.Fatalf("set secret = %d, %v", status, err)
	}
	records := func() int {
		b, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("\n{"))
	}
	filler := filepath.Join(disk, "filler")
	// Reads until one is refused: the records fill what the file's last page had left.
	reads := 0
	for ; reads < 200; reads++ {
		testfs.FillRest(t, filler)
		if status, _, err := s.call("GET", "/secrets/probe", nil); err != nil || status != 200 {
			break
		}
	}
	sent, refused, audited := 0, 0, 0
	for _, req := range []func() (int, map[string]any, error){
		s.token,
		func() (int, map[string]any, error) {
			return s.call("PUT", "/secrets/refused", map[string]any{"value": "v"})
		},
		func() (int, map[string]any, error) { return s.call("GET", "/secrets/probe", nil) },
	} {
		testfs.FillRest(t, filler)
		had := records()
		status, body, err := req()
		sent++
		if err == nil && status/100 == 2 && records() > had {
			audited++
			continue
		}
		refusedCall(t, s, fmt.Sprintf("stdout on a full disk: request %d", sent), status, body, err)
		refused++
	}
	if refused == 0 {
		t.Errorf("no request was refused on the full disk: the test proves nothing")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if status, _, err := s.call("GET", "/secrets/probe", nil); err != nil || status != 200 {
		t.Fatalf("get secret after space returned = %d, %v", status, err)
	}
	t.Logf("stdout audit sink on a full disk (after %d reads into the file's last page): %d/%d requests refused with a 5xx, %d served with their record written; served again once space returned", reads, refused, sent, audited)
}
