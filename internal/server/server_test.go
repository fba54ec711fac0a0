package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
	"github.com/coffer-kms/coffer/internal/tlsutil"
)

// testServer is a real server on 127.0.0.1:<random port> with a client that trusts its CA.
type testServer struct {
	*Server
	client *http.Client
	caFile string
	logs   *lockedWriter
}

func loadConfig(t *testing.T, args ...string) *config.Config { return loadConfigB(t, args...) }

func loadConfigB(t testing.TB, args ...string) *config.Config {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg *config.Config, caFile string) *testServer {
	t.Helper()
	return startWithClock(t, cfg, caFile, nil)
}

// startWithClock starts a server whose clock is now (nil: time.Now), for expiry tests; opts
// adjust the server before it starts.
func startWithClock(t *testing.T, cfg *config.Config, caFile string, now func() time.Time, opts ...func(*Server)) *testServer {
	t.Helper()
	logs := &lockedWriter{}
	s := New(cfg, io.Discard, logs)
	if now != nil {
		s.now = now
	}
	for _, o := range opts {
		o(s)
	}
	// Registered before Shutdown, so it runs after it: the C9 scan of what the server wrote.
	t.Cleanup(func() { c9Check(t, s, logs) })
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start = %v", err)
	}
	s.http.RegisterOnShutdown(closeClientConns)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	if caFile == "" && s.Dev != nil {
		caFile = s.Dev.CAFile
	}
	return &testServer{Server: s, client: clientFor(t, caFile, nil), caFile: caFile, logs: logs}
}

func startDev(t *testing.T, extra ...string) *testServer {
	t.Helper()
	args := append([]string{"--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "debug"}, extra...)
	return start(t, loadConfig(t, args...), "")
}

func clientFor(t *testing.T, caFile string, mutate func(*tls.Config)) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool}
	if mutate != nil {
		mutate(cfg)
	}
	tr := trackTransport(t, &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true})
	return &http.Client{Timeout: 10 * time.Second, Transport: &recordingTransport{next: tr, rec: c9For(t)}}
}

// clientTransports holds the transports of the test clients (trackTransport). A test server
// that shuts down closes their idle connections (closeClientConns): after the GOAWAY of a
// graceful shutdown the server waits a second (net/http's goAwayTimeout) for the client to
// hang up an idle HTTP/2 connection, which Go's client never does, so each shutdown of a
// server a client had talked to took a second longer.
var clientTransports sync.Map // *http.Transport → struct{}

// trackTransport registers tr until the test ends (when its idle connections close).
func trackTransport(t testing.TB, tr *http.Transport) *http.Transport {
	clientTransports.Store(tr, struct{}{})
	t.Cleanup(func() {
		clientTransports.Delete(tr)
		tr.CloseIdleConnections()
	})
	return tr
}

// closeClientConns closes the idle connections of every test client; requests in flight
// keep theirs.
func closeClientConns() {
	clientTransports.Range(func(k, _ any) bool {
		k.(*http.Transport).CloseIdleConnections()
		return true
	})
}

// lockedWriter collects the server's log lines safely across goroutines.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// do sends a request and returns status, decoded JSON body and headers.
func (ts *testServer) do(t *testing.T, method, path, token string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			r = bytes.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			r = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, ts.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, m, resp.Header
}

// errorCode returns error.code of a Key Vault error body, failing if the shape is wrong.
func errorCode(t *testing.T, body map[string]any) string {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("body %v is not Key Vault's error shape", body)
	}
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" || msg == "" {
		t.Fatalf("error body %v lacks code or message", body)
	}
	return code
}

func TestDevServerServesHealthAndHeaders(t *testing.T) {
	ts := startDev(t)
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"ok/healthz", "GET", "/healthz", 200},
		{"ok/readyz", "GET", "/readyz", 200},
		{"ok/seal-status", "GET", "/v1/sys/seal-status", 200},
		{"fail/unknown-path", "GET", "/nope/path", 404},
		{"fail/rotate-without-token", "POST", "/v1/sys/rotate", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := ts.do(t, tc.method, tc.path, "", nil)
			if status != tc.want {
				t.Fatalf("%s %s = %d %v; want %d", tc.method, tc.path, status, body, tc.want)
			}
			if !strings.Contains(h.Get("Strict-Transport-Security"), "max-age=31536000") || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: security headers missing: %v", tc.path, h)
			}
			if status >= 400 {
				errorCode(t, body)
			}
		})
	}
}

func TestHTTP2AndTLSVersions(t *testing.T) {
	ts := startDev(t)
	resp, err := ts.client.Get(ts.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("default client got %s over TLS %x; want HTTP/2 over TLS 1.3", resp.Proto, resp.TLS.Version)
	}
	old := clientFor(t, ts.caFile, func(c *tls.Config) { c.MinVersion = tls.VersionTLS10; c.MaxVersion = tls.VersionTLS11 })
	if resp, err := old.Get(ts.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 client was served; want a handshake failure")
	}
}

func TestPlainHTTPGetsNoData(t *testing.T) {
	ts := startDev(t)
	conn, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /v1/sys/seal-status HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "HTTP request to an HTTPS server") || strings.Contains(string(body), "sealed") {
		t.Errorf("plain HTTP = %d %q; want 400 and no data", resp.StatusCode, body)
	}
	if s := ts.metricsText(t); strings.Contains(s, `route="GET /v1/sys/seal-status"`) {
		t.Errorf("a handler ran for the plain-HTTP request: %s", grepLines(s, "seal-status"))
	}
	// No audit record either (N3); the same request over HTTPS leaves one, so the check can fail.
	const rec = `"object_id":"/v1/sys/seal-status"`
	if log := readAudit(t, ts); strings.Contains(log, rec) {
		t.Errorf("the plain-HTTP request left an audit record: %s", grepLines(log, rec))
	}
	if status, _, _ := ts.do(t, "GET", "/v1/sys/seal-status", "", nil); status != 200 {
		t.Fatalf("GET /v1/sys/seal-status over HTTPS = %d", status)
	}
	if log := readAudit(t, ts); !strings.Contains(log, rec) {
		t.Errorf("the HTTPS request left no audit record %s; the plain-HTTP check above proves nothing", rec)
	}
}

func (ts *testServer) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := ts.client.Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestSealUnsealOverHTTP(t *testing.T) {
	ts := startDev(t)
	token := ts.Dev.Token
	share, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, devShareFile))
	if err != nil {
		t.Fatal(err)
	}

	if status, body, _ := ts.do(t, "POST", "/v1/sys/rotate", "cof.wrong", nil); status != 403 || errorCode(t, body) != "Forbidden" {
		t.Fatalf("rotate with a wrong token = %d %v; want 403 Forbidden", status, body)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/rotate", token, nil); status != 200 || body["term"] != float64(2) {
		t.Fatalf("rotate = %d %v; want 200 term 2", status, body)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/seal", "cof.wrong", nil); status != 403 {
		t.Fatalf("seal with a wrong token = %d %v; want 403", status, body)
	}
	if status, body, _ := ts.do(t, "POST", "/v1/sys/seal", token, nil); status != 200 || body["sealed"] != true {
		t.Fatalf("seal = %d %v; want 200 sealed", status, body)
	}

	// Sealed: health answers, everything else is 503 in Key Vault's shape.
	for _, tc := range []struct{ method, path string }{{"GET", "/keys/k1"}, {"POST", "/v1/sys/rotate"}, {"PUT", "/secrets/s1"}, {"GET", "/"}} {
		status, body, _ := ts.do(t, tc.method, tc.path, token, nil)
		if status != 503 || errorCode(t, body) != "ServiceUnavailable" || !strings.Contains(body["error"].(map[string]any)["message"].(string), "unseal") {
			t.Errorf("sealed %s %s = %d %v; want 503 ServiceUnavailable telling to unseal", tc.method, tc.path, status, body)
		}
	}
	if status, _, _ := ts.do(t, "GET", "/healthz", "", nil); status != 200 {
		t.Errorf("sealed healthz = %d; want 200", status)
	}
	if status, body, _ := ts.do(t, "GET", "/readyz", "", nil); status != 503 || body["status"] != "sealed" {
		t.Errorf("sealed readyz = %d %v; want 503 sealed", status, body)
	}
	if !strings.Contains(ts.metricsText(t), "coffer_sealed 1") {
		t.Error("metrics do not report coffer_sealed 1")
	}

	// Wrong and malformed shares change nothing.
	bad := []byte(strings.TrimSpace(string(share)))
	bad[3] ^= 0x01
	for _, b := range []any{map[string]string{"share": string(bad)}, map[string]string{"share": ""}, []byte(`{"share":`), []byte(`{"share":"x","extra":1}`), []byte(`[1,2]`)} {
		status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", b)
		if status != 400 {
			t.Errorf("unseal(%v) = %d %v; want 400", b, status, body)
		} else {
			errorCode(t, body)
		}
		if !ts.barrier.Sealed() {
			t.Fatal("a bad share unsealed the server")
		}
	}
	huge := append([]byte(`{"share":"`), bytes.Repeat([]byte("A"), 2<<20)...)
	if status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", append(huge, `"}`...)); status != 413 {
		t.Errorf("unseal with a 2 MiB body = %d %v; want 413", status, body)
	}

	status, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]string{"share": strings.TrimSpace(string(share))})
	if status != 200 || body["sealed"] != false || body["term"] != float64(2) {
		t.Fatalf("unseal = %d %v; want unsealed at term 2", status, body)
	}
	if status, _, _ := ts.do(t, "GET", "/readyz", "", nil); status != 200 {
		t.Errorf("readyz after unseal = %d; want 200", status)
	}
	if strings.Contains(ts.logs.String(), strings.TrimSpace(string(share))) || strings.Contains(ts.logs.String(), token) {
		t.Error("the server log contains the unseal share or the operator token")
	}
}

func TestCertificateReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	first, err := tlsutil.EnsureDevCA(filepath.Join(dir, "a"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert-file", first.Cert, "--tls-key-file", first.Key, "--tls-reload-interval", "50ms")
	ts := start(t, cfg, first.CACert)
	serial := func() string {
		conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// Keep one connection open across the reload.
	keep, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()

	second, err := tlsutil.EnsureDevCA(filepath.Join(dir, "b"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{second.Cert, first.Cert}, {second.Key, first.Key}} {
		b, _ := os.ReadFile(p[0])
		tmp := p[1] + ".tmp"
		os.WriteFile(tmp, b, 0o600)
		os.Rename(tmp, p[1])
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial() == before {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not picked up within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(keep, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(keep), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connection opened before the reload: %v %v; want it still served", resp, err)
	}
}

func TestBadConfigRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/no-certificate", []string{"--listen", "127.0.0.1:0"}, `"tls-cert-file"`},
		{"fail/missing-cert-file", []string{"--listen", "127.0.0.1:0", "--tls-cert-file", "/nope/c.pem", "--tls-key-file", "/nope/k.pem"}, "/nope/c.pem"},
		{"fail/bad-listen", []string{"--dev", "--listen", "localhost"}, `"listen"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t, append(tc.args, "--data-dir", t.TempDir())...)
			s := New(cfg, io.Discard, io.Discard)
			err := s.Start(context.Background())
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("Start = nil; want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v; want it to name %s", err, tc.want)
			}
		})
	}
}

func TestDevRestartKeepsStoreAndShutdownReleasesDB(t *testing.T) {
	dir := t.TempDir()
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	s := New(cfg, io.Discard, io.Discard)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	term, err := s.manager.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	// The database lock is released: it opens at once.
	db, err := bolt.Open(filepath.Join(dir, DBFile), bolt.Options{})
	if err != nil {
		t.Fatalf("reopen after Shutdown: %v", err)
	}
	db.Close()
	s2 := New(cfg, io.Discard, io.Discard)
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	if s2.barrier.Sealed() || s2.barrier.ActiveTerm() != term {
		t.Errorf("after restart sealed=%v term=%d; want unsealed at term %d", s2.barrier.Sealed(), s2.barrier.ActiveTerm(), term)
	}
}

func TestDamagedStoreRefusedAtStart(t *testing.T) {
	t.Run("fail/database-file-garbage", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFile), bytes.Repeat([]byte("not a database "), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		s := New(loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir), io.Discard, io.Discard)
		err := s.Start(context.Background())
		if err == nil {
			s.Shutdown(context.Background())
			t.Fatal("Start on a garbage database = nil; want an error")
		}
		if !strings.Contains(err.Error(), DBFile) {
			t.Errorf("Start = %v; want it to name %s", err, DBFile)
		}
	})
	t.Run("fail/keyring-damaged", func(t *testing.T) {
		dir := t.TempDir()
		cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
		s := New(cfg, io.Discard, io.Discard)
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Shutdown(context.Background())
		db, err := bolt.Open(filepath.Join(dir, DBFile), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		kr, err := db.Get(ctx, "core/keyring")
		if err != nil {
			t.Fatal(err)
		}
		kr[len(kr)-3] ^= 0xff
		db.Put(ctx, "core/keyring", kr)
		db.Close()
		s2 := New(cfg, io.Discard, io.Discard)
		err = s2.Start(ctx)
		if err == nil {
			s2.Shutdown(ctx)
			t.Fatal("Start with a damaged keyring = nil; want an error")
		}
		if !strings.Contains(err.Error(), "core/keyring") {
			t.Errorf("Start = %v; want it to name core/keyring", err)
		}
	})
}
