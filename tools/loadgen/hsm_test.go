package main

import (
	"encoding/base64"
	"errors"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/provider/pkcs11/softhsm"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestHSMRounds: API ÷ direct is the ratio of the summed rates with the rounds' extremes;
// the CPU is the server's for API rows and loadgen's for direct rows.
func TestHSMRounds(t *testing.T) {
	h := hsmRounds{op: "sign-es256-hsm", conc: 8,
		api:    []result{{opsPerSec: 400, cpuPerOp: 250, clientPerOp: 40}, {opsPerSec: 600, cpuPerOp: 270, clientPerOp: 40}, {opsPerSec: 500, cpuPerOp: 260, clientPerOp: 40}},
		direct: []result{{opsPerSec: 1000, cpuPerOp: 0, clientPerOp: 90}, {opsPerSec: 1000, clientPerOp: 110}, {opsPerSec: 1000, clientPerOp: 100}},
	}
	mean, lo, hi := h.ratio()
	if !near(mean, 0.5) || !near(lo, 0.4) || !near(hi, 0.6) {
		t.Errorf("ratio() = %v, %v, %v; want 0.5, 0.4, 0.6", mean, lo, hi)
	}
	a, d := h.cpu()
	if !near(a, 260) || !near(d, 100) {
		t.Errorf("cpu() = %v, %v; want 260, 100", a, d)
	}
	want := "| sign-es256-hsm | 8 | 400 / 600 / 500 | 1000 / 1000 / 1000 | **0.50** (0.40–0.60) | 260.0 | 100.0 | 2.60 | 0.38 |"
	if got := h.line(); got != want {
		t.Errorf("line() =\n%s\nwant\n%s", got, want)
	}
	if cols, head := strings.Count(want, "|"), strings.Split(strings.TrimSpace(hsmTableHead), "\n"); strings.Count(head[len(head)-1], "|") != cols {
		t.Errorf("the table head has %d columns, a line %d", strings.Count(head[len(head)-1], "|")-1, cols-1)
	}
}

// TestSummarize: percentiles of the sorted latencies, and CPU per operation.
func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 101; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r, err := summarize(lat, 2*time.Second, 101*time.Millisecond, 202*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if want := (result{opsPerSec: 50.5, p50: 51, p99: 100, cpuPerOp: 1000, clientPerOp: 2000}); r != want {
		t.Errorf("summarize = %+v; want %+v", r, want)
	}
	if _, err := summarize(nil, time.Second, 0, 0); err == nil {
		t.Error("summarize(no latencies) = nil error; want one")
	}
}

// TestDrive: every goroutine calls until the deadline; an error stops the row.
func TestDrive(t *testing.T) {
	lat, elapsed, err := drive(3, 20*time.Millisecond, func() error { time.Sleep(time.Millisecond); return nil })
	if err != nil || len(lat) < 3 || elapsed < 20*time.Millisecond {
		t.Errorf("drive = %d calls in %v, %v; want ≥ 3 calls in ≥ 20ms, no error", len(lat), elapsed, err)
	}
	for i := 1; i < len(lat); i++ {
		if lat[i] < lat[i-1] {
			t.Fatalf("latencies are not sorted at %d", i)
		}
	}
	boom := errors.New("boom")
	if _, _, err := drive(2, time.Second, func() error { return boom }); err != boom {
		t.Errorf("drive(failing op) = %v; want boom", err)
	}
}

// TestWrkScriptLoopback: only a loopback script replaces wrk's resolver.
func TestWrkScriptLoopback(t *testing.T) {
	for _, loopback := range []bool{false, true} {
		s, err := wrkScript("sign-es256-hsm", "POST", map[string]any{"alg": "ES256"}, "tok", loopback)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(s, `function wrk.resolve(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end`); got != loopback {
			t.Errorf("wrkScript(loopback %v) replaces the resolver: %v\n%s", loopback, got, s)
		}
		if !strings.Contains(s, `wrk.body = "{\"alg\":\"ES256\"}"`) {
			t.Errorf("wrkScript(loopback %v) lost the body:\n%s", loopback, s)
		}
	}
}

// TestHSMOpsIn keeps the HSM operations of a list, in order.
func TestHSMOpsIn(t *testing.T) {
	got := strings.Join(hsmOpsIn([]string{"get-key", "encrypt-a256gcm-hsm", "sign-ps256", "sign-ps256-hsm"}), ",")
	if want := "encrypt-a256gcm-hsm,sign-ps256-hsm"; got != want {
		t.Errorf("hsmOpsIn = %s; want %s", got, want)
	}
}

// TestHSMDirect: each HSM operation's API request carries the input the direct call uses,
// and the direct side runs on a fresh SoftHSM2 token (skipped without SoftHSM2).
func TestHSMDirect(t *testing.T) {
	for op, o := range hsmOps {
		m, path, body := o.request()
		v, _ := base64.RawURLEncoding.DecodeString(body.(map[string]any)["value"].(string))
		if m != "POST" || path != "/keys/"+o.key+"/"+o.verb || string(v) != string(o.input()) || len(v) != 32 {
			t.Errorf("%s: request = %s %s %v; want POST /keys/%s/%s with its 32-byte input", op, m, path, body, o.key, o.verb)
		}
	}
	t.Setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF")) // newHSM changes it
	defer debug.SetGCPercent(debug.SetGCPercent(100))     // and open the GC target
	h, err := newHSM(2)
	if errors.Is(err, softhsm.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if got := strings.Join(h.serverFlags(), " "); !strings.Contains(got, "--pkcs11-sessions 2") || !strings.Contains(got, "--pkcs11-pin-file "+h.tok.PINFile) {
		t.Errorf("serverFlags = %s; want the PIN file and 2 sessions", got)
	}
	ops := []string{"sign-es256-hsm", "encrypt-a256gcm-hsm"}
	if err := h.open(ops); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		r, err := h.loadDirect(op, 2, 20*time.Millisecond)
		if err != nil || r.opsPerSec <= 0 || r.cpuPerOp != 0 || r.clientPerOp <= 0 {
			t.Errorf("loadDirect(%s) = %+v, %v; want operations and loadgen CPU only", op, r, err)
		}
	}
}
