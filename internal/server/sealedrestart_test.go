package server

import (
	"context"
	"crypto/elliptic"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/storagetest"
)

// readLog wraps the database and records every key read through it, in and out of
// transactions and snapshots.
type readLog struct {
	storage.Backend
	mu   sync.Mutex
	keys []string
}

func (l *readLog) note(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = append(l.keys, key)
}

// take returns the keys read so far with prefix, and forgets every key read.
func (l *readLog) take(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, k := range l.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	l.keys = nil
	return out
}

func (l *readLog) Get(ctx context.Context, key string) ([]byte, error) {
	l.note(key)
	return l.Backend.Get(ctx, key)
}

func (l *readLog) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	l.note(prefix)
	return l.Backend.List(ctx, prefix, opts)
}

func (l *readLog) Txn(ctx context.Context, fn func(storage.Tx) error) error {
	return l.Backend.Txn(ctx, func(tx storage.Tx) error { return fn(&readLogTx{Tx: tx, l: l}) })
}

func (l *readLog) View(ctx context.Context, fn func(storage.Reader) error) error {
	return l.Backend.View(ctx, func(r storage.Reader) error { return fn(&readLogTx{Tx: storagetest.ReadOnlyTx(r), l: l}) })
}

type readLogTx struct {
	storage.Tx
	l *readLog
}

func (t *readLogTx) Get(ctx context.Context, key string) ([]byte, error) {
	t.l.note(key)
	return t.Tx.Get(ctx, key)
}

func (t *readLogTx) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	t.l.note(prefix)
	return t.Tx.List(ctx, prefix, opts)
}

// TestSealedRestartServesNothing holds SECURITY-NOTES D7: a server restarted on a data
// directory with keys, secrets and certificates comes up sealed. Until it is unsealed every
// data-plane route of a vault, of a managed HSM pool and of a store that does not exist
// answers the same 503 ServiceUnavailable for names that exist and names that do not,
// with a valid bearer token or an empty one, /readyz is 503 "sealed", and no record under the
// barrier is read from the database. After the unseal the same token reads the same key.
func TestSealedRestartServesNothing(t *testing.T) {
	dir := t.TempDir()
	// One port for both lives of the server, so a token of the first stays valid.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	dev := start(t, loadConfig(t, "--dev", "--listen", listen, "--data-dir", dir), "")
	creds := dev.Dev.Credentials
	hc := loopbackClient(t, dev.caFile)
	_, tok := rawToken(t, dev, hc, creds.TenantID, creds.ClientID, creds.ClientSecret, dev.resources().Base())
	certPEM, _ := ecPEM(t, elliptic.P256())
	for _, c := range [][3]string{
		{"POST", "keys/k1/create", `{"kty":"EC","crv":"P-256"}`},
		{"PUT", "secrets/k1", `{"value":"v"}`},
		{"POST", "certificates/c1/import", mustJSON(t, map[string]any{"value": certPEM, "policy": map[string]any{
			"secret_props": map[string]string{"contentType": "application/x-pem-file"}, "key_props": map[string]any{"kty": "EC", "crv": "P-256"}}})},
		{"POST", "keys/gone/create", `{"kty":"EC","crv":"P-256"}`},
		{"DELETE", "keys/gone", ""},
	} {
		if st, raw := kvCall(t, hc, tok, c[0], creds.VaultURL+c[1]+sdAPI, c[2]); st != 200 {
			t.Fatalf("%s %s = %d %s", c[0], c[1], st, raw)
		}
	}
	share, err := os.ReadFile(filepath.Join(dir, devShareFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dev.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// The same directory served without --dev: it is initialised, so it starts sealed.
	log := &readLog{}
	cfg := loadConfig(t, "--listen", listen, "--data-dir", dir,
		"--tls-cert-file", filepath.Join(dir, "tls", "server.pem"), "--tls-key-file", filepath.Join(dir, "tls", "server-key.pem"))
	ts := startWithClock(t, cfg, dev.caFile, nil, func(s *Server) {
		s.wrapStore = func(b storage.Backend) storage.Backend { log.Backend = b; return log }
	})
	if !ts.barrier.Sealed() {
		t.Fatal("the restarted server is not sealed")
	}
	log.take("") // the seal manager's own records, read at start
	port := ts.resources().port
	hc = loopbackClient(t, ts.caFile)
	placeholder := regexp.MustCompile(`\{[^}]+\}`)
	var bodies = map[string]int{}
	requests := 0
	for _, rt := range ts.dataRoutes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		for _, host := range []string{"dev.localhost", "devhsm.managedhsm.localhost", "nosuchvault.localhost"} {
			for _, name := range []string{"k1", "gone", "nosuch"} {
				path := placeholder.ReplaceAllString(pattern, name)
				for _, bearer := range []string{tok, ""} { // "": an empty bearer token
					status, b := kvCall(t, hc, bearer, method, "https://"+host+":"+port+path+sdAPI, `{"kty":"EC","value":"AAAA"}`)
					requests++
					if status != 503 {
						t.Errorf("sealed %s https://%s%s = %d %s; want 503", method, host, path, status, b)
						continue
					}
					code, msg := kvError(t, b)
					if code != "ServiceUnavailable" || !strings.Contains(msg, "unseal") {
						t.Errorf("sealed %s %s%s = %s %q; want ServiceUnavailable naming the unseal", method, host, path, code, msg)
					}
					bodies[string(b)]++
				}
			}
		}
	}
	if len(bodies) != 1 {
		t.Errorf("sealed answers differ: %d distinct bodies %v; want one", len(bodies), bodies)
	}
	if st, body, _ := ts.do(t, "GET", "/readyz", "", nil); st != 503 || body["status"] != "sealed" {
		t.Errorf("sealed /readyz = %d %v; want 503 sealed", st, body)
	}
	if read := log.take("d/"); len(read) != 0 {
		t.Errorf("while sealed, %d records under the barrier were read from the database: %v", len(read), read[:min(len(read), 5)])
	}
	t.Logf("%d data-plane requests on %d routes while sealed: all the same 503; 0 records read", requests, len(ts.dataRoutes()))

	// Unsealed, the same token reads the key: the 503s were the seal's, and the log sees reads.
	if st, body, _ := ts.do(t, "POST", "/v1/sys/unseal", "", map[string]string{"share": strings.TrimSpace(string(share))}); st != 200 || body["sealed"] != false {
		t.Fatalf("unseal = %d %v", st, body)
	}
	if st, raw := kvCall(t, hc, tok, "GET", "https://dev.localhost:"+port+"/keys/k1"+sdAPI, ""); st != 200 {
		t.Errorf("GET keys/k1 after the unseal = %d %s; want 200", st, raw)
	}
	if len(log.take("d/")) == 0 {
		t.Error("the read log saw no record read after the unseal: it does not observe the database")
	}
}
