package server

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAuditStdoutSink(t *testing.T) {
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--audit-stdout")
	out := &lockedWriter{}
	s := New(cfg, out, io.Discard)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, caFile: s.Dev.CAFile}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	hc := loopbackClient(t, ts.caFile)
	c := s.Dev.Credentials
	_, tok := rawToken(t, ts, hc, c.TenantID, c.ClientID, c.ClientSecret, "https://managedhsm.localhost:"+s.resources().port)
	if status, _, _ := rng(t, hc, "devhsm.managedhsm.localhost", s.resources().port, tok); status != 200 {
		t.Fatalf("rng = %d", status)
	}
	s.dropIdentity()
	// Standard output also carries the dev banner (which shows the dev secret by design);
	// the audit records are its JSON lines.
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			lines = append(lines, l)
		}
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{`"op":"TokenIssue"`, `"op":"GetRandomBytes"`, `"kind":"checkpoint"`} {
		if !strings.Contains(got, want) {
			t.Errorf("stdout audit sink lacks %s", want)
		}
	}
	if strings.Contains(got, tok) || strings.Contains(got, c.ClientSecret) {
		t.Error("stdout audit sink contains a token or secret")
	}
}
