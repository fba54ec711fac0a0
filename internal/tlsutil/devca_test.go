package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// devT0 is the dev CA tests' clock. March was chosen so that eleven months later
// (2027-02-01) the leaf issued at devT0 (notAfter 2027-03-01) has 28 days left: under the
// 30-day renewal threshold. From a month followed by a 31-day twelfth month, "11 months"
// would leave 31 days and the leaf would rightly be kept.
var devT0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE PEM block", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestEnsureDevCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev-tls")
	files, err := EnsureDevCA(dir, nil, devT0)
	if err != nil {
		t.Fatalf("EnsureDevCA: %v", err)
	}
	want := DevFiles{
		CACert: filepath.Join(dir, "ca.pem"),
		CAKey:  filepath.Join(dir, "ca-key.pem"),
		Cert:   filepath.Join(dir, "server.pem"),
		Key:    filepath.Join(dir, "server-key.pem"),
	}
	if files != want {
		t.Fatalf("EnsureDevCA files = %+v; want %+v", files, want)
	}

	t.Run("files/modes", func(t *testing.T) {
		for path, mode := range map[string]os.FileMode{files.CAKey: 0o600, files.Key: 0o600, files.CACert: 0o644, files.Cert: 0o644} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("mode of %s = %v; want %v", filepath.Base(path), fi.Mode().Perm(), mode)
			}
		}
	})
	t.Run("files/no-temporaries-left", func(t *testing.T) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{"ca-key.pem", "ca.pem", "server-key.pem", "server.pem"}; !slices.Equal(names, want) {
			t.Errorf("directory holds %q; want exactly %q", names, want)
		}
	})

	ca, leaf := readCert(t, files.CACert), readCert(t, files.Cert)
	t.Run("ca/profile", func(t *testing.T) {
		if ca.Subject.CommonName != "Coffer development CA (NOT FOR PRODUCTION)" {
			t.Errorf("CA CN = %q", ca.Subject.CommonName)
		}
		if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
			t.Errorf("CA basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v; want CA with path length 0",
				ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
		}
		if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
			t.Errorf("CA KeyUsage = %v; want CertSign|CRLSign", ca.KeyUsage)
		}
		if !ca.NotBefore.Equal(devT0.Add(-5*time.Minute)) || !ca.NotAfter.Equal(devT0.AddDate(10, 0, 0)) {
			t.Errorf("CA validity = %v .. %v; want %v .. %v", ca.NotBefore, ca.NotAfter, devT0.Add(-5*time.Minute), devT0.AddDate(10, 0, 0))
		}
	})
	t.Run("leaf/profile", func(t *testing.T) {
		if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
			t.Errorf("leaf ExtKeyUsage = %v, IsCA = %v; want serverAuth only, not a CA", leaf.ExtKeyUsage, leaf.IsCA)
		}
		if !leaf.NotBefore.Equal(devT0.Add(-5*time.Minute)) || !leaf.NotAfter.Equal(devT0.AddDate(1, 0, 0)) {
			t.Errorf("leaf validity = %v .. %v; want %v .. %v", leaf.NotBefore, leaf.NotAfter, devT0.Add(-5*time.Minute), devT0.AddDate(1, 0, 0))
		}
		if !slices.Equal(leaf.DNSNames, []string{"localhost", "*.localhost"}) {
			t.Errorf("leaf DNSNames = %q; want [localhost *.localhost]", leaf.DNSNames)
		}
		if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
			t.Errorf("leaf IPAddresses = %v; want [127.0.0.1 ::1]", leaf.IPAddresses)
		}
	})
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
	}{{"serial/ca", ca}, {"serial/leaf", leaf}} {
		t.Run(tc.name, func(t *testing.T) {
			if n := tc.cert.SerialNumber.BitLen(); n < 64 || tc.cert.SerialNumber.Sign() <= 0 {
				t.Errorf("serial %x has %d bits; want a positive serial of ≥ 64 bits", tc.cert.SerialNumber, n)
			}
			k, ok := tc.cert.PublicKey.(*ecdsa.PublicKey)
			if !ok || k.Curve != elliptic.P256() {
				t.Errorf("public key %T; want ECDSA P-256", tc.cert.PublicKey)
			}
		})
	}
	if ca.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Errorf("CA and leaf share serial %x", ca.SerialNumber)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, tc := range []struct {
		name   string
		host   string
		wantOK bool
	}{
		{name: "verify/localhost", host: "localhost", wantOK: true},
		{name: "verify/vault-subdomain", host: "v1.localhost", wantOK: true},
		{name: "verify/ipv4-loopback", host: "127.0.0.1", wantOK: true},
		{name: "verify/ipv6-loopback", host: "::1", wantOK: true},
		{name: "verify/fail-two-labels-under-wildcard", host: "a.v1.localhost"},
		{name: "verify/fail-other-domain", host: "example.com"},
		{name: "verify/fail-other-ip", host: "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:     tc.host,
				Roots:       roots,
				CurrentTime: devT0,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err == nil) != tc.wantOK {
				t.Errorf("leaf.Verify(%q) = %v; want ok = %v", tc.host, err, tc.wantOK)
			}
		})
	}
}

// TestEnsureDevCAServesTLS: the dev files load into a Reloader and serve real handshakes for
// vault hosts under *.localhost and the loopback addresses.
func TestEnsureDevCAServesTLS(t *testing.T) {
	files, err := EnsureDevCA(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatalf("EnsureDevCA: %v", err)
	}
	r, err := NewReloader(files.Cert, files.Key, nil, nil)
	if err != nil {
		t.Fatalf("NewReloader over dev files: %v", err)
	}
	cfg, err := ServerConfig(ServerOptions{Reloader: r})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, files.CACert))
	for _, host := range []string{"localhost", "v1.localhost", "127.0.0.1", "::1"} {
		t.Run("serve/"+host, func(t *testing.T) {
			c, err := dial(ts.addr, &tls.Config{RootCAs: roots, ServerName: host})
			if err != nil {
				t.Fatalf("handshake as %q: %v", host, err)
			}
			defer c.Close()
			if code, _ := get(t, c); code != 200 {
				t.Errorf("GET as %q = %d; want 200", host, code)
			}
		})
	}
}

func TestEnsureDevCARenewal(t *testing.T) {
	hosts := DefaultDevHosts()
	otherCA := newTestCA(t, "not the dev CA")
	foreignCert, foreignKey := otherCA.issue(t, leafOpts{})

	tests := []struct {
		name        string
		mutate      func(t *testing.T, f DevFiles) // nil: leave the files alone
		hosts       []string                       // nil: DefaultDevHosts
		at          func(leafNotAfter time.Time) time.Time
		wantNewLeaf bool
		wantNewCA   bool
	}{
		{name: "reuse/same-time", at: func(time.Time) time.Time { return devT0 }},
		{name: "reuse/next-day", at: func(time.Time) time.Time { return devT0.Add(24 * time.Hour) }},
		{name: "reuse/31-days-left", at: func(na time.Time) time.Time { return na.Add(-31 * 24 * time.Hour) }},
		{name: "reissue/30-days-left", at: func(na time.Time) time.Time { return na.Add(-30 * 24 * time.Hour) }, wantNewLeaf: true},
		{name: "reissue/11-months-later", at: func(time.Time) time.Time { return devT0.AddDate(0, 11, 0) }, wantNewLeaf: true},
		{name: "reissue/leaf-expired", at: func(na time.Time) time.Time { return na.Add(time.Hour) }, wantNewLeaf: true},
		{name: "reissue/new-host", hosts: append(DefaultDevHosts(), "vault.coffer.test"), wantNewLeaf: true},
		{name: "reissue/new-ip", hosts: append(DefaultDevHosts(), "192.0.2.7"), wantNewLeaf: true},
		{name: "reuse/fewer-hosts", hosts: []string{"localhost"}},
		{name: "reissue/leaf-key-missing", mutate: remove(func(f DevFiles) string { return f.Key }), wantNewLeaf: true},
		{name: "reissue/leaf-cert-missing", mutate: remove(func(f DevFiles) string { return f.Cert }), wantNewLeaf: true},
		{name: "reissue/leaf-garbage", mutate: overwrite(func(f DevFiles) string { return f.Cert }, []byte("garbage")), wantNewLeaf: true},
		{name: "reissue/leaf-key-mismatch", mutate: overwrite(func(f DevFiles) string { return f.Key }, foreignKey), wantNewLeaf: true},
		{name: "reissue/leaf-from-other-ca", mutate: func(t *testing.T, f DevFiles) {
			overwrite(func(f DevFiles) string { return f.Cert }, foreignCert)(t, f)
			overwrite(func(f DevFiles) string { return f.Key }, foreignKey)(t, f)
		}, wantNewLeaf: true},
		{name: "reissue-ca/ca-key-missing", mutate: remove(func(f DevFiles) string { return f.CAKey }), wantNewLeaf: true, wantNewCA: true},
		{name: "reissue-ca/ca-garbage", mutate: overwrite(func(f DevFiles) string { return f.CACert }, []byte("garbage")), wantNewLeaf: true, wantNewCA: true},
		{name: "reissue-ca/ca-expiring-within-a-leaf-lifetime", at: func(time.Time) time.Time { return devT0.AddDate(9, 6, 0) }, wantNewLeaf: true, wantNewCA: true},
		{name: "reuse/loose-key-mode-tightened", mutate: func(t *testing.T, f DevFiles) {
			if err := os.Chmod(f.Key, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f.CAKey, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := EnsureDevCA(dir, hosts, devT0)
			if err != nil {
				t.Fatalf("first EnsureDevCA: %v", err)
			}
			ca1, leaf1 := readCert(t, files.CACert), readCert(t, files.Cert)
			if tc.mutate != nil {
				tc.mutate(t, files)
			}
			at := devT0
			if tc.at != nil {
				at = tc.at(leaf1.NotAfter)
			}
			h := hosts
			if tc.hosts != nil {
				h = tc.hosts
			}
			files2, err := EnsureDevCA(dir, h, at)
			if err != nil {
				t.Fatalf("second EnsureDevCA: %v", err)
			}
			if files2 != files {
				t.Errorf("second EnsureDevCA files = %+v; want %+v", files2, files)
			}
			ca2, leaf2 := readCert(t, files.CACert), readCert(t, files.Cert)
			if gotNew := !sameSerial(leaf1.SerialNumber, leaf2.SerialNumber); gotNew != tc.wantNewLeaf {
				t.Errorf("leaf re-issued = %v (serial %x -> %x); want %v", gotNew, leaf1.SerialNumber, leaf2.SerialNumber, tc.wantNewLeaf)
			}
			if gotNew := !sameSerial(ca1.SerialNumber, ca2.SerialNumber); gotNew != tc.wantNewCA {
				t.Errorf("CA re-issued = %v (serial %x -> %x); want %v", gotNew, ca1.SerialNumber, ca2.SerialNumber, tc.wantNewCA)
			}
			// Whatever happened, the result must be a working, covering pair at `at`.
			roots := x509.NewCertPool()
			roots.AddCert(ca2)
			for _, host := range h {
				name := strings.Replace(host, "*", "v1", 1)
				if _, err := leaf2.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at}); err != nil {
					t.Errorf("leaf.Verify(%q) at %v = %v", name, at, err)
				}
			}
			if left := leaf2.NotAfter.Sub(at); left <= 30*24*time.Hour {
				t.Errorf("leaf has %v left after EnsureDevCA; want more than 30 days", left)
			}
			if _, err := tls.LoadX509KeyPair(files.Cert, files.Key); err != nil {
				t.Errorf("server pair does not load: %v", err)
			}
			if _, err := tls.LoadX509KeyPair(files.CACert, files.CAKey); err != nil {
				t.Errorf("CA pair does not load: %v", err)
			}
			for _, p := range []string{files.Key, files.CAKey} {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("mode of %s = %v (%v); want 0600", filepath.Base(p), fi.Mode().Perm(), err)
				}
			}
		})
	}
}

func TestEnsureDevCAErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the directory to pass
		hosts   []string
		wantErr string
	}{
		{name: "fail/empty-host", setup: func(t *testing.T) string { return t.TempDir() }, hosts: []string{"localhost", ""}, wantErr: `""`},
		{name: "fail/host-with-port", setup: func(t *testing.T) string { return t.TempDir() }, hosts: []string{"localhost:8443"}, wantErr: "localhost:8443"},
		{name: "fail/dir-is-a-file", setup: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, wantErr: "file"},
		{name: "fail/ca-unreadable-not-overwritten", setup: func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "ca.pem"), 0o700); err != nil { // exists, but is not a file
				t.Fatal(err)
			}
			return dir
		}, wantErr: "ca.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			_, err := EnsureDevCA(dir, tc.hosts, devT0)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("EnsureDevCA = %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func sameSerial(a, b *big.Int) bool { return a.Cmp(b) == 0 }

func remove(path func(DevFiles) string) func(*testing.T, DevFiles) {
	return func(t *testing.T, f DevFiles) {
		if err := os.Remove(path(f)); err != nil {
			t.Fatal(err)
		}
	}
}

func overwrite(path func(DevFiles) string, data []byte) func(*testing.T, DevFiles) {
	return func(t *testing.T, f DevFiles) {
		if err := os.WriteFile(path(f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
