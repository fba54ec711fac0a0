package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMutualTLS: with ClientCAFile set, only clients holding a currently valid clientAuth
// certificate from that CA get a response (N6).
func TestMutualTLS(t *testing.T) {
	serverCA := newTestCA(t, "server CA")
	clientCA := newTestCA(t, "client CA")
	otherCA := newTestCA(t, "some other CA")
	now := time.Now()

	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caFile, clientCA.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := serverCA.issue(t, leafOpts{})
	ts, _, _, _ := newServerWithPair(t, certPEM, keyPEM, caFile)
	url := "https://" + strings.Replace(ts.addr, "127.0.0.1", "localhost", 1) + "/"

	tests := []struct {
		name      string
		cert      *tls.Certificate // nil: present no certificate
		tlsMax    uint16           // 0: default (TLS 1.3)
		wantOK    bool
		wantAlert string // the TLS alert the server sends when refusing
	}{
		{name: "ok/right-ca", cert: ptr(clientCA.clientCert(t, leafOpts{})), wantOK: true},
		{name: "ok/right-ca-tls12", cert: ptr(clientCA.clientCert(t, leafOpts{})), tlsMax: tls.VersionTLS12, wantOK: true},
		{name: "fail/no-client-cert", wantAlert: "certificate required"},
		{name: "fail/no-client-cert-tls12", tlsMax: tls.VersionTLS12, wantAlert: "handshake failure"},
		{name: "fail/other-ca", cert: ptr(otherCA.clientCert(t, leafOpts{})), wantAlert: "unknown certificate authority"},
		{name: "fail/server-ca-is-not-client-ca", cert: ptr(serverCA.clientCert(t, leafOpts{})), wantAlert: "unknown certificate authority"},
		{name: "fail/expired", cert: ptr(clientCA.clientCert(t, leafOpts{notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)})), wantAlert: "expired certificate"},
		{name: "fail/wrong-eku-server-auth", cert: ptr(clientCA.clientCert(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), wantAlert: "bad certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.calls.Load()
			cfg := &tls.Config{RootCAs: serverCA.pool(), MaxVersion: tc.tlsMax}
			if tc.cert != nil {
				// Send the certificate whatever CAs the server names: Go's client would
				// otherwise withhold one from a foreign CA, and the server's verification
				// would go untested.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return tc.cert, nil
				}
			}
			tr := &http.Transport{TLSClientConfig: cfg}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			resp, err := client.Get(url)
			if !tc.wantOK {
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("GET = %d %q; want a failed handshake", resp.StatusCode, body)
				}
				// The server, not the client, must be the one refusing.
				if want := "remote error: tls: " + tc.wantAlert; !strings.Contains(err.Error(), want) {
					t.Errorf("GET error = %q; want the server's alert %q", err, want)
				}
				if n := ts.calls.Load() - before; n != 0 {
					t.Errorf("handler ran %d times for a refused client; want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != handlerBody {
				t.Errorf("GET = %d %q; want 200 %q", resp.StatusCode, body, handlerBody)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
