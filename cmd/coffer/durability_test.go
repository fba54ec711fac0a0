package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/cli"
)

// The test binary doubles as the coffer binary: with COFFER_TEST_MAIN=1 it runs cli.Main, so
// the durability test can start the real server as a subprocess and kill -9 it.
func TestMain(m *testing.M) {
	if os.Getenv("COFFER_TEST_MAIN") == "1" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type devCreds struct {
	TenantID, ClientID, ClientSecret, AuthorityHost, VaultURL, CAFile string
}

type server struct {
	t    *testing.T
	dir  string
	port string
	cmd  *exec.Cmd
	hc   *http.Client
	c    devCreds
	tok  string
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// start runs `coffer server --dev` and waits until it serves and hands out a token.
func (s *server) start() {
	t := s.t
	exe, _ := os.Executable()
	os.Remove(filepath.Join(s.dir, "dev-credentials.json"))
	s.cmd = exec.Command(exe, "server", "--dev", "--listen", "127.0.0.1:"+s.port, "--data-dir", s.dir, "--log-level", "error", "--tenant-rate-limit", "0")
	s.cmd.Env = append(os.Environ(), "COFFER_TEST_MAIN=1")
	var stderr bytes.Buffer
	s.cmd.Stderr, s.cmd.Stdout = &stderr, io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(s.dir, "dev-credentials.json"))
		if err == nil && json.Unmarshal(b, &s.c) == nil && s.c.VaultURL != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.hc == nil {
		pem, _ := os.ReadFile(s.c.CAFile)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		d := &net.Dialer{Timeout: 5 * time.Second}
		s.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		}}
	}
	for {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.c.ClientID}, "client_secret": {s.c.ClientSecret}, "scope": {"https://localhost:" + s.port + "/.default"}}
		resp, err := s.hc.PostForm(strings.TrimSuffix(s.c.AuthorityHost, "/")+"/"+s.c.TenantID+"/oauth2/v2.0/token", form)
		if err == nil {
			var out struct {
				AccessToken string `json:"access_token"`
			}
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if out.AccessToken != "" {
				s.tok = out.AccessToken
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token from the restarted server: %v %s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) call(method, path string, body any) (int, map[string]any, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, strings.TrimSuffix(s.c.VaultURL, "/")+path+"?api-version=7.6", r)
	req.Header.Set("Authorization", "Bearer "+s.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		// The body was cut off (the server died mid-response): not an acknowledgement.
		return 0, nil, err
	}
	return resp.StatusCode, out, nil
}

// TestKill9KeepsAcknowledgedWrites starts the real server, creates keys from 8 concurrent
// clients, kills the server with SIGKILL at a random moment, restarts it, and checks that
// every key whose creation was acknowledged (200) is there with the same public key — 20
// times over.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the server 21 times")
	}
	s := &server{t: t, dir: t.TempDir(), port: freePort(t)}
	acked := map[string]string{} // key name -> "x.y" of the public key
	var mu sync.Mutex
	total := 0
	const cycles = 20
	for cycle := 0; cycle < cycles; cycle++ {
		s.start()
		stop := make(chan struct{})
		first := make(chan struct{}, 1)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("c%d-w%d-%d", cycle, w, i)
					status, body, err := s.call("POST", "/keys/"+name+"/create", map[string]any{"kty": "EC", "crv": "P-256"})
					if err != nil || status != 200 {
						return // the server is gone: this write was not acknowledged
					}
					k, _ := body["key"].(map[string]any)
					mu.Lock()
					acked[name] = fmt.Sprint(k["x"], ".", k["y"])
					total++
					mu.Unlock()
					select {
					case first <- struct{}{}:
					default:
					}
				}
			}()
		}
		select {
		case <-first:
		case <-time.After(20 * time.Second):
			t.Fatalf("cycle %d: no write acknowledged", cycle)
		}
		time.Sleep(time.Duration(10+rand.IntN(490)) * time.Millisecond)
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		close(stop)
		wg.Wait()

		// Restart and check every write acknowledged in this cycle; the last cycle checks the
		// writes of all cycles, so earlier cycles' records also survived later crashes.
		s.start()
		prefix := fmt.Sprintf("c%d-", cycle)
		names := make(chan string)
		var failed sync.Once
		var failure string
		var cw sync.WaitGroup
		for w := 0; w < 8; w++ {
			cw.Add(1)
			go func() {
				defer cw.Done()
				for name := range names {
					status, body, err := s.call("GET", "/keys/"+name, nil)
					k, _ := body["key"].(map[string]any)
					if err != nil || status != 200 || fmt.Sprint(k["x"], ".", k["y"]) != acked[name] {
						failed.Do(func() { failure = fmt.Sprintf("acknowledged key %s after kill -9: %d %v", name, status, err) })
					}
				}
			}()
		}
		for name := range acked {
			if cycle == cycles-1 || strings.HasPrefix(name, prefix) {
				names <- name
			}
		}
		close(names)
		cw.Wait()
		if failure != "" {
			t.Fatalf("cycle %d: %s", cycle, failure)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	}
	t.Logf("%d kill -9 cycles, %d acknowledged key creations, all present and intact after restart", cycles, total)
	if total < cycles {
		t.Errorf("only %d acknowledged writes in %d cycles", total, cycles)
	}
}
