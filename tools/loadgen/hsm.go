package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11"
	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
)

// HSM operations (issue 6): the same operation on an HSM key through the API (the dev
// managed HSM pool devhsm, whose keys live in a SoftHSM2 token loadgen makes) and called
// directly on that token from this process (a second pkcs11.Provider with the server's
// session count), the two alternating so that both see the same noise on a shared machine.

// hsmOp is one HSM operation: the pool key it uses and how to call it.
type hsmOp struct {
	key    string         // the key's name in the pool
	create map[string]any // the create request's body
	spec   provider.KeySpec
	verb   string // "sign" or "encrypt", the path segment and the provider method
	alg    string
}

// hsmOps are the operations of issue 6's HSM target.
var hsmOps = map[string]hsmOp{
	"sign-ps256-hsm": {"bench-rsa-hsm", map[string]any{"kty": "RSA-HSM", "key_size": 2048},
		provider.KeySpec{Type: provider.RSAHSM, Size: 2048}, "sign", provider.AlgPS256},
	"sign-es256-hsm": {"bench-ec-hsm", map[string]any{"kty": "EC-HSM", "crv": "P-256"},
		provider.KeySpec{Type: provider.ECHSM, Curve: provider.P256}, "sign", provider.AlgES256},
	"encrypt-a256gcm-hsm": {"bench-aes-hsm", map[string]any{"kty": "oct-HSM", "key_size": 256},
		provider.KeySpec{Type: provider.OctHSM, Size: 256}, "encrypt", provider.AlgA256GCM},
}

// input is the operation's 32 bytes: a SHA-256 digest to sign, or a plaintext to encrypt.
func (o hsmOp) input() []byte {
	if o.verb == "sign" {
		d := sha256.Sum256([]byte("coffer load"))
		return d[:]
	}
	return make([]byte, 32)
}

// request is the operation through the API.
func (o hsmOp) request() (string, string, any) {
	return "POST", "/keys/" + o.key + "/" + o.verb, map[string]any{"alg": o.alg, "value": base64.RawURLEncoding.EncodeToString(o.input())}
}

// call is the operation on a key of the token, directly.
func (o hsmOp) call(ctx context.Context, k provider.Key, in []byte) error {
	if o.verb == "sign" {
		_, err := k.Sign(ctx, o.alg, in)
		return err
	}
	_, err := k.Encrypt(ctx, provider.EncryptParams{Algorithm: o.alg, Value: in})
	return err
}

// hsmOpsIn returns the HSM operations among ops, in order.
func hsmOpsIn(ops []string) []string {
	var out []string
	for _, op := range ops {
		if _, ok := hsmOps[op]; ok {
			out = append(out, op)
		}
	}
	return out
}

// hsmLabel is the label of loadgen's token.
const hsmLabel = "coffer"

// hsm is loadgen's SoftHSM2 token: the server's HSM keys live in it, and direct opens a
// second provider on it for the direct rows.
type hsm struct {
	dir      string
	tok      *softhsm.Tokens
	sessions int
	direct   *pkcs11.Provider
	keys     map[string]provider.Key // by operation
}

// newHSM makes a fresh token in a temporary directory and points SOFTHSM2_CONF at it, for
// this process and the servers it starts.
func newHSM(sessions int) (*hsm, error) {
	dir, err := os.MkdirTemp("", "loadgen-softhsm-")
	if err != nil {
		return nil, err
	}
	tok, err := softhsm.Init(dir, "1234", "5678", hsmLabel)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, softhsm.ErrNotInstalled) {
			return nil, fmt.Errorf("the HSM operations need a SoftHSM2 token: %w", err)
		}
		return nil, err
	}
	os.Setenv("SOFTHSM2_CONF", tok.Conf)
	return &hsm{dir: dir, tok: tok, sessions: sessions, keys: map[string]provider.Key{}}, nil
}

// serverFlags are the flags that give `coffer server` the token.
func (h *hsm) serverFlags() []string {
	return []string{"--pkcs11-library", softhsm.Library, "--pkcs11-token-label", hsmLabel,
		"--pkcs11-pin-file", h.tok.PINFile, "--pkcs11-sessions", strconv.Itoa(h.sessions)}
}

// open opens the direct provider and makes a key for each HSM operation of ops, calling it
// once. This process's GC target becomes the server's (400, internal/cli/gc.go) unless GOGC
// is set, so that the direct side's garbage costs what the server's does.
func (h *hsm) open(ops []string) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	p, err := pkcs11.Open(pkcs11.Config{Library: softhsm.Library, TokenLabel: hsmLabel, PIN: h.tok.PIN, Sessions: h.sessions})
	if err != nil {
		return fmt.Errorf("direct provider: %w", err)
	}
	h.direct = p
	ctx := context.Background()
	for _, op := range hsmOpsIn(ops) {
		o := hsmOps[op]
		k, err := p.Generate(ctx, o.spec)
		if err != nil {
			return fmt.Errorf("direct %s key: %w", op, err)
		}
		if err := o.call(ctx, k, o.input()); err != nil {
			return fmt.Errorf("direct %s: %w", op, err)
		}
		h.keys[op] = k
	}
	return nil
}

// close closes the direct provider and removes the token.
func (h *hsm) close() {
	if h.direct != nil {
		h.direct.Close()
	}
	os.RemoveAll(h.dir)
}

// loadDirect runs op on its direct key from conc goroutines for dur. Its CPU is this
// process's (getrusage, every thread, the token library's included) during the phase only,
// reported as the loadgen CPU; there is no server.
func (h *hsm) loadDirect(op string, conc int, dur time.Duration) (result, error) {
	o, k := hsmOps[op], h.keys[op]
	in := o.input()
	ctx := context.Background()
	cpu0 := selfCPU()
	lat, elapsed, err := drive(conc, dur, func() error { return o.call(ctx, k, in) })
	cpu := selfCPU() - cpu0
	if err != nil {
		return result{}, fmt.Errorf("%s direct at %d: %w", op, conc, err)
	}
	return summarize(lat, elapsed, 0, cpu)
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hsmRounds are the alternating API and direct rows of one HSM operation at one
// concurrency.
type hsmRounds struct {
	op          string
	conc        int
	api, direct []result
}

// ratio is API ÷ direct throughput over all rounds (the ratio of the mean rates), with the
// lowest and highest ratio of a single round.
func (h hsmRounds) ratio() (mean, lo, hi float64) {
	var a, d float64
	lo, hi = -1, 0
	for i := range h.api {
		a, d = a+h.api[i].opsPerSec, d+h.direct[i].opsPerSec
		r := h.api[i].opsPerSec / h.direct[i].opsPerSec
		if lo < 0 || r < lo {
			lo = r
		}
		hi = max(hi, r)
	}
	return a / d, lo, hi
}

// cpu is the mean CPU per operation of the rounds: the server's for the API rows, this
// process's for the direct rows.
func (h hsmRounds) cpu() (api, direct float64) {
	for i := range h.api {
		api, direct = api+h.api[i].cpuPerOp, direct+h.direct[i].clientPerOp
	}
	n := float64(len(h.api))
	return api / n, direct / n
}

// hsmTableHead is the header of the API ÷ direct table.
const hsmTableHead = `
HSM keys through the API ÷ the same operation directly on the token, same run, rows alternating (issue 6's target: ≥ 0.8):

| operation | concurrency | API ops/s by round | direct ops/s by round | API ÷ direct (rounds) | server CPU µs/op | direct CPU µs/op | CPU/op API ÷ direct | direct ÷ API CPU/op |
|---|---|---|---|---|---|---|---|---|`

// line is the operation's row of the API ÷ direct table.
func (h hsmRounds) line() string {
	rates := func(rs []result) string {
		s := make([]string, len(rs))
		for i, r := range rs {
			s[i] = fmt.Sprintf("%.0f", r.opsPerSec)
		}
		return strings.Join(s, " / ")
	}
	mean, lo, hi := h.ratio()
	a, d := h.cpu()
	return fmt.Sprintf("| %s | %d | %s | %s | **%.2f** (%.2f–%.2f) | %.1f | %.1f | %.2f | %.2f |",
		h.op, h.conc, rates(h.api), rates(h.direct), mean, lo, hi, a, d, a/d, d/a)
}

// drive calls op from conc goroutines until dur has passed and returns each call's
// latency, sorted, and the time it all took; the first error stops its goroutine and is
// returned.
func drive(conc int, dur time.Duration, op func() error) ([]time.Duration, time.Duration, error) {
	type out struct {
		lat []time.Duration
		err error
	}
	done := make(chan out, conc)
	stop := time.Now().Add(dur)
	start := time.Now()
	for range conc {
		go func() {
			var o out
			for time.Now().Before(stop) {
				t0 := time.Now()
				if o.err = op(); o.err != nil {
					break
				}
				o.lat = append(o.lat, time.Since(t0))
			}
			done <- o
		}()
	}
	var lat []time.Duration
	var err error
	for range conc {
		o := <-done
		lat = append(lat, o.lat...)
		if err == nil {
			err = o.err
		}
	}
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, elapsed, err
}

// summarize makes a row from sorted latencies, the time they took, and the server's and the
// load generator's CPU time over it.
func summarize(lat []time.Duration, elapsed, serverCPU, clientCPU time.Duration) (result, error) {
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no operation completed")
	}
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	n := float64(len(lat))
	return result{
		opsPerSec:   n / elapsed.Seconds(),
		p50:         pct(0.50),
		p99:         pct(0.99),
		cpuPerOp:    serverCPU.Seconds() * 1e6 / n,
		clientPerOp: clientCPU.Seconds() * 1e6 / n,
	}, nil
}
