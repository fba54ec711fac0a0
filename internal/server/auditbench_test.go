package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
)

// BenchmarkAuditOverhead measures the data plane (in process, no TLS, GET key with a cached
// token, 32 concurrent callers) with the real audit log (each record fsynced, group commit)
// and with no audit sink, to hold the audit cost against the 15% budget (BENCHMARKS.md).
// The no-audit variant exists only here: the server has no switch to turn auditing off.
func BenchmarkAuditOverhead(b *testing.B) {
	cfg := loadConfigB(b, "--dev", "--listen", "127.0.0.1:0", "--data-dir", b.TempDir(), "--log-level", "error", "--tenant-rate-limit", "0", "--tenant-max-concurrent", "0")
	s := New(cfg, io.Discard, io.Discard)
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	id, err := s.ident()
	if err != nil {
		b.Fatal(err)
	}
	host := "dev.localhost:" + s.resources().port
	if _, err := id.keys.Create(context.Background(), *s.devVault, "https://"+host, "bench", keys.CreateParams{Kty: "EC"}); err != nil {
		b.Fatal(err)
	}
	c := s.Dev.Credentials
	hc := &http.Client{Transport: loopbackTransport(b, s.Dev.CAFile)}
	tok := tokenFor(b, hc, s.resources().Base(), c.TenantID, c.ClientID, c.ClientSecret)
	for _, tc := range []struct {
		name  string
		audit bool
	}{{"audit-on", true}, {"audit-off", false}} {
		b.Run(tc.name, func(b *testing.B) {
			dp := *s.data
			if !tc.audit {
				dp.Audit = nil
			}
			h := dp.Handler(s.dataRoutes(), nil)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", "https://"+host+"/keys/bench?api-version=7.6", nil)
					req.Host = host
					req.Header.Set("Authorization", "Bearer "+tok)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("GET key = %d %s", w.Code, w.Body.String())
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
