// Package config owns the server's settings: their names, defaults and documentation, and
// how they are read from (in order of precedence) command-line flags, COFFER_* environment
// variables and a YAML configuration file. Validate reports every problem at once, each naming
// the setting.
//
// Secrets are never configuration values: settings name files (certificates, keys) instead.
// This package must not import any other Coffer package.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Config is the server configuration.
type Config struct {
	Dev             bool
	Listen          string
	DataDir         string
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// AttestSimKeyFile is a PEM file of the TEE simulator's public keys (ECDSA P-256); the
	// "sim" attestation type is disabled without it (outside dev mode).
	AttestSimKeyFile string
	// AttestTDXCollateralFile is a JSON file of Intel PCS collateral (attest.TDXCollateral)
	// used for tdxvm quotes whose request carries none.
	AttestTDXCollateralFile string
	TLSReloadEvery          time.Duration
	LogFormat               string
	LogLevel                string
	ShutdownTimeout         time.Duration
	// ReadHeaderTimeout bounds the TLS handshake and the reading of a request's headers;
	// ReadTimeout the reading of a whole request, body included; WriteTimeout a request from
	// its headers to the end of its response; IdleTimeout a kept-alive connection between
	// requests (net/http.Server's fields of the same names; SECURITY-NOTES I4).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxConnections caps the connections open at once; past it new connections wait in the
	// kernel's accept queue until one closes.
	MaxConnections      int
	ConfigFile          string
	DNSSuffix           string
	RequestBodyLimit    int64
	TenantRate          float64
	TenantBurst         float64
	TenantConcurrent    int64
	SchedulerEvery      time.Duration
	PurgeClockJumpLimit time.Duration
	TokenKeyMaxAge      time.Duration
	AuditStdout         bool
	// DisableRSA15 refuses RSA1_5 encrypt, decrypt, wrapKey and unwrapKey (400).
	DisableRSA15 bool
	// DecryptFailureAlarm is how many failed decrypt/unwrapKey calls on one key within a
	// minute raise the decryption failure alarm (0: never).
	DecryptFailureAlarm int
	// AuthFailureLimit is how many refused bearer tokens one source address may send
	// within a minute before its data-plane requests are answered 429 (0: no limit).
	AuthFailureLimit int
	// MaxConnectionsPerAddress caps the connections one source IP address may hold open at
	// once; past it its new connections are closed before the TLS handshake (0: no cap).
	MaxConnectionsPerAddress int
	// CryptoSlots is how many software RSA private operations and RSA key generations run
	// at once, shared among tenants in turn (0: one per CPU).
	CryptoSlots int
	// KeyCreateLimit and KeyCreateLimitHSM are the weighted key creations (create, rotate,
	// import, a certificate's new key; RSA-3072 counts 4, RSA-4096 8) allowed per vault or
	// managed HSM pool within 10 seconds, of software and of -HSM keys (0: no limit).
	KeyCreateLimit    int
	KeyCreateLimitHSM int
	// AuditSyncInterval 0 syncs the audit log before every response; positive defers syncs
	// by up to that long (records are written before the response either way).
	AuditSyncInterval time.Duration
	// AuditReadSyncInterval is AuditSyncInterval for the records of requests that change
	// nothing stored (reads and the key operations sign, verify, encrypt, decrypt, wrapKey,
	// unwrapKey).
	AuditReadSyncInterval time.Duration
	// AuditMaxSize rotates the audit log file once it holds this many bytes (0: never).
	AuditMaxSize  int64
	PKCS11Library string
	PKCS11Token   string
	PKCS11PINFile string
	// PKCS11SOPINFile holds the tokens' security officer PIN (optional): with it the keys
	// of managed HSM pools leave their token only wrapped by the pool's security domain
	// (docs/HSM.md).
	PKCS11SOPINFile string
	PKCS11Sessions  int64
	// PKCS11SessionWait bounds the wait for a free PKCS#11 session (then 503).
	PKCS11SessionWait time.Duration
	// PKCS11PoolTokens gives managed HSM pools tokens of their own (pooltokens.go); other
	// pools and vaults use PKCS11Token.
	PKCS11PoolTokens []PoolToken
	// Seal is "shamir" (unseal shares) or "pkcs11" (the root key is wrapped by an AES key of
	// the PKCS#11 token labelled PKCS11SealKeyLabel: auto-unseal).
	Seal               string
	PKCS11SealKeyLabel string
	// AcceptStoreRollback makes unseal serve a store whose records or generation fail the
	// store checks (barrier.StoreChecks.AcceptStore): the operator's override after a
	// restore they mean.
	AcceptStoreRollback bool

	// SKRTrustedAuthorities are external attestation services (issuer URLs) whose tokens
	// secure key release accepts when a key's release policy names them.
	SKRTrustedAuthorities []string
}

// kind is how a setting's text is parsed.
type kind int

const (
	kindString kind = iota
	kindBool
	kindDuration
	kindInt
)

// setting describes one configuration setting: its file key, flag, environment variable.
type setting struct {
	name  string // YAML key and flag name (with dashes)
	kind  kind
	def   string
	usage string
	set   func(c *Config, v string) error
}

// Env returns the environment variable of a setting: COFFER_ and the name in upper case.
func (s setting) env() string {
	return "COFFER_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func str(p func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(c *Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p(c) = b
		return nil
	}
}

// atLeast0 parses a whole number of 0 or more; unit names what it counts in the error.
func atLeast0(unit string, p func(c *Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a whole number of %s (0 or more)", v, unit)
		}
		*p(c) = n
		return nil
	}
}

func dur(p func(c *Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 10s, 1m)", v)
		}
		*p(c) = d
		return nil
	}
}

// byteSize parses a size in bytes: a whole number with an optional KiB, MiB or GiB suffix.
func byteSize(p func(c *Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		num, mult := v, int64(1)
		for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
			if n, ok := strings.CutSuffix(v, suffix); ok {
				num, mult = strings.TrimSpace(n), m
			}
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/mult {
			return fmt.Errorf("%q is not a size (bytes, or a whole number of KiB, MiB or GiB, e.g. 256MiB)", v)
		}
		*p(c) = n * mult
		return nil
	}
}

var settings = []setting{
	{"dev", kindBool, "false", "development mode: creates the data directory, a development CA and server certificate, initialises and unseals itself. NOT FOR PRODUCTION", boolean(func(c *Config) *bool { return &c.Dev })},
	{"listen", kindString, "127.0.0.1:8443", "address (host:port) of the HTTPS listener; there is no plain-HTTP listener", str(func(c *Config) *string { return &c.Listen })},
	{"data-dir", kindString, "./coffer-data", "directory holding the database (coffer.db) and, in dev mode, the development CA and unseal share", str(func(c *Config) *string { return &c.DataDir })},
	{"tls-cert-file", kindString, "", "PEM server certificate chain (required unless --dev); reloaded when the file changes or on SIGHUP", str(func(c *Config) *string { return &c.TLSCertFile })},
	{"tls-key-file", kindString, "", "PEM private key of the server certificate (required unless --dev)", str(func(c *Config) *string { return &c.TLSKeyFile })},
	{"attest-sim-keys", kindString, "", "PEM file of ECDSA P-256 public keys of the TEE simulator; without it the 'sim' attestation type is disabled (dev mode makes one)", str(func(c *Config) *string { return &c.AttestSimKeyFile })},
	{"attest-tdx-collateral", kindString, "", "JSON file of Intel PCS collateral (tcbInfo, qeIdentity, their issuer chains, optional CRLs) for tdxvm quotes sent without collateral; nothing is fetched", str(func(c *Config) *string { return &c.AttestTDXCollateralFile })},
	{"skr-trusted-authorities", kindString, "", "comma-separated issuer URLs of external attestation services (e.g. https://sharedeus.eus.attest.azure.net) whose tokens secure key release accepts; their OpenID metadata and JWKS are fetched over HTTPS. This server's own attestation providers are always trusted", func(c *Config, v string) error {
		c.SKRTrustedAuthorities = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.SKRTrustedAuthorities = append(c.SKRTrustedAuthorities, a)
			}
		}
		return nil
	}},
	{"tls-client-ca-file", kindString, "", "PEM CA bundle: when set, every client must present a certificate issued by one of these CAs (mTLS)", str(func(c *Config) *string { return &c.TLSClientCAFile })},
	{"tls-reload-interval", kindDuration, "10s", "how often the certificate and key files are checked for changes", dur(func(c *Config) *time.Duration { return &c.TLSReloadEvery })},
	{"log-format", kindString, "", "log format: json or text (default json; text in dev mode)", str(func(c *Config) *string { return &c.LogFormat })},
	{"log-level", kindString, "info", "log level: debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
	{"shutdown-timeout", kindDuration, "30s", "on SIGTERM/SIGINT, how long in-flight requests may run before connections are closed", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"read-header-timeout", kindDuration, "10s", "how long a client has for the TLS handshake and then for each request's headers (at most 10s): a Slowloris client that trickles headers is cut off then", dur(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout })},
	{"read-timeout", kindDuration, "60s", "how long a client has to send a whole request, headers and body (60s lets a 1 MiB body arrive at 17 KiB/s); a client that trickles its body is cut off then and nothing it sent is stored", dur(func(c *Config) *time.Duration { return &c.ReadTimeout })},
	{"write-timeout", kindDuration, "60s", "how long a request may take from the end of its headers to the end of its response", dur(func(c *Config) *time.Duration { return &c.WriteTimeout })},
	{"idle-timeout", kindDuration, "120s", "how long a kept-alive connection (HTTP/1.1 or HTTP/2) may stay idle between requests before the server closes it", dur(func(c *Config) *time.Duration { return &c.IdleTimeout })},
	{"max-connections", kindInt, "4096", "connections (TLS handshakes included) open at once; past it the server accepts no more until one closes, so new clients wait in the kernel's accept queue, which holds net.core.somaxconn of them, instead of being refused. Idle connections close within read-header-timeout (never used) or idle-timeout (kept alive), which bounds that wait unless clients keep every slot busy", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number of connections", v)
		}
		c.MaxConnections = n
		return nil
	}},
	{"max-connections-per-address", kindInt, "256", "connections one source IP address (IPv4, or IPv6; an IPv4-mapped IPv6 address counts as its IPv4 address) may hold open at once; past it the address's new connections are closed as soon as they are accepted, before the TLS handshake, counted in coffer_connections_refused_total{reason=\"per-address\"} and logged at most once per address and minute, so that one address cannot hold every max-connections slot. An Azure SDK client opens a handful; behind a NAT or proxy all clients share its address: raise the cap there, or turn it off (0)", atLeast0("connections", func(c *Config) *int { return &c.MaxConnectionsPerAddress })},
	{"dns-suffix", kindString, "localhost", "DNS suffix of vault host names: vault v1 is served at https://v1.<suffix>:<port>/", str(func(c *Config) *string { return &c.DNSSuffix })},
	{"max-request-body", kindInt, "1048576", "largest accepted request body in bytes; larger bodies get 413", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number of bytes", v)
		}
		c.RequestBodyLimit = n
		return nil
	}},
	{"scheduler-interval", kindDuration, "30s", "how often due key rotations and purges of expired deleted objects run (a purge runs at most this long, plus the round's own time, after its date)", dur(func(c *Config) *time.Duration { return &c.SchedulerEvery })},
	{"purge-clock-jump-limit", kindDuration, "24h", "largest forward move of the clock the scheduler accepts without an operator: past it every purge that only the clock allows (scheduled purges, and purges of purge-protected objects after their date) is held, with an ERROR log line, an audit record and coffer_purges_held 1, until `coffer operator confirm-clock`; a downtime longer than this also counts (docs/SECURITY.md)", dur(func(c *Config) *time.Duration { return &c.PurgeClockJumpLimit })},
	{"token-key-rotation", kindDuration, "24h", "age at which the identity provider's token signing key is replaced (old public keys stay in the JWKS until their tokens expire)", dur(func(c *Config) *time.Duration { return &c.TokenKeyMaxAge })},
	{"audit-stdout", kindBool, "false", "also write every audit record to standard output (a second, separately chained sink)", boolean(func(c *Config) *bool { return &c.AuditStdout })},
	{"disable-rsa1_5", kindBool, "false", "refuse the RSA1_5 algorithm (PKCS #1 v1.5 encryption, the Bleichenbacher padding oracle) in encrypt, decrypt, wrapKey and unwrapKey with 400 BadParameter; Key Vault offers it, so it stays on unless set; RS256-style signatures are not affected", boolean(func(c *Config) *bool { return &c.DisableRSA15 })},
	{"decrypt-failure-alarm", kindInt, "100", "failed decrypt or unwrapKey calls on one key within a minute that raise an alarm (an audit record with result \"alarm\", a warning in the log, the coffer_decrypt_failure_alarms_total metric), once per key and minute: padding-oracle attacks send such ciphertexts by the thousand; 0 turns the alarm off", atLeast0("failures", func(c *Config) *int { return &c.DecryptFailureAlarm })},
	{"auth-failure-limit", kindInt, "100", "refused bearer tokens (expired, forged, for another audience…) one source address may send to the data plane within a minute; past it the address's requests are answered 429 Throttled with Retry-After, before their tokens are checked, until the minute ends (requests without a token, the SDKs' first request of the challenge flow, are not counted); 0 turns the limit off", atLeast0("refused tokens", func(c *Config) *int { return &c.AuthFailureLimit })},
	{"crypto-slots", kindInt, "0", "how many software RSA private operations (sign, decrypt, unwrapKey) and RSA key generations run at once (0: one per CPU); when more wait, tenants take the free slots in turn, so one tenant's flood of RSA work delays another tenant's by about one operation, and one tenant's key generations hold at most all slots but one", atLeast0("slots", func(c *Config) *int { return &c.CryptoSlots })},
	{"audit-read-sync-interval", kindDuration, "10ms", "how long the audit record of a request that changes nothing stored (a read, or sign, verify, encrypt, decrypt, wrapKey, unwrapKey) may wait for its sync to disk: the response still waits until the record is written to the file, which survives a killed process, and a failed write or sync fails requests as always; a power loss can lose that much of the read records. 0 syncs them before the response like every other record (records of requests that change state are always synced first, unless audit-sync-interval is set)", dur(func(c *Config) *time.Duration { return &c.AuditReadSyncInterval })},
	{"audit-sync-interval", kindDuration, "0s", "0 (default): every data-plane response waits until its audit record is synced to disk; a positive duration (at most 1s) returns once the record is written to the file, which survives a killed process, and syncs within that time, so a power loss can lose that much of the log (Vault's file audit device never syncs); a failed sync stops all requests", dur(func(c *Config) *time.Duration { return &c.AuditSyncInterval })},
	{"audit-max-size", kindString, "256MiB", "size at which the audit log file is rotated: it is closed with a signed checkpoint, renamed audit.log.000001, .000002, … and a new audit.log continues the hash chain (0: never rotate; otherwise at least 64KiB); rotated files are kept, delete or archive them yourself", byteSize(func(c *Config) *int64 { return &c.AuditMaxSize })},
	{"pkcs11-library", kindString, "", "PKCS#11 module of the HSM that holds managed HSM pools' keys (e.g. /usr/lib/softhsm/libsofthsm2.so); without it pools use software keys", str(func(c *Config) *string { return &c.PKCS11Library })},
	{"pkcs11-token-label", kindString, "", "label of the PKCS#11 token to use", str(func(c *Config) *string { return &c.PKCS11Token })},
	{"pkcs11-pin-file", kindString, "", "file holding the token's user PIN (the PIN is never a setting itself)", str(func(c *Config) *string { return &c.PKCS11PINFile })},
	{"pkcs11-so-pin-file", kindString, "", "file holding the tokens' security officer PIN (optional): with it managed HSM pools' keys leave their token only wrapped by the pool's security domain, so key backups restore into another pool's token (docs/HSM.md); the SO logs in only to create each pool's wrapping key", str(func(c *Config) *string { return &c.PKCS11SOPINFile })},
	{"pkcs11-pool-tokens", kindString, "", "comma-separated pool=token-label: each listed managed HSM pool keeps its HSM keys in a PKCS#11 token of its own (same library and PIN file as pkcs11-token-label, which the other pools and the vaults use)", parsePoolTokens},
	{"pkcs11-sessions", kindInt, "4", "PKCS#11 sessions kept open (1-256)", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.PKCS11Sessions = n
		return nil
	}},
	{"pkcs11-session-wait", kindDuration, "5s", "how long an HSM operation waits for a free PKCS#11 session before it is answered 503: a token that hangs instead of failing holds every session, and without a bound requests would pile up behind it; keep it above the token's slowest operation (an RSA-4096 generation)", dur(func(c *Config) *time.Duration { return &c.PKCS11SessionWait })},
	{"seal", kindString, "shamir", "how the barrier root key is protected: shamir (unseal shares entered with `coffer operator unseal`) or pkcs11 (wrapped by an AES-256 key in the PKCS#11 token: the server unseals itself)", str(func(c *Config) *string { return &c.Seal })},
	{"accept-store-rollback", kindBool, "false", "unseal a store that fails its rollback checks — records that do not match its store hash, or (with --seal pkcs11) a generation older than the one the token recorded — and serve it as it is: set it once, after restoring a backup on purpose, then remove it (docs/OPERATOR.md, \"Store integrity\")", boolean(func(c *Config) *bool { return &c.AcceptStoreRollback })},
	{"pkcs11-seal-key-label", kindString, "coffer-seal", "CKA_LABEL of the token's AES-256 key that wraps the root key with --seal pkcs11 (`coffer operator init` creates it)", str(func(c *Config) *string { return &c.PKCS11SealKeyLabel })},
	{"tenant-rate-limit", kindInt, "2000", "data-plane requests per second allowed per tenant (0: no limit); beyond it 429 Throttled with Retry-After", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.TenantRate = float64(n)
		return nil
	}},
	{"tenant-burst", kindInt, "4000", "data-plane request burst allowed per tenant above the rate limit", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.TenantBurst = float64(n)
		return nil
	}},
	{"key-create-limit", kindInt, "100", "weighted key creations of software keys allowed per vault within any 10 seconds (0: no limit): create, rotate and import key, and a certificate's new key, each count 1, RSA-3072 4 and RSA-4096 8; beyond it 429 Throttled with Retry-After, before any key material is made. Key Vault allows 10 (Coffer's default is 10 times that, so ordinary automation is not throttled); scheduled rotations and renewals are not counted", atLeast0("key creations", func(c *Config) *int { return &c.KeyCreateLimit })},
	{"key-create-limit-hsm", kindInt, "50", "key-create-limit for -HSM keys (RSA-HSM, EC-HSM, oct-HSM) of a vault or managed HSM pool (Key Vault allows 5; 0: no limit)", atLeast0("key creations", func(c *Config) *int { return &c.KeyCreateLimitHSM })},
	{"tenant-max-concurrent", kindInt, "64", "data-plane requests in flight allowed per tenant (0: no limit), so one tenant cannot occupy every core", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		c.TenantConcurrent = n
		return nil
	}},
}

// RegisterFlags adds one flag per setting (and --config) to fs, with its documentation.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file (env COFFER_CONFIG); flags override environment variables, which override the file")
	for _, s := range settings {
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env())
		switch s.kind {
		case kindBool:
			def, _ := strconv.ParseBool(s.def)
			fs.Bool(s.name, def, usage)
		case kindDuration:
			def, _ := time.ParseDuration(s.def)
			fs.Duration(s.name, def, usage)
		case kindInt:
			def, _ := strconv.ParseInt(s.def, 10, 64)
			fs.Int64(s.name, def, usage)
		default:
			fs.String(s.name, s.def, usage)
		}
	}
}

// Load builds the configuration from defaults, then the file, then the environment (getenv),
// then the flags that were set on fs. It does not validate; call Validate.
func Load(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	c := &Config{}
	var errs []error
	apply := func(s setting, v, source string) {
		if err := s.set(c, strings.TrimSpace(v)); err != nil {
			errs = append(errs, fmt.Errorf("setting %q from %s: %w", s.name, source, err))
		}
	}
	for _, s := range settings {
		apply(s, s.def, "defaults")
	}

	file := getenv("COFFER_CONFIG")
	if f := fs.Lookup("config"); f != nil && f.Changed {
		file = f.Value.String()
	}
	if file != "" {
		c.ConfigFile = file
		values, err := readFile(file)
		if err != nil {
			return nil, err
		}
		for _, s := range settings {
			if v, ok := values[s.name]; ok {
				apply(s, v, "config file "+file)
				delete(values, s.name)
			}
		}
		for _, k := range sortedKeys(values) {
			errs = append(errs, fmt.Errorf("config file %s: unknown setting %q (see `coffer server --help`)", file, k))
		}
	}
	for _, s := range settings {
		if v, ok := lookup(getenv, s.env()); ok {
			apply(s, v, "environment variable "+s.env())
		}
	}
	for _, s := range settings {
		if f := fs.Lookup(s.name); f != nil && f.Changed {
			apply(s, f.Value.String(), "flag --"+s.name)
		}
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Dev {
			c.LogFormat = "text"
		}
	}
	return c, errors.Join(errs...)
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// readFile reads a flat YAML mapping of setting names to scalar values.
func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("config file %s: setting %q must be a single value", path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Validate reports every problem with the configuration, each naming its setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %q: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port: %v", c.Listen, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if !c.Dev {
		if c.TLSCertFile == "" {
			bad("tls-cert-file", "is required (Coffer serves HTTPS only; use --dev for a development certificate)")
		}
		if c.TLSKeyFile == "" {
			bad("tls-key-file", "is required (Coffer serves HTTPS only; use --dev for a development certificate)")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls-cert-file", "tls-cert-file and tls-key-file must be set together")
	}
	for name, path := range map[string]string{"tls-cert-file": c.TLSCertFile, "tls-key-file": c.TLSKeyFile, "tls-client-ca-file": c.TLSClientCAFile, "attest-sim-keys": c.AttestSimKeyFile, "attest-tdx-collateral": c.AttestTDXCollateralFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			bad(name, "cannot read %s: %v", path, errors.Unwrap(err))
		}
	}
	for _, a := range c.SKRTrustedAuthorities {
		if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("skr-trusted-authorities", "%q is not an https issuer URL (no user, query or fragment)", a)
		}
	}
	if c.TLSReloadEvery <= 0 {
		bad("tls-reload-interval", "must be positive, got %s", c.TLSReloadEvery)
	}
	if c.PKCS11Library != "" || c.PKCS11Token != "" || c.PKCS11PINFile != "" {
		for name, v := range map[string]string{"pkcs11-library": c.PKCS11Library, "pkcs11-token-label": c.PKCS11Token, "pkcs11-pin-file": c.PKCS11PINFile} {
			if v == "" {
				bad(name, "is required when any pkcs11 setting is set")
			}
		}
		if c.PKCS11Library != "" {
			if _, err := os.Stat(c.PKCS11Library); err != nil {
				bad("pkcs11-library", "cannot read %s: %v", c.PKCS11Library, errors.Unwrap(err))
			}
		}
		if c.PKCS11Sessions < 1 || c.PKCS11Sessions > 256 {
			bad("pkcs11-sessions", "%d is outside 1-256", c.PKCS11Sessions)
		}
		if c.PKCS11SessionWait <= 0 {
			bad("pkcs11-session-wait", "must be positive, got %s", c.PKCS11SessionWait)
		}
	}
	if c.PKCS11SOPINFile != "" && c.PKCS11Library == "" {
		bad("pkcs11-so-pin-file", "needs the PKCS#11 library: set pkcs11-library, pkcs11-token-label and pkcs11-pin-file")
	}
	c.validatePoolTokens(bad)
	switch c.Seal {
	case "shamir":
	case "pkcs11":
		if c.PKCS11Library == "" {
			bad("seal", "pkcs11 needs the token: set pkcs11-library, pkcs11-token-label and pkcs11-pin-file")
		}
		if c.PKCS11SealKeyLabel == "" {
			bad("pkcs11-seal-key-label", "must not be empty with seal pkcs11")
		}
	default:
		bad("seal", "%q is not shamir or pkcs11", c.Seal)
	}
	if c.AuditSyncInterval < 0 || c.AuditSyncInterval > time.Second {
		bad("audit-sync-interval", "must be from 0 to 1s, got %s", c.AuditSyncInterval)
	}
	if c.AuditReadSyncInterval < 0 || c.AuditReadSyncInterval > time.Second {
		bad("audit-read-sync-interval", "must be from 0 to 1s, got %s", c.AuditReadSyncInterval)
	}
	if c.AuditMaxSize != 0 && c.AuditMaxSize < 64<<10 {
		bad("audit-max-size", "must be 0 (never rotate) or at least 64KiB, got %d bytes", c.AuditMaxSize)
	}
	if c.TokenKeyMaxAge < 2*time.Hour {
		bad("token-key-rotation", "must be at least 2h (tokens live 1h), got %s", c.TokenKeyMaxAge)
	}
	if c.SchedulerEvery <= 0 {
		bad("scheduler-interval", "must be positive, got %s", c.SchedulerEvery)
	}
	if c.PurgeClockJumpLimit < 2*c.SchedulerEvery || c.PurgeClockJumpLimit < time.Minute {
		bad("purge-clock-jump-limit", "must be at least 1m and at least twice scheduler-interval (%s), got %s", c.SchedulerEvery, c.PurgeClockJumpLimit)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	for name, d := range map[string]time.Duration{"read-header-timeout": c.ReadHeaderTimeout, "read-timeout": c.ReadTimeout, "write-timeout": c.WriteTimeout, "idle-timeout": c.IdleTimeout} {
		if d <= 0 {
			bad(name, "must be positive, got %s", d)
		}
	}
	if c.ReadHeaderTimeout > 10*time.Second {
		bad("read-header-timeout", "must be at most 10s (a longer wait lets slow clients hold connections), got %s", c.ReadHeaderTimeout)
	}
	if c.ReadHeaderTimeout > c.ReadTimeout {
		bad("read-header-timeout", "must not exceed read-timeout (%s), which bounds the headers too; got %s", c.ReadTimeout, c.ReadHeaderTimeout)
	}
	if c.MaxConnections < 1 {
		bad("max-connections", "must be at least 1, got %d", c.MaxConnections)
	}
	if c.MaxConnectionsPerAddress < 0 {
		bad("max-connections-per-address", "must be 0 (no cap) or more, got %d", c.MaxConnectionsPerAddress)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("log-format", "%q is not json or text", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.DNSSuffix == "" || strings.ContainsAny(c.DNSSuffix, "/: ") {
		bad("dns-suffix", "%q is not a DNS name", c.DNSSuffix)
	}
	if c.RequestBodyLimit < 1024 || c.RequestBodyLimit > 64<<20 {
		bad("max-request-body", "%d is outside 1024 to 67108864 bytes", c.RequestBodyLimit)
	}
	if c.TenantRate < 0 || c.TenantBurst < 0 || c.TenantConcurrent < 0 {
		bad("tenant-rate-limit", "tenant limits must not be negative")
	}
	if c.KeyCreateLimit < 0 || c.KeyCreateLimitHSM < 0 {
		bad("key-create-limit", "key creation limits must not be negative")
	}
	if c.TenantRate > 0 && c.TenantBurst < 1 {
		bad("tenant-burst", "must be at least 1 when tenant-rate-limit is set")
	}
	// Sort for a stable message: map iteration above is random.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
