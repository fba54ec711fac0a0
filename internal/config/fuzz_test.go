package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile loads arbitrary bytes as the configuration file, then validates the result:
// neither may panic, a file that loads names only known settings, and loading the same file
// twice gives the same configuration and the same errors.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"listen: 127.0.0.1:1111\nlog-level: debug\ndata-dir: /from/file\nshutdown-timeout: 5s\n",
		"dev: true\naudit-max-size: 64MiB\naudit-sync-interval: 10ms\n",
		"pkcs11-library: /usr/lib/softhsm/libsofthsm2.so\npkcs11-pool-tokens: pool1=tok1, pool2=tok2\n",
		"listen: [a]\n", "a: &x [*x]\n", "tls-cert: ~\n", "- 1\n", "{}", "",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(dir, "coffer.yaml")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c1, err1 := load(t, []string{"--config", file}, nil)
		c2, err2 := load(t, []string{"--config", file}, nil)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("two loads of one file disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			if c1 == nil && !strings.Contains(err1.Error(), "config file") {
				t.Fatalf("Load failed without naming the file: %v", err1)
			}
			return
		}
		if c1.ConfigFile != file {
			t.Fatalf("ConfigFile = %q; want %q", c1.ConfigFile, file)
		}
		if v1, v2 := c1.Validate(), c2.Validate(); (v1 == nil) != (v2 == nil) {
			t.Fatalf("Validate of two loads of one file disagree: %v / %v", v1, v2)
		}
	})
}
