// Command loadgen drives a real Coffer server over HTTPS with authentication and audit on and
// reports, per operation and concurrency, throughput, p50/p99 latency and the server's CPU
// time per operation next to the raw in-process cost of the same cryptography measured in
// the same run (BENCHMARKS.md). It starts `coffer server --dev` as a subprocess on a random
// loopback port so the server's CPU time can be read from /proc.
//
//	go build -o /tmp/coffer ./cmd/coffer && go run ./tools/loadgen -coffer /tmp/coffer
//
// To measure what auditing costs, also build a benchmark-only binary that skips data-plane
// audit records and pass it as -coffer-noaudit; each row then runs against both servers,
// one after the other, and the ratio is printed:
//
//	go build -tags coffer_bench_noaudit -o /tmp/coffer-noaudit ./cmd/coffer
//	go run ./tools/loadgen -coffer /tmp/coffer -coffer-noaudit /tmp/coffer-noaudit
//
// The HSM operations (sign-ps256-hsm, sign-es256-hsm, encrypt-a256gcm-hsm; hsm.go) run on
// keys of the dev managed HSM pool, in a SoftHSM2 token loadgen makes (apt-get install
// softhsm2), against the same operation called directly on that token from this process:
// the API and direct rows alternate -rounds times, and API ÷ direct is printed (issue 6):
//
//	go run ./tools/loadgen -coffer /tmp/coffer -ops sign-ps256-hsm,sign-es256-hsm,encrypt-a256gcm-hsm -concurrency 8,32
//
// With -noisy it measures instead tenant B's p99 latency alone and while tenant A sends at 10×
// its quota (noisy.go, SECURITY-NOTES R1):
//
//	go run ./tools/loadgen -coffer /tmp/coffer -noisy -duration 10s -rounds 3
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
)

type creds struct {
	TenantID, ClientID, ClientSecret, AuthorityHost, VaultURL, ManagedHSMURL, CAFile string
}

func main() { os.Exit(loadgen(os.Args[1:], os.Stderr)) }

// loadgen runs the command with args and returns its exit status. It never exits itself:
// os.Exit skips deferred calls, and the -cpuprofile file is complete only once the profile is
// stopped, so main exits after loadgen has returned, whatever the outcome.
func loadgen(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("coffer", "coffer", "path to the coffer binary")
	noAudit := fs.String("coffer-noaudit", "", "optional: a coffer binary built with -tags coffer_bench_noaudit; every row then runs against it too, right after the audited server, and the audit cost is printed as a ratio of the same run")
	dur := fs.Duration("duration", 3*time.Second, "how long each operation runs at each concurrency")
	conc := fs.String("concurrency", "1,8,32,64", "comma-separated concurrency levels")
	http1 := fs.Bool("http1", false, "use HTTP/1.1 (one TLS connection per concurrent caller) instead of HTTP/2 (one connection, a stream per request), to see what the protocol costs")
	driver := fs.String("driver", "wrk", "load generator: wrk (Debian package wrk; HTTP/1.1, costs the least CPU per request) or go (this program's HTTP/2 client, or HTTP/1.1 with -http1)")
	opsFlag := fs.String("ops", "sign-ps256,sign-es256,decrypt-oaep256,wrap-oaep256,get-key,create-ec,get-secret,set-secret", "operations to run; the HSM ones, not run by default, are sign-ps256-hsm, sign-es256-hsm and encrypt-a256gcm-hsm (SoftHSM2)")
	rounds := fs.Int("rounds", 3, "HSM operations: how many times the API row and the direct row alternate at each concurrency")
	sessions := fs.Int("hsm-sessions", pkcs11.DefaultSessions, "HSM operations: PKCS#11 sessions of the server (--pkcs11-sessions) and of the direct provider")
	noisy := fs.Bool("noisy", false, "measure the noisy neighbour instead (noisy.go, BENCHMARKS.md \"Noisy neighbour\"): tenant B's p99 alone and while tenant A exceeds its quota, -rounds times, -duration per phase")
	noisyQuota := fs.Int("noisy-quota", 200, "-noisy: the server's per-tenant rate limit and burst (--tenant-rate-limit, --tenant-burst)")
	noisyFactor := fs.Float64("noisy-factor", 10, "-noisy: tenant A's request rate as a multiple of the quota (0: as fast as 256 callers go)")
	noisyBRate := fs.Float64("noisy-b-rate", 0, "-noisy: tenant B's request rate (default: half the quota)")
	noisyOp := fs.String("noisy-op", "get-secret", "-noisy: what tenant B does, get-secret or set-secret")
	noisyAOp := fs.String("noisy-a-op", "", "-noisy: what tenant A does (default: the same as B)")
	cpuProfile := fs.String("cpuprofile", "", "write loadgen's own CPU profile to this file (with wrk, mostly the direct rows of HSM operations; COFFER_CPUPROFILE=file profiles the server)")
	if err := fs.Parse(args); err == flag.ErrHelp {
		return 0
	} else if err != nil {
		return 2
	}
	switch *driver {
	case "go":
	case "wrk":
		if _, err := exec.LookPath("wrk"); err != nil {
			fmt.Fprintln(stderr, "loadgen: -driver wrk needs wrk on the PATH: apt-get install wrk (or use -driver go)")
			return 2
		}
		useWrk = true
	default:
		fmt.Fprintf(stderr, "loadgen: -driver %q: want wrk or go\n", *driver)
		return 2
	}
	if *rounds < 1 {
		fmt.Fprintln(stderr, "loadgen: -rounds must be at least 1")
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen: -cpuprofile:", err)
			return 2
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(stderr, "loadgen: -cpuprofile:", err)
			}
		}()
	}
	if *noisy {
		err := runNoisy(*bin, noisyConfig{quota: *noisyQuota, factor: *noisyFactor, bRate: *noisyBRate, op: *noisyOp, aOp: *noisyAOp, dur: *dur, rounds: *rounds, http1: *http1})
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		return 0
	}
	if err := run(*bin, *noAudit, *http1, *dur, *conc, strings.Split(*opsFlag, ","), *rounds, *sessions); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	return 0
}

// startCPUProfile starts profiling this process into the file path; stop ends the profile,
// which writes it, and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// useWrk selects the wrk driver (wrk.go) for the rows.
var useWrk bool

// target is one running server, ready for load.
type target struct {
	k     *kv
	pool  *kv // the dev managed HSM pool, for the HSM operations; nil without them
	pid   int
	dir   string         // the server's data directory
	creds creds          // the dev tenant's credentials
	port  string         // of the bare host, which serves the development vault
	enc   map[string]any // an RSA-OAEP-256 ciphertext for decrypt
	stop  func()
}

// start runs `coffer server --dev` from bin in a new data directory and creates the keys
// and the secret the operations use; with h, the server uses h's token and the pool gets a
// key for each HSM operation of ops. extra flags go last, so they override the defaults here.
func start(bin string, http1 bool, h *hsm, ops []string, extra ...string) (*target, error) {
	dir, err := os.MkdirTemp("", "coffer-load-")
	if err != nil {
		return nil, err
	}
	args := []string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--log-level", "error",
		"--tenant-rate-limit", "0", "--tenant-max-concurrent", "0",
		// The create-key operations make thousands of EC keys a second in one vault: the
		// per-vault creation limits would measure the limiter, not the crypto path.
		"--key-create-limit", "0", "--key-create-limit-hsm", "0"}
	if h != nil {
		args = append(args, h.serverFlags()...)
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t := &target{pid: cmd.Process.Pid, dir: dir, stop: func() {
		// SIGTERM first: the server drains and, with COFFER_CPUPROFILE set, writes its profile.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}}
	fail := func(err error) (*target, error) { t.stop(); return nil, err }
	c, err := waitCreds(filepath.Join(dir, "dev-credentials.json"), 30*time.Second)
	if err != nil {
		return fail(err)
	}
	hc, err := client(c.CAFile, http1)
	if err != nil {
		return fail(err)
	}
	vault := strings.TrimSuffix(c.VaultURL, "/")
	u, _ := url.Parse(vault)
	resource := "https://localhost:" + u.Port()
	tok, err := getToken(hc, c, resource)
	if err != nil {
		return fail(err)
	}
	t.port, t.creds = u.Port(), c
	t.k = &kv{hc: hc, base: vault, token: tok, wrkBase: "https://localhost:" + t.port}
	if _, err := t.k.call("POST", "/keys/bench-rsa/create", map[string]any{"kty": "RSA", "key_size": 2048}); err != nil {
		return fail(fmt.Errorf("create RSA key: %w", err))
	}
	if _, err := t.k.call("POST", "/keys/bench-ec/create", map[string]any{"kty": "EC", "crv": "P-256"}); err != nil {
		return fail(fmt.Errorf("create EC key: %w", err))
	}
	if _, err := t.k.call("PUT", "/secrets/bench-secret", map[string]any{"value": strings.Repeat("s", 64)}); err != nil {
		return fail(fmt.Errorf("set secret: %w", err))
	}
	plain := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if t.enc, err = t.k.call("POST", "/keys/bench-rsa/encrypt", map[string]any{"alg": "RSA-OAEP-256", "value": plain}); err != nil {
		return fail(fmt.Errorf("encrypt: %w", err))
	}
	if h != nil {
		if err := t.startPool(hc, c, ops); err != nil {
			return fail(err)
		}
	}
	return t, nil
}

// startPool gets a token for the dev managed HSM pool and creates there the key of each HSM
// operation of ops, calling it once.
func (t *target) startPool(hc *http.Client, c creds, ops []string) error {
	tok, err := getToken(hc, c, "https://managedhsm.localhost:"+t.port)
	if err != nil {
		return fmt.Errorf("pool token: %w", err)
	}
	base := strings.TrimSuffix(c.ManagedHSMURL, "/")
	// wrk cannot resolve the pool's host: it connects to 127.0.0.1 (wrkScript) and still sends
	// the host as TLS server name and Host header, which the server requires to match.
	t.pool = &kv{hc: hc, base: base, token: tok, wrkBase: base, wrkLoopback: true}
	for _, op := range hsmOpsIn(ops) {
		o := hsmOps[op]
		if _, err := t.pool.call("POST", "/keys/"+o.key+"/create", o.create); err != nil {
			return fmt.Errorf("create %s key: %w", op, err)
		}
		if err := t.pool.send(o.request()); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// store is the key store op runs against: the pool for HSM operations, else the vault.
func (t *target) store(op string) *kv {
	if _, ok := hsmOps[op]; ok {
		return t.pool
	}
	return t.k
}

func run(bin, noAuditBin string, http1 bool, dur time.Duration, concList string, ops []string, rounds, sessions int) error {
	var h *hsm
	if len(hsmOpsIn(ops)) > 0 {
		var err error
		if h, err = newHSM(sessions); err != nil {
			return err
		}
		defer h.close()
	}
	on, err := start(bin, http1, h, ops)
	if err != nil {
		return err
	}
	defer on.stop()
	if h != nil {
		if err := h.open(ops); err != nil {
			return err
		}
	}
	var off *target
	if noAuditBin != "" {
		if off, err = start(noAuditBin, http1, h, ops); err != nil {
			return fmt.Errorf("audit-off server: %w", err)
		}
		defer off.stop()
	}
	digest := sha256.Sum256([]byte("coffer load"))
	d64 := base64.RawURLEncoding.EncodeToString(digest[:])
	plain := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	var n atomic.Int64
	bodies := map[string]func(t *target) (string, string, any){
		"sign-ps256": func(*target) (string, string, any) {
			return "POST", "/keys/bench-rsa/sign", map[string]any{"alg": "PS256", "value": d64}
		},
		"sign-es256": func(*target) (string, string, any) {
			return "POST", "/keys/bench-ec/sign", map[string]any{"alg": "ES256", "value": d64}
		},
		"decrypt-oaep256": func(t *target) (string, string, any) {
			return "POST", "/keys/bench-rsa/decrypt", map[string]any{"alg": "RSA-OAEP-256", "value": t.enc["value"]}
		},
		"wrap-oaep256": func(*target) (string, string, any) {
			return "POST", "/keys/bench-rsa/wrapkey", map[string]any{"alg": "RSA-OAEP-256", "value": plain}
		},
		"get-key": func(*target) (string, string, any) { return "GET", "/keys/bench-ec/", nil },
		"create-ec": func(*target) (string, string, any) {
			return "POST", fmt.Sprintf("/keys/load-%d/create", n.Add(1)), map[string]any{"kty": "EC", "crv": "P-256"}
		},
		"get-secret": func(*target) (string, string, any) { return "GET", "/secrets/bench-secret/", nil },
		"set-secret": func(*target) (string, string, any) {
			return "PUT", fmt.Sprintf("/secrets/load-%d", n.Add(1)), map[string]any{"value": strings.Repeat("v", 64)}
		},
	}
	for op, o := range hsmOps {
		bodies[op] = func(*target) (string, string, any) { return o.request() }
	}
	rawCost := rawCosts()
	fmt.Printf("| operation | concurrency | audit | ops/s | p50 ms | p99 ms | server CPU µs/op | loadgen CPU µs/op | raw crypto µs/op | CPU ÷ raw |\n|---|---|---|---|---|---|---|---|---|---|\n")
	var cost, hsmLines []string
	// rowDur is how long a row runs: wrk takes whole seconds, and a direct row runs as long.
	rowDur := dur
	if useWrk {
		rowDur = wrkSeconds(dur)
	}
	for _, op := range ops {
		body, ok := bodies[op]
		if !ok {
			return fmt.Errorf("unknown operation %q", op)
		}
		for _, cs := range strings.Split(concList, ",") {
			conc, err := strconv.Atoi(strings.TrimSpace(cs))
			if err != nil || conc < 1 {
				return fmt.Errorf("bad concurrency %q", cs)
			}
			// The raw cost is measured again right before each concurrency's rows: measured
			// once per operation it once read 1,305 µs for an RSA signature that cost ~990
			// µs a minute later, which made every ratio of that operation meaningless.
			raw, hasRaw := rawCost(op)
			row := func(t *target, audit string) (result, error) {
				var res result
				var err error
				if useWrk {
					res, err = loadWrk(t, t.store(op), op, body, conc, dur)
				} else {
					res, err = load(t, t.store(op), body, conc, dur)
				}
				if err != nil {
					return res, fmt.Errorf("%s at %d (audit %s): %w", op, conc, audit, err)
				}
				rawCell, ratio := "", ""
				if hasRaw {
					rawCell = fmt.Sprintf("%.1f", raw)
					ratio = fmt.Sprintf("%.2f×", res.cpuPerOp/raw)
				}
				fmt.Printf("| %s | %d | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s | %s |\n", op, conc, audit, res.opsPerSec, res.p50, res.p99, res.cpuPerOp, res.clientPerOp, rawCell, ratio)
				return res, nil
			}
			// rows runs the operation against the server(s): audit on, then off if given.
			rows := func() (result, error) {
				a, err := row(on, "on")
				if err != nil || off == nil {
					return a, err
				}
				b, err := row(off, "off")
				if err != nil {
					return a, err
				}
				cost = append(cost, fmt.Sprintf("| %s | %d | %.0f | %.0f | **%.2f** | %.1f | %.1f |", op, conc, a.opsPerSec, b.opsPerSec, a.opsPerSec/b.opsPerSec, a.cpuPerOp, b.cpuPerOp))
				return a, nil
			}
			if _, isHSM := hsmOps[op]; !isHSM {
				if _, err := rows(); err != nil {
					return err
				}
				continue
			}
			hr := hsmRounds{op: op, conc: conc}
			for range rounds {
				a, err := rows()
				if err != nil {
					return err
				}
				d, err := h.loadDirect(op, conc, rowDur)
				if err != nil {
					return err
				}
				// A direct row has no server: its CPU is this process's, in the loadgen column.
				fmt.Printf("| %s | %d | direct | %.0f | %.2f | %.2f | | %.1f | | |\n", op, conc, d.opsPerSec, d.p50, d.p99, d.clientPerOp)
				hr.api, hr.direct = append(hr.api, a), append(hr.direct, d)
			}
			hsmLines = append(hsmLines, hr.line())
		}
	}
	if len(hsmLines) > 0 {
		fmt.Println(hsmTableHead)
		fmt.Println(strings.Join(hsmLines, "\n"))
	}
	if len(cost) > 0 {
		fmt.Printf("\nAudit cost, same run (throughput with audit ÷ without; the budget is ≥ 0.85):\n\n")
		fmt.Printf("| operation | concurrency | ops/s audit on | ops/s audit off | on ÷ off | server CPU µs/op on | off |\n|---|---|---|---|---|---|---|\n")
		fmt.Println(strings.Join(cost, "\n"))
	}
	return nil
}

type result struct{ opsPerSec, p50, p99, cpuPerOp, clientPerOp float64 }

func load(t *target, k *kv, body func(*target) (string, string, any), conc int, dur time.Duration) (result, error) {
	cpu0, self0 := procCPU(t.pid), procCPU(os.Getpid())
	lat, elapsed, err := drive(conc, dur, func() error {
		m, p, b := body(t)
		return k.send(m, p, b)
	})
	cpu, self := procCPU(t.pid)-cpu0, procCPU(os.Getpid())-self0
	if err != nil {
		return result{}, err
	}
	return summarize(lat, elapsed, cpu, self)
}

// procCPU is the user+system CPU time of process pid (Linux /proc, clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// rawCosts returns a function measuring the in-process cost of an operation's cryptography,
// single-threaded, in CPU time of the measuring thread (µs/op; false if the operation has no
// raw counterpart). CPU time, like the server's, not wall time: on a shared machine a
// descheduled thread would otherwise inflate the raw cost (wall time once read 2,284 µs for
// an RSA signature that costs ~1,200). Call it right before the rows it is compared with.
func rawCosts() func(op string) (float64, bool) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("coffer load"))
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rk.PublicKey, make([]byte, 32), nil)
	ops := map[string]func(){
		"sign-ps256": func() {
			rsa.SignPSS(rand.Reader, rk, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		},
		"sign-es256":      func() { ecdsa.SignASN1(rand.Reader, ek, digest[:]) },
		"decrypt-oaep256": func() { rsa.DecryptOAEP(sha256.New(), nil, rk, ct, nil) },
		"wrap-oaep256":    func() { rsa.EncryptOAEP(sha256.New(), rand.Reader, &rk.PublicKey, make([]byte, 32), nil) },
		"create-ec":       func() { ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	}
	measure := func(f func()) float64 {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		f() // warm up
		// At least 300 calls and 200 ms of CPU: the thread's CPU clock advances in
		// scheduler ticks here, so 300 EC key generations (~5 ms) once read 2.7 µs each.
		t0 := threadCPU()
		n := 0
		for n < 300 || threadCPU()-t0 < 200*time.Millisecond {
			for range 100 {
				f()
			}
			n += 100
		}
		return float64((threadCPU() - t0).Microseconds()) / float64(n)
	}
	return func(op string) (float64, bool) {
		f, ok := ops[op]
		if !ok {
			return 0, false
		}
		return measure(f), true
	}
}

// threadCPU is the user+system CPU time of the calling OS thread.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kv is a key store of the server and a bearer token for it.
type kv struct {
	hc    *http.Client
	base  string
	token string
	// wrkBase is the URL wrk addresses the store by; with wrkLoopback wrk connects to
	// 127.0.0.1 instead of resolving its host.
	wrkBase     string
	wrkLoopback bool
}

// request is one request to the store with the token and body as JSON (none if nil).
func (k *kv) request(method, path string, body any) *http.Request {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, k.base+path+"?api-version=7.6", r)
	req.Header.Set("Authorization", "Bearer "+k.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// do sends one request with the token; the caller closes the answer's body. Any status
// but 200 is an error.
func (k *kv) do(method, path string, body any) (*http.Response, error) {
	resp, err := k.hc.Do(k.request(method, path, body))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp, nil
}

// call sends a request and decodes the JSON answer.
func (k *kv) call(method, path string, body any) (map[string]any, error) {
	resp, err := k.do(method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// send is call without decoding the answer, to keep the load generator's CPU low.
func (k *kv) send(method, path string, body any) error {
	resp, err := k.do(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func getToken(hc *http.Client, c creds, resource string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {resource + "/.default"}}
	resp, err := hc.PostForm(strings.TrimSuffix(c.AuthorityHost, "/")+"/"+c.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %d", resp.StatusCode)
	}
	return out.AccessToken, nil
}

func client(caFile string, http1 bool) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: !http1, MaxIdleConnsPerHost: 128,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	if http1 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no HTTP/2
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}

func waitCreds(path string, timeout time.Duration) (creds, error) {
	deadline := time.Now().Add(timeout)
	for {
		var c creds
		b, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(b, &c) == nil && c.VaultURL != "" {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("the server did not write %s within %s", path, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
