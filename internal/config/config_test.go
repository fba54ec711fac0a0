package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q) = %v", args, err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(file, []byte("listen: 127.0.0.1:1111\nlog-level: debug\ndata-dir: /from/file\nshutdown-timeout: 5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantListen string
		wantData   string
		wantLevel  string
	}{
		{"ok/defaults", nil, nil, "127.0.0.1:8443", "./coffer-data", "info"},
		{"ok/file", []string{"--config", file}, nil, "127.0.0.1:1111", "/from/file", "debug"},
		{"ok/env-config-file", nil, map[string]string{"COFFER_CONFIG": file}, "127.0.0.1:1111", "/from/file", "debug"},
		{"ok/env-over-file", []string{"--config", file}, map[string]string{"COFFER_LISTEN": "127.0.0.1:2222"}, "127.0.0.1:2222", "/from/file", "debug"},
		{"ok/flag-over-env", []string{"--config", file, "--listen", "127.0.0.1:3333"}, map[string]string{"COFFER_LISTEN": "127.0.0.1:2222", "COFFER_DATA_DIR": "/from/env"}, "127.0.0.1:3333", "/from/env", "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			if c.Listen != tt.wantListen || c.DataDir != tt.wantData || c.LogLevel != tt.wantLevel {
				t.Errorf("Load = listen %q data %q level %q; want %q %q %q", c.Listen, c.DataDir, c.LogLevel, tt.wantListen, tt.wantData, tt.wantLevel)
			}
		})
	}
}

func TestDevDefaults(t *testing.T) {
	c, err := load(t, []string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Dev || c.LogFormat != "text" || c.TLSReloadEvery != 10*time.Second {
		t.Errorf("dev config = %+v; want dev, text logs, 10s reload", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of dev defaults = %v; want nil", err)
	}
}

func TestBadConfigNamesEverySetting(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("listne: oops\n"), 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"fail/not-a-duration", []string{"--dev"}, map[string]string{"COFFER_SHUTDOWN_TIMEOUT": "soon"}, []string{`"shutdown-timeout"`, "COFFER_SHUTDOWN_TIMEOUT", "not a duration"}},
		{"fail/unknown-file-key", []string{"--config", file}, nil, []string{`unknown setting "listne"`, file}},
		{"fail/bad-bool", nil, map[string]string{"COFFER_DEV": "maybe"}, []string{`"dev"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.args, tt.env)
			if err == nil {
				t.Fatalf("Load = nil error; want one mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := load(t, []string{"--listen", "nowhere", "--log-format", "xml", "--log-level", "loud", "--tls-client-ca-file", "/does/not/exist"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil; want errors")
	}
	for _, w := range []string{`"listen"`, `"log-format"`, `"log-level"`, `"tls-cert-file"`, `"tls-key-file"`, `"tls-client-ca-file"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %q; missing %s", err, w)
		}
	}
}

func TestPKCS11SettingsGoTogether(t *testing.T) {
	c, err := load(t, []string{"--dev", "--pkcs11-library", "/nonexistent/libpkcs11.so"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, w := range []string{`"pkcs11-token-label"`, `"pkcs11-pin-file"`, `"pkcs11-library"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v; want it to name %s", err, w)
		}
	}
}

func TestSealSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the Validate error; "" for none
	}{
		{"ok/default-shamir", []string{"--dev"}, ""},
		{"fail/unknown-seal", []string{"--dev", "--seal", "cloud"}, `setting "seal": "cloud" is not shamir or pkcs11`},
		{"fail/pkcs11-without-token", []string{"--dev", "--seal", "pkcs11"}, `setting "seal": pkcs11 needs the token`},
		{"fail/empty-label", []string{"--dev", "--seal", "pkcs11", "--pkcs11-seal-key-label", ""}, `"pkcs11-seal-key-label"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tt.want == "" {
				if err != nil || c.Seal != "shamir" || c.PKCS11SealKeyLabel != "coffer-seal" {
					t.Errorf("Validate() = %v, seal %q label %q; want nil, shamir, coffer-seal", err, c.Seal, c.PKCS11SealKeyLabel)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v; want it to contain %s", err, tt.want)
			}
		})
	}
}

func TestAuditMaxSize(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		want  int64
		fails string // substring of the Load or Validate error
	}{
		{"ok/default-256MiB", []string{"--dev"}, nil, 256 << 20, ""},
		{"ok/never", []string{"--dev", "--audit-max-size", "0"}, nil, 0, ""},
		{"ok/GiB", []string{"--dev", "--audit-max-size", "2GiB"}, nil, 2 << 30, ""},
		{"ok/bytes-from-env", []string{"--dev"}, map[string]string{"COFFER_AUDIT_MAX_SIZE": "1048576"}, 1 << 20, ""},
		{"fail/unit", []string{"--dev", "--audit-max-size", "10MB"}, nil, 0, "not a size"},
		{"fail/negative", []string{"--dev", "--audit-max-size", "-1"}, nil, 0, "not a size"},
		{"fail/overflow", []string{"--dev", "--audit-max-size", "9000000000GiB"}, nil, 0, "not a size"},
		{"fail/too-small", []string{"--dev", "--audit-max-size", "4KiB"}, nil, 0, "at least 64KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.env)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tt.fails == "" && (err != nil || c.AuditMaxSize != tt.want):
				t.Errorf("audit-max-size = %v, %v; want %d", c, err, tt.want)
			case tt.fails != "" && (err == nil || !strings.Contains(err.Error(), "audit-max-size") || !strings.Contains(err.Error(), tt.fails)):
				t.Errorf("error = %v; want one naming audit-max-size and %q", err, tt.fails)
			}
		})
	}
}

// TestAuditReadSyncInterval: reads' audit records are synced within 10ms by default; 0 syncs
// them before the response; more than 1s or a negative value is refused, naming the setting.
func TestAuditReadSyncInterval(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  time.Duration
		fails bool
	}{
		{"default-10ms", []string{"--dev"}, 10 * time.Millisecond, false},
		{"zero", []string{"--dev", "--audit-read-sync-interval", "0"}, 0, false},
		{"one-second", []string{"--dev", "--audit-read-sync-interval", "1s"}, time.Second, false},
		{"too-long", []string{"--dev", "--audit-read-sync-interval", "2s"}, 0, true},
		{"negative", []string{"--dev", "--audit-read-sync-interval", "-1ms"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, nil)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case !tt.fails && (err != nil || c.AuditReadSyncInterval != tt.want):
				t.Errorf("audit-read-sync-interval = %v, %v; want %v", c.AuditReadSyncInterval, err, tt.want)
			case tt.fails && (err == nil || !strings.Contains(err.Error(), "audit-read-sync-interval")):
				t.Errorf("error = %v; want one naming audit-read-sync-interval", err)
			}
		})
	}
}

// The scheduler's defaults hold the soft-delete figure (docs/SECURITY.md): a purge runs at
// most one interval (30s) after its date, and a clock jump of more than 24h holds purges.
// The jump limit must leave room for at least two rounds.
func TestSchedulerAndPurgeClockSettings(t *testing.T) {
	cfg, err := load(t, []string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SchedulerEvery != 30*time.Second || cfg.PurgeClockJumpLimit != 24*time.Hour {
		t.Errorf("defaults: scheduler-interval %s, purge-clock-jump-limit %s; want 30s, 24h", cfg.SchedulerEvery, cfg.PurgeClockJumpLimit)
	}
	for _, args := range [][]string{
		{"--dev", "--purge-clock-jump-limit", "30s"},
		{"--dev", "--scheduler-interval", "1h", "--purge-clock-jump-limit", "90m"},
		{"--dev", "--purge-clock-jump-limit", "0s"},
	} {
		cfg, err := load(t, args, nil)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), `"purge-clock-jump-limit"`) {
			t.Errorf("load(%q) = %v; want a refusal naming purge-clock-jump-limit", args, err)
		}
	}
	if cfg, err := load(t, []string{"--dev", "--scheduler-interval", "1h", "--purge-clock-jump-limit", "2h"}, nil); err != nil || cfg.Validate() != nil || cfg.PurgeClockJumpLimit != 2*time.Hour {
		t.Errorf("load with a 2h limit over a 1h interval = %v; want accepted", err)
	}
}

// The connection settings keep the I4 figures by default (docs/SECURITY.md, "Slow clients,
// HTTP/2 floods and resource leaks") and refuse values that would undo them.
func TestConnectionSettings(t *testing.T) {
	cfg, err := load(t, []string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ReadHeaderTimeout != 10*time.Second || cfg.ReadTimeout != time.Minute || cfg.WriteTimeout != time.Minute || cfg.IdleTimeout != 2*time.Minute || cfg.MaxConnections != 4096 {
		t.Errorf("defaults: read-header %s, read %s, write %s, idle %s, max-connections %d; want 10s, 1m, 1m, 2m, 4096",
			cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout, cfg.MaxConnections)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string // the setting the refusal names; "" for accepted
	}{
		{"ok/short-for-tests", []string{"--read-header-timeout", "500ms", "--read-timeout", "2s", "--idle-timeout", "1s", "--max-connections", "200"}, ""},
		{"fail/header-timeout-over-10s", []string{"--read-header-timeout", "11s", "--read-timeout", "1m"}, `"read-header-timeout"`},
		{"fail/header-timeout-over-read-timeout", []string{"--read-header-timeout", "5s", "--read-timeout", "2s"}, `"read-header-timeout"`},
		{"fail/zero-read-timeout", []string{"--read-header-timeout", "1s", "--read-timeout", "0s"}, `"read-timeout"`},
		{"fail/zero-write-timeout", []string{"--write-timeout", "0s"}, `"write-timeout"`},
		{"fail/negative-idle-timeout", []string{"--idle-timeout", "-1s"}, `"idle-timeout"`},
		{"fail/no-connections", []string{"--max-connections", "0"}, `"max-connections"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, append([]string{"--dev"}, tt.args...), nil)
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("load(%q) = %v; want accepted", tt.args, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("load(%q) = %v; want a refusal naming %s", tt.args, err, tt.want)
			}
		})
	}
}

// wholeNumberCase loads the dev configuration with args and env: accepted with the values
// want (as the test's reader returns them), or refused with an error containing fail.
type wholeNumberCase struct {
	name string
	args []string
	env  map[string]string
	want []int
	fail string // a substring of the refusal; "" for accepted
}

// yamlFiles writes each YAML text to a file of its own and returns their paths.
func yamlFiles(t *testing.T, texts ...string) []string {
	t.Helper()
	var paths []string
	for _, text := range texts {
		p := filepath.Join(t.TempDir(), "coffer.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// checkWholeNumbers runs cases; got reads the settings under test from a Config.
func checkWholeNumbers(t *testing.T, cases []wholeNumberCase, got func(*Config) []int) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, append([]string{"--dev"}, tt.args...), tt.env)
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.fail == "" && err != nil:
				t.Fatalf("load(%q) = %v; want accepted", tt.args, err)
			case tt.fail == "" && !slices.Equal(got(cfg), tt.want):
				t.Errorf("load(%q): settings = %v; want %v", tt.args, got(cfg), tt.want)
			case tt.fail != "" && (err == nil || !strings.Contains(err.Error(), tt.fail)):
				t.Errorf("load(%q) = %v; want a refusal mentioning %s", tt.args, err, tt.fail)
			}
		})
	}
}

// max-connections-per-address defaults to 256, is read from a flag, COFFER_… or the YAML
// file like every setting, takes 0 as "no cap", and refuses negative numbers wherever they
// come from (Validate too, for a Config built in code).
func TestMaxConnectionsPerAddress(t *testing.T) {
	files := yamlFiles(t, "max-connections-per-address: 16\n", "max-connections-per-address: -3\n")
	checkWholeNumbers(t, []wholeNumberCase{
		{"ok/default", nil, nil, []int{256}, ""},
		{"ok/flag", []string{"--max-connections-per-address", "8"}, nil, []int{8}, ""},
		{"ok/off", []string{"--max-connections-per-address", "0"}, nil, []int{0}, ""},
		{"ok/env", nil, map[string]string{"COFFER_MAX_CONNECTIONS_PER_ADDRESS": "32"}, []int{32}, ""},
		{"ok/file", []string{"--config", files[0]}, nil, []int{16}, ""},
		{"fail/negative-flag", []string{"--max-connections-per-address", "-1"}, nil, nil, `"max-connections-per-address"`},
		{"fail/negative-env", nil, map[string]string{"COFFER_MAX_CONNECTIONS_PER_ADDRESS": "-1"}, nil, "COFFER_MAX_CONNECTIONS_PER_ADDRESS"},
		{"fail/negative-file", []string{"--config", files[1]}, nil, nil, `"max-connections-per-address"`},
		{"fail/not-a-number", nil, map[string]string{"COFFER_MAX_CONNECTIONS_PER_ADDRESS": "many"}, nil, "not a whole number of connections"},
	}, func(c *Config) []int { return []int{c.MaxConnectionsPerAddress} })
	cfg, err := load(t, []string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConnectionsPerAddress = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"max-connections-per-address"`) {
		t.Errorf("Validate() with MaxConnectionsPerAddress -1 = %v; want a refusal naming max-connections-per-address", err)
	}
}

// key-create-limit and key-create-limit-hsm default to 100 and 50 weighted creations per
// vault and 10 s, are read from a flag, COFFER_… or the YAML file, take 0 as "no limit", and
// refuse negative numbers wherever they come from (Validate too, for a Config built in code).
func TestKeyCreateLimits(t *testing.T) {
	files := yamlFiles(t, "key-create-limit: 20\nkey-create-limit-hsm: 10\n", "key-create-limit-hsm: -5\n")
	checkWholeNumbers(t, []wholeNumberCase{
		{"ok/default", nil, nil, []int{100, 50}, ""},
		{"ok/flags", []string{"--key-create-limit", "10", "--key-create-limit-hsm", "5"}, nil, []int{10, 5}, ""},
		{"ok/off", []string{"--key-create-limit", "0", "--key-create-limit-hsm", "0"}, nil, []int{0, 0}, ""},
		{"ok/env", nil, map[string]string{"COFFER_KEY_CREATE_LIMIT": "30", "COFFER_KEY_CREATE_LIMIT_HSM": "3"}, []int{30, 3}, ""},
		{"ok/file", []string{"--config", files[0]}, nil, []int{20, 10}, ""},
		{"fail/negative-flag", []string{"--key-create-limit", "-1"}, nil, nil, `"key-create-limit"`},
		{"fail/negative-env", nil, map[string]string{"COFFER_KEY_CREATE_LIMIT_HSM": "-1"}, nil, "COFFER_KEY_CREATE_LIMIT_HSM"},
		{"fail/negative-file", []string{"--config", files[1]}, nil, nil, `"key-create-limit-hsm"`},
		{"fail/not-a-number", nil, map[string]string{"COFFER_KEY_CREATE_LIMIT": "lots"}, nil, "not a whole number of key creations"},
	}, func(c *Config) []int { return []int{c.KeyCreateLimit, c.KeyCreateLimitHSM} })
	cfg, err := load(t, []string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyCreateLimitHSM = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"key-create-limit"`) {
		t.Errorf("Validate() with KeyCreateLimitHSM -1 = %v; want a refusal naming key-create-limit", err)
	}
}
