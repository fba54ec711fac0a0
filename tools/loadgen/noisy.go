package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The noisy-neighbour mode (-noisy; SECURITY-NOTES R1, BENCHMARKS.md "Noisy neighbour"): the
// server runs with a per-tenant quota of -noisy-quota requests per second (burst the same);
// tenant B (a second tenant made through the management API, with its own vault and its own
// connections) reads a secret (-noisy-op) at -noisy-b-rate requests per second, open loop,
// first alone ("idle"), then while tenant A (the dev tenant, its own vault) sends
// -noisy-factor × the quota (-noisy-a-op: reads, or writes of secrets) ("noisy"). Each of
// -rounds rounds measures both phases for -duration each; B's p99 noisy ÷ idle is the figure
// (target ≤ 1.5, with 0 × 429 for B and 429 + Retry-After for A). Calls slower than 50 ms
// are listed on stderr, B's and A's, to tell a stall of the whole server (both) from one of
// B's alone.
//
//	go run ./tools/loadgen -coffer /tmp/coffer -noisy -duration 10s -rounds 3

// noisyConfig is the mode's settings.
type noisyConfig struct {
	quota  int           // --tenant-rate-limit and --tenant-burst of the server
	factor float64       // A's request rate ÷ quota; 0: as fast as aWorkers can go
	bRate  float64       // B's request rate
	op     string        // what B does: get-secret or set-secret
	aOp    string        // what A does (default op)
	dur    time.Duration // of each phase
	rounds int
	http1  bool
}

const (
	noisyAWorkers = 256 // tenant A's concurrent callers: enough to keep 10× the quota going when answers slow down
	noisyBWorkers = 8   // tenant B's
	// keyVaultSecretsOfficer is the built-in role B's administrator gives itself on its vault.
	keyVaultSecretsOfficer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
)

func runNoisy(bin string, nc noisyConfig) error {
	if nc.quota < 1 {
		return fmt.Errorf("-noisy-quota must be at least 1")
	}
	if nc.bRate <= 0 {
		nc.bRate = float64(nc.quota) / 2
	}
	if nc.bRate > float64(nc.quota) {
		return fmt.Errorf("-noisy-b-rate %.0f is above the quota %d: B would be throttled by its own load", nc.bRate, nc.quota)
	}
	if nc.aOp == "" {
		nc.aOp = nc.op
	}
	for _, op := range []string{nc.op, nc.aOp} {
		if op != "get-secret" && op != "set-secret" {
			return fmt.Errorf("-noisy-op/-noisy-a-op %q: want get-secret or set-secret", op)
		}
	}
	q := fmt.Sprint(nc.quota)
	// The server's default in-flight cap per tenant (64) stays on.
	t, err := start(bin, nc.http1, nil, nil, "--tenant-rate-limit", q, "--tenant-burst", q, "--tenant-max-concurrent", "64")
	if err != nil {
		return err
	}
	defer t.stop()
	b, err := t.secondTenant(nc.http1)
	if err != nil {
		return fmt.Errorf("tenant B: %w", err)
	}
	// A has its own client, so its own connections, as another customer would.
	ac, err := client(t.creds.CAFile, nc.http1)
	if err != nil {
		return err
	}
	a := &kv{hc: ac, base: t.k.base, token: t.k.token}
	var seq atomic.Int64
	call := func(k *kv, op string) func() (int, http.Header, []byte, error) {
		return func() (int, http.Header, []byte, error) {
			if op == "set-secret" {
				return k.raw("PUT", fmt.Sprintf("/secrets/noisy-%d", seq.Add(1)%1000), map[string]any{"value": strings.Repeat("v", 64)})
			}
			return k.raw("GET", "/secrets/bench-secret/", nil)
		}
	}
	aRate := nc.factor * float64(nc.quota)
	aDesc := fmt.Sprintf("%.0f/s (%.0f× the quota)", aRate, nc.factor)
	if nc.factor == 0 {
		aDesc = fmt.Sprintf("as fast as %d callers go", noisyAWorkers)
	}
	fmt.Printf("Noisy neighbour: quota %d/s and burst %d per tenant, B %s at %.0f/s, A %s at %s, %s per phase\n\n",
		nc.quota, nc.quota, nc.op, nc.bRate, nc.aOp, aDesc, nc.dur)
	fmt.Println("| round | phase | B req/s | B 200 | B 429 | B p50 ms | B p99 ms | B max ms | A req/s | A ÷ quota | A 200/s | A 429 | A 429 shape | server CPU % |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	var idle, noisy []float64
	bad := 0
	for r := 1; r <= nc.rounds; r++ {
		for _, phase := range []string{"idle", "noisy"} {
			// A short pause between phases lets A's bucket refill and the last calls drain.
			time.Sleep(time.Second)
			cpu0 := procCPU(t.pid)
			var ar pacedResult
			var wg sync.WaitGroup
			if phase == "noisy" {
				wg.Add(1)
				go func() { defer wg.Done(); ar = paced(aRate, nc.dur, noisyAWorkers, call(a, nc.aOp)) }()
			}
			br := paced(nc.bRate, nc.dur, noisyBWorkers, call(b, nc.op))
			wg.Wait()
			cpu := procCPU(t.pid) - cpu0
			if br.ok == 0 {
				return fmt.Errorf("round %d %s: tenant B got no 200: %s", r, phase, br.firstOther)
			}
			if br.throttled+br.other > 0 {
				bad++
			}
			aCells := "| | | | | "
			if phase == "noisy" {
				shape := "ok"
				if ar.badThrottle != "" {
					shape, bad = ar.badThrottle, bad+1
				}
				if ar.other > 0 {
					shape += "; other answers: " + ar.firstOther
					bad++
				}
				sent := float64(ar.sent) / ar.elapsed.Seconds()
				aCells = fmt.Sprintf("| %.0f | %.1f× | %.0f | %d | %s ", sent, sent/float64(nc.quota), float64(ar.ok)/ar.elapsed.Seconds(), ar.throttled, shape)
			}
			p50, p99 := br.pct(0.50), br.pct(0.99)
			fmt.Printf("| %d | %s | %.0f | %d | %d | %.2f | %.2f | %.2f %s| %.0f |\n", r, phase, float64(br.sent)/br.elapsed.Seconds(), br.ok, br.throttled, p50, p99, br.pct(1), aCells, 100*cpu.Seconds()/br.elapsed.Seconds())
			if len(br.slow) > 0 {
				fmt.Fprintf(os.Stderr, "round %d %s: B calls over 50 ms sent at %s; A's at %s\n", r, phase, brief(br.slow), brief(ar.slow))
			}
			if br.other > 0 {
				fmt.Printf("\ntenant B got %d answers other than 200 and 429, the first: %s\n\n", br.other, br.firstOther)
			}
			if phase == "idle" {
				idle = append(idle, p99)
			} else {
				noisy = append(noisy, p99)
			}
		}
	}
	fmt.Printf("\n| round | B p99 idle ms | B p99 noisy ms | noisy ÷ idle |\n|---|---|---|---|\n")
	for i := range idle {
		fmt.Printf("| %d | %.2f | %.2f | **%.2f** |\n", i+1, idle[i], noisy[i], noisy[i]/idle[i])
	}
	mi, mn := median(idle), median(noisy)
	fmt.Printf("| median | %.2f | %.2f | **%.2f** |\n", mi, mn, mn/mi)
	if bad > 0 {
		return fmt.Errorf("%d phases had a wrong answer (B throttled or failed, or A's 429 without Retry-After/Throttled)", bad)
	}
	return nil
}

// brief lists the first few times of ts, sorted, and how many there are.
func brief(ts []time.Duration) string {
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) > 12 {
		return fmt.Sprintf("%v… (%d in all)", s[:12], len(s))
	}
	return fmt.Sprint(s)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pacedResult is what paced saw.
type pacedResult struct {
	lat                              []time.Duration // of the 200s, sorted
	slow                             []time.Duration // when (since the start) calls slower than 50 ms were sent
	sent, ok, throttled, other, miss int64
	firstOther, badThrottle          string
	elapsed                          time.Duration
}

// pct is the p-quantile of the 200s' latencies in milliseconds.
func (r pacedResult) pct(p float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	return float64(r.lat[int(p*float64(len(r.lat)-1))].Microseconds()) / 1000
}

// paced calls op rate times a second for dur from at most workers goroutines, open loop: a
// call is due every 1/rate whatever the earlier ones are doing; one due while every worker is
// busy waits in a queue of workers calls, beyond which it is counted in miss and dropped.
// rate 0: every worker calls as fast as it can. A call's latency runs from when its worker
// sends it to when the whole answer is read.
func paced(rate float64, dur time.Duration, workers int, op func() (int, http.Header, []byte, error)) pacedResult {
	var (
		res  pacedResult
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan struct{}, workers)
	)
	var sent, ok, throttled, other atomic.Int64
	start := time.Now()
	stop := start.Add(dur)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			one := func() {
				t0 := time.Now()
				status, h, body, err := op()
				d := time.Since(t0)
				sent.Add(1)
				if d > 50*time.Millisecond {
					mu.Lock()
					res.slow = append(res.slow, t0.Sub(start).Round(time.Millisecond))
					mu.Unlock()
				}
				switch {
				case err == nil && status == 200:
					ok.Add(1)
					lat = append(lat, d)
				case err == nil && status == 429:
					throttled.Add(1)
					if msg := throttleShape(h, body); msg != "" {
						mu.Lock()
						if res.badThrottle == "" {
							res.badThrottle = msg
						}
						mu.Unlock()
					}
				default:
					other.Add(1)
					mu.Lock()
					if res.firstOther == "" {
						if err != nil {
							res.firstOther = err.Error()
						} else {
							res.firstOther = fmt.Sprintf("%d %.200s", status, body)
						}
					}
					mu.Unlock()
				}
			}
			if rate == 0 {
				for time.Now().Before(stop) {
					one()
				}
			} else {
				for range jobs {
					one()
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	if rate > 0 {
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if !due.Before(stop) {
				break
			}
			if w := time.Until(due); w > 0 {
				time.Sleep(w)
			}
			select {
			case jobs <- struct{}{}:
			default:
				res.miss++
			}
		}
	}
	close(jobs)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.sent, res.ok, res.throttled, res.other = sent.Load(), ok.Load(), throttled.Load(), other.Load()
	sort.Slice(res.lat, func(i, j int) bool { return res.lat[i] < res.lat[j] })
	return res
}

// throttleShape reports what is wrong with a 429 answer, or "" for Key Vault's: Retry-After
// in whole seconds (≥ 1) and error code Throttled.
func throttleShape(h http.Header, body []byte) string {
	var secs int
	if _, err := fmt.Sscanf(h.Get("Retry-After"), "%d", &secs); err != nil || secs < 1 {
		return fmt.Sprintf("Retry-After %q", h.Get("Retry-After"))
	}
	var e struct{ Error struct{ Code string } }
	if json.Unmarshal(body, &e) != nil || e.Error.Code != "Throttled" {
		return fmt.Sprintf("body %.200s", body)
	}
	return ""
}

// raw sends one request with the token and returns the whole answer, whatever its status.
func (k *kv) raw(method, path string, body any) (int, http.Header, []byte, error) {
	resp, err := k.hc.Do(k.request(method, path, body))
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// secondTenant makes tenant B through the management API with the operator token of the dev
// server: the tenant, a vault "quietb", the role Key Vault Secrets Officer on it for B's
// administrator, and the secret bench-secret there. It returns B's vault with B's token and
// its own client (its own connections).
func (t *target) secondTenant(http1 bool) (*kv, error) {
	op, err := os.ReadFile(filepath.Join(t.dir, "dev-operator-token.UNSAFE"))
	if err != nil {
		return nil, err
	}
	hc, err := client(t.creds.CAFile, http1)
	if err != nil {
		return nil, err
	}
	base := "https://localhost:" + t.port
	mgmt := func(method, path, token string, body any, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 && resp.StatusCode != 201 {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, rb)
		}
		return json.Unmarshal(rb, out)
	}
	var created struct {
		Tenant        struct{ ID string }
		Administrator struct{ ObjectID, ClientID, ClientSecret string }
	}
	if err := mgmt("POST", "/v1/tenants", strings.TrimSpace(string(op)), map[string]any{"name": "Noisy neighbour B"}, &created); err != nil {
		return nil, err
	}
	tid, admin := created.Tenant.ID, created.Administrator
	tok, err := getToken(hc, creds{TenantID: tid, ClientID: admin.ClientID, ClientSecret: admin.ClientSecret, AuthorityHost: t.creds.AuthorityHost}, base)
	if err != nil {
		return nil, err
	}
	var vault struct{ URL string }
	if err := mgmt("PUT", "/v1/tenants/"+tid+"/vaults/quietb", tok, map[string]any{}, &vault); err != nil {
		return nil, err
	}
	var id [16]byte
	rand.Read(id[:])
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	var asg map[string]any
	if err := mgmt("PUT", "/v1/tenants/"+tid+"/roleAssignments/"+uuid, tok, map[string]any{
		"principalId": admin.ObjectID, "roleDefinitionId": keyVaultSecretsOfficer, "scope": "/tenants/" + tid + "/vaults/quietb",
	}, &asg); err != nil {
		return nil, err
	}
	k := &kv{hc: hc, base: strings.TrimSuffix(vault.URL, "/"), token: tok}
	if _, err := k.call("PUT", "/secrets/bench-secret", map[string]any{"value": strings.Repeat("s", 64)}); err != nil {
		return nil, err
	}
	return k, nil
}
