package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTLSScanners runs two outside TLS scanners, sslscan and nmap's ssl-enum-ciphers, against
// an in-process server on a random loopback port (SECURITY-NOTES N1, N2; docs/SECURITY.md,
// "TLS"), once with the dev ECDSA certificate and once with an RSA-2048 one so that both the
// ECDHE-ECDSA and the ECDHE-RSA suites are enumerated. It asserts: only TLS 1.2 and 1.3;
// only AEAD suites with an ECDHE key exchange (forward secrecy); nmap's least strength A;
// no compression (nmap lists only NULL); no insecure renegotiation and no Heartbleed
// (sslscan). Each scanner skips, by name, only when it is not installed
// (apt-get install sslscan nmap).
func TestTLSScanners(t *testing.T) {
	sslscan, errS := exec.LookPath("sslscan")
	nmap, errN := exec.LookPath("nmap")
	if errS != nil && errN != nil {
		t.Skip("neither sslscan nor nmap is installed (apt-get install sslscan nmap): no outside TLS scan")
	}
	servers := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"ecdsa-dev-cert", func(t *testing.T) string { return startDev(t).Addr().String() }},
		{"rsa-2048-cert", func(t *testing.T) string {
			dir := t.TempDir()
			cert, key := writeRSACert(t, dir)
			cfg := loadConfig(t, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
				"--tls-cert-file", cert, "--tls-key-file", key)
			return start(t, cfg, cert).Addr().String()
		}},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			addr := srv.addr(t)
			t.Run("sslscan", func(t *testing.T) {
				if errS != nil {
					t.Skip("sslscan is not installed (apt-get install sslscan)")
				}
				checkSSLScan(t, sslscan, addr)
			})
			t.Run("nmap", func(t *testing.T) {
				if errN != nil {
					t.Skip("nmap is not installed (apt-get install nmap)")
				}
				checkNmap(t, nmap, addr)
			})
		})
	}
}

// tls13Suites are the only TLS 1.3 suites Go offers; all are AEAD with (EC)DHE.
var tls13Suites = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

// aeadWithFS reports whether a TLS 1.2 suite, in OpenSSL's or IANA's spelling, has an
// ephemeral ECDHE key exchange and an AEAD cipher.
func aeadWithFS(name string) bool {
	n := strings.ReplaceAll(strings.ToUpper(name), "_", "-")
	ecdhe := strings.HasPrefix(n, "ECDHE-") || strings.HasPrefix(n, "TLS-ECDHE-")
	aead := strings.Contains(n, "-GCM-") || strings.Contains(n, "CHACHA20-POLY1305")
	return ecdhe && aead
}

type sslscanXML struct {
	Tests []struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"protocol"`
		Renegotiation []struct {
			Supported string `xml:"supported,attr"`
			Secure    string `xml:"secure,attr"`
		} `xml:"renegotiation"`
		Compression []struct {
			Supported string `xml:"supported,attr"`
		} `xml:"compression"`
		Heartbleed []struct {
			Version    string `xml:"sslversion,attr"`
			Vulnerable string `xml:"vulnerable,attr"`
		} `xml:"heartbleed"`
		Ciphers []struct {
			Version string `xml:"sslversion,attr"`
			Name    string `xml:"cipher,attr"`
		} `xml:"cipher"`
	} `xml:"ssltest"`
}

func runScanner(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out
}

func checkSSLScan(t *testing.T, bin, addr string) {
	out := runScanner(t, bin, "--no-colour", "--xml=-", addr)
	var doc sslscanXML
	if i := strings.Index(string(out), "<?xml"); i >= 0 {
		out = out[i:]
	}
	if err := xml.Unmarshal(out, &doc); err != nil || len(doc.Tests) != 1 {
		t.Fatalf("sslscan XML: %v (%d ssltest elements)\n%s", err, len(doc.Tests), out)
	}
	r := doc.Tests[0]
	var enabled []string
	for _, p := range r.Protocols {
		if p.Enabled == "1" {
			enabled = append(enabled, p.Type+p.Version)
		}
	}
	if !slices.Equal(enabled, []string{"tls1.2", "tls1.3"}) {
		t.Errorf("protocols enabled = %v; want exactly [tls1.2 tls1.3]", enabled)
	}
	perVersion := map[string]int{}
	for _, c := range r.Ciphers {
		perVersion[c.Version]++
		switch c.Version {
		case "TLSv1.3":
			if !slices.Contains(tls13Suites, c.Name) {
				t.Errorf("TLS 1.3 suite %s accepted; want one of %v", c.Name, tls13Suites)
			}
		case "TLSv1.2":
			if !aeadWithFS(c.Name) {
				t.Errorf("TLS 1.2 suite %s accepted; want ECDHE with AEAD only", c.Name)
			}
		default:
			t.Errorf("suite %s accepted on %s", c.Name, c.Version)
		}
	}
	if perVersion["TLSv1.2"] == 0 || perVersion["TLSv1.3"] == 0 {
		t.Errorf("suites per version = %v; want some on TLSv1.2 and TLSv1.3 (did the scan run?)", perVersion)
	}
	for _, rn := range r.Renegotiation {
		if rn.Supported == "1" && rn.Secure != "1" {
			t.Errorf("insecure renegotiation supported: %+v", rn)
		}
	}
	for _, c := range r.Compression {
		if c.Supported != "0" {
			t.Errorf("TLS compression supported: %+v", c)
		}
	}
	for _, h := range r.Heartbleed {
		if h.Vulnerable != "0" {
			t.Errorf("heartbleed on %s: %+v", h.Version, h)
		}
	}
	t.Logf("sslscan: %d suites %v, protocols %v", len(r.Ciphers), perVersion, enabled)
}

// nmapTable is one <table> of an NSE script's structured output.
type nmapTable struct {
	Key    string      `xml:"key,attr"`
	Tables []nmapTable `xml:"table"`
	Elems  []struct {
		Key   string `xml:"key,attr"`
		Value string `xml:",chardata"`
	} `xml:"elem"`
}

func (tb nmapTable) elem(key string) (string, bool) {
	for _, e := range tb.Elems {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

type nmapXML struct {
	Ports []struct {
		State struct {
			State string `xml:"state,attr"`
		} `xml:"state"`
		Scripts []struct {
			ID     string      `xml:"id,attr"`
			Output string      `xml:"output,attr"`
			Tables []nmapTable `xml:"table"`
			Elems  []struct {
				Key   string `xml:"key,attr"`
				Value string `xml:",chardata"`
			} `xml:"elem"`
		} `xml:"script"`
	} `xml:"host>ports>port"`
}

func checkNmap(t *testing.T, bin, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	// -sT: a plain connect scan (no raw sockets); -n: no DNS; -Pn: the host is up.
	out := runScanner(t, bin, "-sT", "-n", "-Pn", "-p", port, "--script", "ssl-enum-ciphers", "-oX", "-", host)
	var doc nmapXML
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nmap XML: %v\n%s", err, out)
	}
	if len(doc.Ports) != 1 || doc.Ports[0].State.State != "open" || len(doc.Ports[0].Scripts) != 1 || doc.Ports[0].Scripts[0].ID != "ssl-enum-ciphers" {
		t.Fatalf("nmap found no ssl-enum-ciphers result on port %s:\n%s", port, out)
	}
	sc := doc.Ports[0].Scripts[0]
	least := ""
	for _, e := range sc.Elems {
		if e.Key == "least strength" {
			least = e.Value
		}
	}
	if least != "A" {
		t.Errorf("least strength = %q; want A\n%s", least, sc.Output)
	}
	var versions []string
	for _, v := range sc.Tables {
		versions = append(versions, v.Key)
		n := 0
		for _, sub := range v.Tables {
			switch sub.Key {
			case "ciphers":
				for _, c := range sub.Tables {
					name, _ := c.elem("name")
					strength, _ := c.elem("strength")
					n++
					ok := aeadWithFS(name)
					if v.Key == "TLSv1.3" {
						// nmap spells TLS 1.3 suites TLS_AKE_WITH_<cipher>.
						ok = slices.Contains(tls13Suites, strings.Replace(name, "TLS_AKE_WITH_", "TLS_", 1))
					}
					if !ok || strength != "A" {
						t.Errorf("%s suite %s (strength %s) accepted; want ECDHE AEAD suites of strength A", v.Key, name, strength)
					}
				}
			case "compressors":
				for _, e := range sub.Elems {
					if e.Value != "NULL" {
						t.Errorf("%s offers TLS compression %q; want NULL only", v.Key, e.Value)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no suites listed", v.Key)
		}
	}
	if !slices.Equal(versions, []string{"TLSv1.2", "TLSv1.3"}) {
		t.Errorf("nmap protocol versions = %v; want [TLSv1.2 TLSv1.3]", versions)
	}
	if v, ok := warningsOf(sc.Tables); ok {
		t.Errorf("nmap warnings: %s", v)
	}
	t.Logf("nmap: versions %v, least strength %s", versions, least)
}

// warningsOf collects ssl-enum-ciphers' "warnings" entries (weak DH, SHA-1 signatures, ...).
func warningsOf(tables []nmapTable) (string, bool) {
	var w []string
	for _, v := range tables {
		for _, sub := range v.Tables {
			if sub.Key == "warnings" {
				for _, e := range sub.Elems {
					w = append(w, v.Key+": "+e.Value)
				}
			}
		}
	}
	return strings.Join(w, "; "), len(w) > 0
}

// writeRSACert writes an RSA-2048 server certificate for localhost, issued by a test CA.
func writeRSACert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	der := newTestCA(t).sign(t, csr)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "rsa-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
