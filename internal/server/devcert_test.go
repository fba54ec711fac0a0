package server

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// opensslMatches reports whether OpenSSL-based clients (curl, Python's ssl and so the Azure
// SDK for Python, the Azure CLI) accept host for a certificate with these DNS names: an exact
// name, or a wildcard in the leftmost label only, standing for exactly one label, with at
// least two labels after it. OpenSSL refuses "*.localhost" for "dev.localhost" where Go's
// crypto/x509 accepts it.
func opensslMatches(dnsNames []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range dnsNames {
		n = strings.ToLower(n)
		if n == host {
			return true
		}
		rest, ok := strings.CutPrefix(n, "*.")
		if !ok || !strings.Contains(rest, ".") {
			continue
		}
		if label, after, ok := strings.Cut(host, "."); ok && label != "" && after == rest {
			return true
		}
	}
	return false
}

// TestDevCertificateCoversPrintedHostsForOpenSSL checks that every host dev mode prints (the
// authority, the dev vault, the dev managed HSM pool) is in the dev certificate in a form
// OpenSSL-based clients accept, not only Go ones, for the default DNS suffix and others; and,
// where the openssl tool is installed, that `openssl verify -verify_hostname` agrees.
func TestDevCertificateCoversPrintedHostsForOpenSSL(t *testing.T) {
	for _, suffix := range []string{"localhost", "test", "coffer.test"} {
		t.Run(suffix, func(t *testing.T) {
			ts := startDev(t, "--dns-suffix", suffix)
			leaf := ts.reloader.Leaf()
			creds := ts.Dev.Credentials
			for _, raw := range []string{creds.AuthorityHost, creds.VaultURL, creds.ManagedHSMURL} {
				u, err := url.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				host := u.Hostname()
				if err := leaf.VerifyHostname(host); err != nil {
					t.Errorf("Go: %s: %v", host, err)
				}
				if !opensslMatches(leaf.DNSNames, host) {
					t.Errorf("OpenSSL rule: %s is not covered by %q", host, leaf.DNSNames)
				}
				if _, err := exec.LookPath("openssl"); err == nil {
					out, err := exec.Command("openssl", "verify", "-CAfile", ts.Dev.CAFile, "-verify_hostname", host, filepath.Join(ts.cfg.DataDir, "tls", "server.pem")).CombinedOutput()
					if err != nil {
						t.Errorf("openssl verify -verify_hostname %s: %v\n%s", host, err, out)
					}
				}
			}
		})
	}
}

func TestOpenSSLMatchesRule(t *testing.T) {
	names := []string{"localhost", "*.localhost", "*.managedhsm.localhost", "dev.localhost"}
	for host, want := range map[string]bool{
		"localhost":                   true,
		"dev.localhost":               true,
		"v1.localhost":                false, // "*.localhost" has one label after the star
		"devhsm.managedhsm.localhost": true,
		"a.b.managedhsm.localhost":    false,
		"managedhsm.localhost":        false,
	} {
		if got := opensslMatches(names, host); got != want {
			t.Errorf("opensslMatches(%q) = %v; want %v", host, got, want)
		}
	}
}
