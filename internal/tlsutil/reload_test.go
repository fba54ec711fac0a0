package tlsutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewReloaderRefuses(t *testing.T) {
	ca := newTestCA(t, "server CA")
	now := time.Now()
	goodCert, goodKey := ca.issue(t, leafOpts{})
	_, otherKey := ca.issue(t, leafOpts{})
	expiredCert, expiredKey := ca.issue(t, leafOpts{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})
	futureCert, futureKey := ca.issue(t, leafOpts{notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour)})
	clientCert, clientKey := ca.issue(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	weakCert, weakKey := ca.issue(t, leafOpts{key: rsaKey(t, 1024)})
	rsaCert, rsaKeyPEM := ca.issue(t, leafOpts{key: rsaKey(t, 2048)})

	tests := []struct {
		name     string
		cert     []byte // nil: the certificate file is missing
		key      []byte // nil: the key file is missing
		wantErr  []string
		wantFile string // "cert" or "key": the path the error must name
	}{
		{name: "ok/ecdsa", cert: goodCert, key: goodKey},
		{name: "ok/rsa-2048", cert: rsaCert, key: rsaKeyPEM},
		{name: "fail/cert-missing", key: goodKey, wantErr: []string{"no such file"}, wantFile: "cert"},
		{name: "fail/key-missing", cert: goodCert, wantErr: []string{"no such file"}, wantFile: "key"},
		{name: "fail/cert-empty", cert: []byte{}, key: goodKey, wantErr: []string{"no CERTIFICATE PEM block"}, wantFile: "cert"},
		{name: "fail/cert-garbage", cert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), key: goodKey, wantErr: []string{"certificate 1"}, wantFile: "cert"},
		{name: "fail/key-is-a-certificate", cert: goodCert, key: goodCert, wantErr: []string{"no PRIVATE KEY PEM block"}, wantFile: "key"},
		{name: "fail/key-garbage", cert: goodCert, key: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), wantErr: []string{"cannot parse"}, wantFile: "key"},
		{name: "fail/key-does-not-match", cert: goodCert, key: otherKey, wantErr: []string{"does not match"}, wantFile: "key"},
		{name: "fail/expired", cert: expiredCert, key: expiredKey, wantErr: []string{"expired"}, wantFile: "cert"},
		{name: "fail/not-yet-valid", cert: futureCert, key: futureKey, wantErr: []string{"not yet valid"}, wantFile: "cert"},
		{name: "fail/client-auth-only", cert: clientCert, key: clientKey, wantErr: []string{"serverAuth"}, wantFile: "cert"},
		{name: "fail/rsa-1024", cert: weakCert, key: weakKey, wantErr: []string{"1024 bits"}, wantFile: "cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			for path, data := range map[string][]byte{certFile: tc.cert, keyFile: tc.key} {
				if data == nil {
					continue
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := NewReloader(certFile, keyFile, nil, nil)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("NewReloader = %v; want success", err)
				}
				if r.Leaf() == nil {
					t.Fatal("Leaf() = nil after a successful load")
				}
				return
			}
			if err == nil {
				t.Fatalf("NewReloader succeeded; want an error containing %q", tc.wantErr)
			}
			path := map[string]string{"cert": certFile, "key": keyFile}[tc.wantFile]
			for _, s := range append(tc.wantErr, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("NewReloader error = %q; want it to contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Errorf("NewReloader error = %q; it quotes key material", err)
			}
		})
	}
}

func TestNewReloaderUsesClock(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	certFile, keyFile := writePEMs(t, t.TempDir(), certPEM, keyPEM)
	tests := []struct {
		name    string
		now     time.Time
		wantErr string
	}{
		{name: "ok/now", now: time.Now()},
		{name: "fail/clock-after-notAfter", now: time.Now().Add(48 * time.Hour), wantErr: "expired"},
		{name: "fail/clock-before-notBefore", now: time.Now().Add(-48 * time.Hour), wantErr: "not yet valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReloader(certFile, keyFile, nil, func() time.Time { return tc.now })
			if tc.wantErr == "" && err != nil {
				t.Fatalf("NewReloader = %v; want success", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("NewReloader = %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// servedSerial makes a new connection and returns the serial of the certificate served.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := dial(addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestReloadSwapsCertificate: a new pair is picked up by Reload, and separately by Watch; new
// connections see it while a connection made before keeps working (N5).
func TestReloadSwapsCertificate(t *testing.T) {
	tests := []struct {
		name  string
		watch bool // pick the change up with Watch instead of calling Reload
	}{
		{name: "reload/explicit"},
		{name: "reload/watch-50ms", watch: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t, "server CA")
			certA, keyA := ca.issue(t, leafOpts{serial: 0xA})
			certB, keyB := ca.issue(t, leafOpts{serial: 0xB})
			ts, r, certFile, keyFile := newServerWithPair(t, certA, keyA, "")

			old, err := dial(ts.addr, &tls.Config{RootCAs: ca.pool()})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer old.Close()
			if got := old.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 0xA {
				t.Fatalf("first connection saw serial %#x; want 0xa", got)
			}
			if code, _ := get(t, old); code != 200 {
				t.Fatalf("GET on first connection = %d; want 200", code)
			}

			if tc.watch {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); r.Watch(ctx, 50*time.Millisecond) }()
				defer func() { cancel(); <-done }()
			}
			// Written in place, key after certificate, as a careless operator would: Watch
			// may see the new certificate with the old key for a moment and must ride it out.
			if err := os.WriteFile(certFile, certB, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyFile, keyB, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.watch {
				waitFor(t, 5*time.Second, "Watch to serve cert B", func() bool {
					return r.Leaf().SerialNumber.Int64() == 0xB
				})
			} else if err := r.Reload(); err != nil {
				t.Fatalf("Reload = %v; want success", err)
			}

			if got := servedSerial(t, ts.addr, ca.pool()); got != 0xB {
				t.Errorf("new connection saw serial %#x; want 0xb", got)
			}
			if code, body := get(t, old); code != 200 || body != handlerBody {
				t.Errorf("GET on the connection made before the reload = %d %q; want 200 %q", code, body, handlerBody)
			}
			if got := old.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 0xA {
				t.Errorf("old connection's certificate changed to %#x", got)
			}
		})
	}
}

// TestReloadKeepsOldOnBadReplacement: a replacement that cannot serve is refused, logged, and
// the old certificate keeps serving.
func TestReloadKeepsOldOnBadReplacement(t *testing.T) {
	ca := newTestCA(t, "server CA")
	now := time.Now()
	certA, keyA := ca.issue(t, leafOpts{serial: 0xA})
	expiredCert, expiredKey := ca.issue(t, leafOpts{serial: 0xE, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Minute)})
	futureCert, futureKey := ca.issue(t, leafOpts{serial: 0xF, notBefore: now.Add(time.Hour)})
	certB, keyB := ca.issue(t, leafOpts{serial: 0xB})
	certC, _ := ca.issue(t, leafOpts{serial: 0xC})

	tests := []struct {
		name     string
		cert     []byte // nil: delete the certificate file
		key      []byte // nil: delete the key file
		wantErr  string
		wantFile string // "cert" or "key"
	}{
		{name: "fail/expired", cert: expiredCert, key: expiredKey, wantErr: "expired", wantFile: "cert"},
		{name: "fail/not-yet-valid", cert: futureCert, key: futureKey, wantErr: "not yet valid", wantFile: "cert"},
		{name: "fail/key-does-not-match", cert: certC, key: keyA, wantErr: "does not match", wantFile: "key"},
		{name: "fail/cert-truncated", cert: certA[:len(certA)/2], key: keyA, wantErr: "no CERTIFICATE PEM block", wantFile: "cert"},
		{name: "fail/cert-deleted", key: keyA, wantErr: "no such file", wantFile: "cert"},
		{name: "fail/key-deleted", cert: certA, wantErr: "no such file", wantFile: "key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			certFile, keyFile := writePEMs(t, t.TempDir(), certA, keyA)
			r, err := NewReloader(certFile, keyFile, logger, nil)
			if err != nil {
				t.Fatalf("NewReloader: %v", err)
			}
			cfg, err := ServerConfig(ServerOptions{Reloader: r})
			if err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, cfg)

			replace := func(path string, data []byte) {
				t.Helper()
				var err error
				if data == nil {
					err = os.Remove(path)
				} else {
					err = os.WriteFile(path, data, 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			replace(certFile, tc.cert)
			replace(keyFile, tc.key)

			err = r.Reload()
			path := map[string]string{"cert": certFile, "key": keyFile}[tc.wantFile]
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Reload = %v; want an error containing %q and %q", err, tc.wantErr, path)
			}
			if got := r.Leaf().SerialNumber.Int64(); got != 0xA {
				t.Errorf("Leaf().SerialNumber = %#x after a refused reload; want 0xa", got)
			}
			if got := servedSerial(t, ts.addr, ca.pool()); got != 0xA {
				t.Errorf("new connection saw serial %#x after a refused reload; want 0xa", got)
			}
			mu.Lock()
			logged := logs.String()
			mu.Unlock()
			if !strings.Contains(logged, "reload refused") || !strings.Contains(logged, tc.wantErr) {
				t.Errorf("logs = %q; want the refusal and its reason", logged)
			}
			if strings.Contains(logged, "PRIVATE KEY") {
				t.Errorf("logs contain key material: %q", logged)
			}

			// Fixing the files recovers without a restart.
			replace(certFile, certB)
			replace(keyFile, keyB)
			if err := r.Reload(); err != nil {
				t.Fatalf("Reload after fixing the files = %v; want success", err)
			}
			if got := servedSerial(t, ts.addr, ca.pool()); got != 0xB {
				t.Errorf("new connection saw serial %#x after fixing the files; want 0xb", got)
			}
		})
	}
}

// TestWatchRecoversAfterBadReplacement: Watch logs and skips a bad pair, keeps serving the
// old one, and picks up the next good pair.
func TestWatchRecoversAfterBadReplacement(t *testing.T) {
	ca := newTestCA(t, "server CA")
	now := time.Now()
	certA, keyA := ca.issue(t, leafOpts{serial: 0xA})
	expiredCert, expiredKey := ca.issue(t, leafOpts{serial: 0xE, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Minute)})
	certB, keyB := ca.issue(t, leafOpts{serial: 0xB})

	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	certFile, keyFile := writePEMs(t, t.TempDir(), certA, keyA)
	r, err := NewReloader(certFile, keyFile, logger, nil)
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Watch(ctx, 50*time.Millisecond) }()

	writePEMs(t, filepath.Dir(certFile), expiredCert, expiredKey)
	waitFor(t, 5*time.Second, "Watch to log the refused pair", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "has expired")
	})
	if got := r.Leaf().SerialNumber.Int64(); got != 0xA {
		t.Errorf("Leaf().SerialNumber = %#x after Watch saw an expired pair; want 0xa", got)
	}

	writePEMs(t, filepath.Dir(certFile), certB, keyB)
	waitFor(t, 5*time.Second, "Watch to serve cert B", func() bool {
		return r.Leaf().SerialNumber.Int64() == 0xB
	})

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

// TestReloaderConcurrent runs handshakes-worth of GetCertificate calls against reloads; the
// race detector checks the swap.
func TestReloaderConcurrent(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certA, keyA := ca.issue(t, leafOpts{serial: 0xA})
	certB, keyB := ca.issue(t, leafOpts{serial: 0xB})
	certFile, keyFile := writePEMs(t, t.TempDir(), certA, keyA)
	r, err := NewReloader(certFile, keyFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := r.GetCertificate(nil)
				if err != nil || c == nil || c.Leaf == nil {
					t.Errorf("GetCertificate = %v, %v", c, err)
					return
				}
				if s := c.Leaf.SerialNumber.Int64(); s != 0xA && s != 0xB {
					t.Errorf("GetCertificate served serial %#x", s)
					return
				}
			}
		}()
	}
	pairs := [][2][]byte{{certB, keyB}, {certA, keyA}}
	for i := range 20 {
		p := pairs[i%2]
		writePEMs(t, filepath.Dir(certFile), p[0], p[1])
		if err := r.Reload(); err != nil {
			t.Errorf("Reload %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}

// lockedWriter serialises writes to a buffer shared with the test goroutine.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
