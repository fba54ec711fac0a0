package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secrets"
)

// BenchmarkDataPlaneHandler is the server's own share of a data-plane read: the handler
// chain the listener calls (routing, token cache, RBAC, the keys or secrets service, the
// JSON answer), in process, one caller, without TLS, HTTP parsing or the audit record. It
// is the figure to compare before and after a change to that chain (BENCHMARKS.md); over
// HTTPS the transport adds a roughly fixed cost on top.
func BenchmarkDataPlaneHandler(b *testing.B) {
	cfg := loadConfigB(b, "--dev", "--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--log-level", "error", "--tenant-rate-limit", "0", "--tenant-max-concurrent", "0")
	s := New(cfg, io.Discard, io.Discard)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(ctx)
	id, err := s.ident()
	if err != nil {
		b.Fatal(err)
	}
	host := "dev.localhost:" + s.resources().port
	if _, err := id.keys.Create(ctx, *s.devVault, "https://"+host, "bench", keys.CreateParams{Kty: "EC"}); err != nil {
		b.Fatal(err)
	}
	value := secrets.Value("0123456789abcdef0123456789abcdef")
	if _, err := id.secrets.Set(ctx, *s.devVault, "https://"+host, "bench", secrets.SetParams{Value: &value}); err != nil {
		b.Fatal(err)
	}
	c := s.Dev.Credentials
	hc := &http.Client{Transport: loopbackTransport(b, s.Dev.CAFile)}
	tok := tokenFor(b, hc, s.resources().Base(), c.TenantID, c.ClientID, c.ClientSecret)
	dp := *s.data
	dp.Audit = nil
	h := s.metricsByPattern(dp.Handler(s.dataRoutes(), nil))
	signBody := `{"alg":"ES256","value":"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"}`
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/keys/bench", ""},
		{"GET", "/secrets/bench", ""},
		{"POST", "/keys/bench/sign", signBody}, // includes a ~35 µs ECDSA signature
	} {
		path := c.path
		b.Run(path[1:], func(b *testing.B) {
			req := httptest.NewRequest(c.method, "https://"+host+path+"?api-version=7.6", nil)
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			b.ReportAllocs()
			for b.Loop() {
				r := req.Clone(ctx)
				r.Body = io.NopCloser(strings.NewReader(c.body))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("GET %s = %d %s", path, w.Code, w.Body.String())
				}
			}
		})
	}
}
