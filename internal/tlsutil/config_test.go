package tlsutil

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestServerConfig(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	dir := t.TempDir()
	certFile, keyFile := writePEMs(t, dir, certPEM, keyPEM)
	r, err := NewReloader(certFile, keyFile, nil, nil)
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodCA := write("clients.pem", string(ca.pem))
	emptyCA := write("empty.pem", "")
	keyOnlyCA := write("key-only.pem", string(keyPEM))
	garbageCA := write("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	missingCA := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name     string
		opts     ServerOptions
		wantErr  []string // substrings; nil means success
		wantMTLS bool
	}{
		{name: "ok/no-mtls", opts: ServerOptions{Reloader: r}},
		{name: "ok/mtls", opts: ServerOptions{Reloader: r, ClientCAFile: goodCA}, wantMTLS: true},
		{name: "fail/no-reloader", opts: ServerOptions{}, wantErr: []string{"Reloader is required"}},
		{name: "fail/client-ca-missing", opts: ServerOptions{Reloader: r, ClientCAFile: missingCA}, wantErr: []string{missingCA}},
		{name: "fail/client-ca-empty", opts: ServerOptions{Reloader: r, ClientCAFile: emptyCA}, wantErr: []string{emptyCA, "no CERTIFICATE"}},
		{name: "fail/client-ca-only-a-key", opts: ServerOptions{Reloader: r, ClientCAFile: keyOnlyCA}, wantErr: []string{keyOnlyCA, "no CERTIFICATE"}},
		{name: "fail/client-ca-garbage", opts: ServerOptions{Reloader: r, ClientCAFile: garbageCA}, wantErr: []string{garbageCA, "certificate 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ServerConfig(tc.opts)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ServerConfig(%+v) = nil error; want one containing %q", tc.opts, tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("ServerConfig error = %q; want it to contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ServerConfig(%+v) = %v", tc.opts, err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %#x; want TLS 1.2", cfg.MinVersion)
			}
			want := []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			}
			if !slices.Equal(cfg.CipherSuites, want) {
				t.Errorf("CipherSuites = %v; want exactly the ECDHE AEAD suites %v", cfg.CipherSuites, want)
			}
			if !cfg.SessionTicketsDisabled {
				t.Error("SessionTicketsDisabled = false; want no session tickets")
			}
			if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
				t.Errorf("NextProtos = %q; want [h2 http/1.1]", cfg.NextProtos)
			}
			if cfg.GetCertificate == nil || len(cfg.Certificates) != 0 {
				t.Errorf("want certificates only through GetCertificate; got GetCertificate=%v, %d static", cfg.GetCertificate != nil, len(cfg.Certificates))
			}
			gotMTLS := cfg.ClientAuth == tls.RequireAndVerifyClientCert && cfg.ClientCAs != nil
			if gotMTLS != tc.wantMTLS || (!tc.wantMTLS && cfg.ClientAuth != tls.NoClientCert) {
				t.Errorf("ClientAuth = %v (ClientCAs set: %v); want mTLS = %v", cfg.ClientAuth, cfg.ClientCAs != nil, tc.wantMTLS)
			}
		})
	}
}

// TestHandshakePolicy drives real handshakes against an http.Server using ServerConfig (N1, N2).
func TestHandshakePolicy(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	ts, _, _, _ := newServerWithPair(t, certPEM, keyPEM, "")

	tests := []struct {
		name        string
		client      *tls.Config
		wantErr     []string // substrings of the client's error; nil means the handshake succeeds
		wantVersion uint16
		wantSuite   uint16 // 0: not checked
		wantALPN    string
	}{
		{
			name:    "fail/tls11-max",
			client:  &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			wantErr: []string{"remote error", "protocol version"},
		},
		{
			name: "fail/tls12-cbc-only",
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			}},
			wantErr: []string{"remote error", "handshake failure"},
		},
		{
			name: "fail/tls12-rsa-key-transport-only",
			client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
			}},
			wantErr: []string{"remote error", "handshake failure"},
		},
		{
			name:        "ok/tls12-ecdhe-ecdsa-aes128-gcm",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			wantVersion: tls.VersionTLS12,
			wantSuite:   tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		},
		{
			name:        "ok/tls12-ecdhe-ecdsa-aes256-gcm",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			wantVersion: tls.VersionTLS12,
			wantSuite:   tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		},
		{
			name:        "ok/tls12-ecdhe-ecdsa-chacha20",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			wantVersion: tls.VersionTLS12,
			wantSuite:   tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		{
			name:        "ok/tls12-default-suites-pick-aead",
			client:      &tls.Config{MaxVersion: tls.VersionTLS12},
			wantVersion: tls.VersionTLS12,
		},
		{
			name:        "ok/default-client-gets-tls13",
			client:      &tls.Config{},
			wantVersion: tls.VersionTLS13,
		},
		{
			name:        "ok/alpn-h2",
			client:      &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
			wantVersion: tls.VersionTLS13,
			wantALPN:    "h2",
		},
		{
			name:        "ok/alpn-http11-only",
			client:      &tls.Config{NextProtos: []string{"http/1.1"}},
			wantVersion: tls.VersionTLS13,
			wantALPN:    "http/1.1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.client.Clone()
			cfg.RootCAs = ca.pool()
			c, err := dial(ts.addr, cfg)
			if tc.wantErr != nil {
				if err == nil {
					st := c.ConnectionState()
					c.Close()
					t.Fatalf("handshake succeeded with %s / %s; want refusal", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("handshake error = %q; want it to contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.Version != tc.wantVersion {
				t.Errorf("version = %s; want %s", tls.VersionName(st.Version), tls.VersionName(tc.wantVersion))
			}
			if tc.wantSuite != 0 && st.CipherSuite != tc.wantSuite {
				t.Errorf("cipher suite = %s; want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tc.wantSuite))
			}
			if st.Version == tls.VersionTLS12 && !slices.Contains(tls12CipherSuites(), st.CipherSuite) {
				t.Errorf("cipher suite = %s; not one of the ECDHE AEAD suites", tls.CipherSuiteName(st.CipherSuite))
			}
			if st.NegotiatedProtocol != tc.wantALPN {
				t.Errorf("ALPN = %q; want %q", st.NegotiatedProtocol, tc.wantALPN)
			}
		})
	}
}

// TestHTTP2 checks that an http.Server given ServerConfig's config serves HTTP/2.
func TestHTTP2(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	ts, _, _, _ := newServerWithPair(t, certPEM, keyPEM, "")

	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool()},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + strings.Replace(ts.addr, "127.0.0.1", "localhost", 1) + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("response protocol = %s (ALPN %q); want HTTP/2.0 over h2", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if resp.StatusCode != http.StatusOK || string(body) != handlerBody {
		t.Errorf("response = %d %q; want 200 %q", resp.StatusCode, body, handlerBody)
	}
}

// TestPlainHTTPRefused sends plain HTTP to the TLS port (F3, N3): a 400 from the TLS layer,
// no handler run, nothing from the handler in the body.
func TestPlainHTTPRefused(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	ts, _, _, _ := newServerWithPair(t, certPEM, keyPEM, "")

	tests := []struct {
		name    string
		request string
	}{
		{name: "plain/get", request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "plain/post-with-body", request: "POST /keys/k/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"},
		{name: "plain/http10", request: "GET / HTTP/1.0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.calls.Load()
			c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tc.request); err != nil {
				t.Fatalf("write: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status = %d; want 400", resp.StatusCode)
			}
			if strings.Contains(string(body), handlerBody) {
				t.Errorf("body = %q; the handler's output leaked over plain HTTP", body)
			}
			if n := ts.calls.Load() - before; n != 0 {
				t.Errorf("handler ran %d times for a plain-HTTP request; want 0", n)
			}
		})
	}
}

// countingCache is a client session cache that counts the tickets the server hands out.
type countingCache struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// TestNoSessionResumption checks that the server issues no session tickets, on TLS 1.2 or
// 1.3, so a second connection makes a full handshake. Go's tickets live 7 days under keys
// rotated daily (testssl: TLS_session_ticket LOW, "PFS requires session ticket keys to be
// rotated < daily"); a stolen ticket key would open every TLS 1.2 session resumed with it.
func TestNoSessionResumption(t *testing.T) {
	ca := newTestCA(t, "server CA")
	certPEM, keyPEM := ca.issue(t, leafOpts{})
	ts, _, _, _ := newServerWithPair(t, certPEM, keyPEM, "")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cache := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			cfg := &tls.Config{RootCAs: ca.pool(), MinVersion: v, MaxVersion: v, ClientSessionCache: cache}
			for i := range 2 {
				c, err := dial(ts.addr, cfg)
				if err != nil {
					t.Fatalf("handshake %d: %v", i+1, err)
				}
				// A TLS 1.3 ticket arrives after the handshake: read a response to see it.
				if status, _ := get(t, c); status != http.StatusOK {
					t.Fatalf("GET = %d", status)
				}
				if c.ConnectionState().DidResume {
					t.Errorf("connection %d resumed a session; want a full handshake every time", i+1)
				}
				c.Close()
			}
			if n := cache.puts.Load(); n != 0 {
				t.Errorf("server issued %d session tickets; want none", n)
			}
		})
	}
}
