package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/coffer-kms/coffer/internal/config"
	"github.com/coffer-kms/coffer/internal/server"
)

// run executes the coffer command line and returns its exit code, stdout and stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func startServer(t *testing.T, args ...string) *server.Server {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	if err := fs.Parse(append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(cfg, io.Discard, io.Discard)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func TestOperatorLifecycleThroughCLI(t *testing.T) {
	// A dev server provides the CA; a second, production-style server uses it for init.
	dev := startServer(t, "--dev")
	tlsDir := filepath.Dir(dev.Dev.CAFile)
	s := startServer(t, "--tls-cert-file", filepath.Join(tlsDir, "server.pem"), "--tls-key-file", filepath.Join(tlsDir, "server-key.pem"))
	conn := []string{"--addr", s.URL(), "--ca-cert", dev.Dev.CAFile}
	op := func(args ...string) []string { return append(append([]string{"operator"}, args...), conn...) }

	code, out, _ := run(t, "", op("status")...)
	if code != 0 || !strings.Contains(out, "Initialized:  false") {
		t.Fatalf("status before init = %d %q", code, out)
	}
	code, out, errOut := run(t, "", op("init", "--shares", "3", "--threshold", "2")...)
	if code != 0 {
		t.Fatalf("init = %d %q %q", code, out, errOut)
	}
	var shares []string
	var token string
	for _, l := range strings.Split(out, "\n") {
		if _, v, ok := strings.Cut(l, "Unseal share "); ok {
			shares = append(shares, strings.TrimSpace(v[strings.Index(v, ":")+1:]))
		}
		if v, ok := strings.CutPrefix(l, "Operator token: "); ok {
			token = strings.TrimSpace(v)
		}
	}
	if len(shares) != 3 || token == "" {
		t.Fatalf("init output has %d shares and token %q:\n%s", len(shares), token, out)
	}
	if code, _, errOut := run(t, "", op("init")...); code == 0 || !strings.Contains(errOut, "already initialized") {
		t.Errorf("second init = %d %q; want an error", code, errOut)
	}
	if code, _, errOut := run(t, "", op("unseal", "bogus-share")...); code == 0 || !strings.Contains(errOut, "400") {
		t.Errorf("unseal bogus = %d %q; want a 400 error", code, errOut)
	}
	run(t, "", op("unseal", shares[2])...)
	code, out, _ = run(t, shares[0]+"\n", op("unseal")...) // from stdin
	if code != 0 || !strings.Contains(out, "Sealed:       false") {
		t.Fatalf("unseal = %d %q; want unsealed", code, out)
	}
	if code, _, errOut := run(t, "", op("rotate")...); code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("rotate without token = %d %q; want 401", code, errOut)
	}
	code, out, _ = run(t, "", append(op("rotate"), "--token", token)...)
	if code != 0 || !strings.Contains(out, "term 2") {
		t.Errorf("rotate = %d %q; want term 2", code, out)
	}
	if code, _, errOut := run(t, "", op("verify-store")...); code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("verify-store without token = %d %q; want 401", code, errOut)
	}
	code, out, _ = run(t, "", append(op("verify-store"), "--token", token)...)
	if code != 0 || !strings.Contains(out, "Store intact at generation") {
		t.Errorf("verify-store = %d %q; want the store intact", code, out)
	}
	code, out, _ = run(t, "", op("status")...)
	if code != 0 || !strings.Contains(out, "Generation:   ") {
		t.Errorf("status = %d %q; want the store generation", code, out)
	}
	if code, _, errOut := run(t, "", op("confirm-clock", "--yes")...); code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("confirm-clock without token = %d %q; want 401", code, errOut)
	}
	code, out, _ = run(t, "", append(op("confirm-clock"), "--token", token)...)
	if code != 0 || !strings.Contains(out, "Server clock:") || !strings.Contains(out, "Purges are not held") {
		t.Errorf("confirm-clock = %d %q; want the clock and no hold", code, out)
	}
	code, out, _ = run(t, "", append(op("confirm-clock", "--yes"), "--token", token)...)
	if code != 0 || !strings.Contains(out, "Clock confirmed") {
		t.Errorf("confirm-clock --yes = %d %q; want the confirmation", code, out)
	}
	code, out, _ = run(t, "", append(op("seal"), "--token", token)...)
	if code != 0 || !strings.Contains(out, "Sealed:       true") {
		t.Errorf("seal = %d %q", code, out)
	}
}

func TestServerRefusesBadConfig(t *testing.T) {
	code, _, errOut := run(t, "", "server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "xml")
	if code == 0 || !strings.Contains(errOut, `"log-format"`) || !strings.Contains(errOut, `"tls-cert-file"`) {
		t.Errorf("server with bad config = %d %q; want exit 1 naming log-format and tls-cert-file", code, errOut)
	}
	if code, _, errOut := run(t, "", "operator", "status", "--addr", "http://localhost:1"); code == 0 || !strings.Contains(errOut, "HTTPS only") {
		t.Errorf("operator with http:// = %d %q", code, errOut)
	}
	code, out, _ := run(t, "", "server", "--help")
	for _, flag := range []string{"--dev", "--listen", "--data-dir", "--tls-cert-file", "--tls-client-ca-file", "COFFER_LISTEN", "--config"} {
		if !strings.Contains(out, flag) {
			t.Errorf("server --help lacks %s", flag)
		}
	}
}
