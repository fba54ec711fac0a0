package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestCrashPoints (SECURITY-NOTES D2/F9, the "strict-FS" half of the §4 durability figure)
// checks that a power loss at any point of a workload leaves a store that opens, passes
// bbolt's consistency check and the barrier's store verification, holds every acknowledged
// transaction with its exact values, and holds every other transaction wholly or not at all.
//
// kill -9 never loses the page cache; a power loss loses every write not yet synced. bbolt
// writes with pwrite64 and reads through mmap, so no in-memory file system can stand in for
// the disk. Instead the workload (TestCrashWorkload, this test binary run again) runs under
// strace, and every crash state the trace allows is rebuilt and opened (crashtrace_linux_test.go):
// after each traced event, the file as of its last fdatasync/fsync plus any subset of the
// later writes, page by page, some pages torn.
//
// COFFER_CRASH_STATES sets how many crash states to check (default 1500, about 20 s here);
// COFFER_CRASH_SEED fixes the seed of the random subsets (printed on every run);
// COFFER_CRASH_NOSYNC=1 runs the workload on a bbolt that never syncs, and then the test
// passes only if the checker finds violations (the negative check, run by hand).
func TestCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload under strace and checks crash states")
	}
	strace := testfs.Strace(t, "power loss at each crash point (SECURITY-NOTES D2/F9)")
	target := envInt(t, "COFFER_CRASH_STATES", 5000)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COFFER_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("COFFER_CRASH_SEED=%q: %v", s, err)
		}
	}
	noSync := os.Getenv("COFFER_CRASH_NOSYNC") == "1"
	t.Logf("seed %d (COFFER_CRASH_SEED=%d reproduces the random subsets of this trace)", seed, seed)

	start := time.Now()
	w := runCrashWorkload(t, strace, noSync)
	t.Logf("workload: %d traced events (%d writes, %d syncs, %d truncates, %d acknowledgements) in %s",
		len(w.events), w.count(evWrite), w.count(evSync), w.count(evTruncate), w.count(evAck), time.Since(start).Round(time.Millisecond))

	t.Run("model-without-fsync", func(t *testing.T) {
		// The checker must see that a write counted as durable without its sync is lost:
		// replay the same trace as if no sync had happened, and crash right after each of
		// the first acknowledgements with every unsynced write lost.
		var evs []event
		for _, ev := range w.events {
			if ev.kind != evSync {
				evs = append(evs, ev)
			}
		}
		ackPoints := map[int]bool{}
		for i, ev := range evs {
			if ev.kind == evAck && len(ackPoints) < 10 {
				ackPoints[i+1] = true
			}
		}
		chk := newCrashChecker(t, w, evs)
		bad := 0
		crashStates(w.base, evs, 0, seed, func(p int) bool { return ackPoints[p] }, func(st crashState) bool {
			if err := chk.check(st); err != nil && strings.Contains(err.Error(), "transactions acknowledged") {
				bad++
			}
			return true
		})
		if bad == 0 {
			t.Errorf("replaying the trace without its syncs, 0 of %d crash states lost an acknowledged transaction; want every one: the checker cannot see lost writes", len(ackPoints))
		}
		t.Logf("without the syncs: %d of %d crash states after an acknowledgement violate (as they must)", bad, len(ackPoints))
	})

	// Choose the random states per point, and which points, so that about target states are
	// generated: every point when target allows it, else an even spread of points.
	points, withPending := w.pointCounts()
	random := 3
	for withPending > 0 && points+withPending*(1+random) < target {
		random++
	}
	stride := max(1, (points+withPending*(1+random))/target)
	offset := int(seed % uint64(stride))
	keep := func(p int) bool { return p%stride == offset }
	if stride == 1 {
		keep = nil
	}

	chk := newCrashChecker(t, w, w.events)
	seen := map[[sha256.Size]byte]bool{}
	generated, checked, violations := 0, 0, 0
	var keptPoints int
	lastPoint := -1
	crashStates(w.base, w.events, random, seed, keep, func(st crashState) bool {
		generated++
		if st.point != lastPoint {
			keptPoints++
			lastPoint = st.point
		}
		h := sha256.New()
		h.Write(st.image.data)
		fmt.Fprint(h, st.image.size, chk.acked[st.point])
		var sum [sha256.Size]byte
		h.Sum(sum[:0])
		if seen[sum] {
			return true // the same file and the same acknowledgements were checked already
		}
		seen[sum] = true
		checked++
		if err := chk.check(st); err != nil {
			violations++
			if violations <= 5 || !noSync {
				t.Errorf("crash point %d of %d (seed %d, state %s, %d acknowledgements before it): %v", st.point, len(w.events), seed, st.variant, st.acks, err)
			}
			if violations >= 20 { // enough to see what is wrong (with noSync: that it is seen)
				return false
			}
		}
		return true
	})
	t.Logf("%d crash points of %d (every %d), %d random states each where writes were unsynced: %d states generated, %d distinct checked, %d invariant violations, %s in all",
		keptPoints, points, stride, random, generated, checked, violations, time.Since(start).Round(time.Millisecond))
	if noSync {
		if violations == 0 {
			t.Fatalf("COFFER_CRASH_NOSYNC=1: a bbolt that never syncs gave 0 violations in %d states: the checker cannot see lost writes", checked)
		}
		t.Fatalf("COFFER_CRASH_NOSYNC=1 (negative check): %d of %d crash states violate, as they must with a bbolt that never syncs", violations, checked)
	}
}

// envInt returns the positive integer in the environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// The workload: crashWorkers goroutines each run crashTxns() transactions on their own
// crashKeys keys, one after another, so the state of a worker's keys after its first n
// transactions is known (crashExpect) whatever the interleaving with other workers.
const (
	crashWorkers = 4
	crashKeys    = 6
	envCrashTxns = "COFFER_CRASH_TXNS" // transactions per worker; the workload process inherits it
	envCrashDir  = "COFFER_CRASH_DIR"  // set in the workload process: its data directory
	envCrashNS   = "COFFER_CRASH_NOSYNC_WORKLOAD"
)

// crashTxns returns the number of transactions each worker runs: $COFFER_CRASH_TXNS, or 75.
func crashTxns(t *testing.T) int { return envInt(t, envCrashTxns, 75) }

// crashOp is one write of a planned transaction; a nil value deletes the key.
type crashOp struct {
	key   string
	value []byte
}

// crashPlan returns the writes of worker w's transaction i: a single put (a new key or an
// overwrite), a delete, or three keys written together (two puts and a put or a delete).
// Values are derived from (key, transaction) so that the checker can recompute them.
func crashPlan(w, i int) []crashOp {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(i)))
	put := func(j int) crashOp {
		k := fmt.Sprintf("w%d/k%d", w, j)
		unit := fmt.Sprintf("%s@%d;", k, i)
		return crashOp{key: k, value: []byte(strings.Repeat(unit, 2+rng.IntN(40)))}
	}
	del := func(j int) crashOp { return crashOp{key: fmt.Sprintf("w%d/k%d", w, j)} }
	j := rng.IntN(crashKeys)
	switch r := rng.IntN(10); {
	case r < 4:
		return []crashOp{put(j)}
	case r < 6:
		return []crashOp{del(j)}
	default:
		last := put((j + 2) % crashKeys)
		if rng.IntN(3) == 0 {
			last = del((j + 2) % crashKeys)
		}
		return []crashOp{put(j), put((j + 1) % crashKeys), last}
	}
}

// crashExpect returns, for each worker, the content of its keys after each number of its
// transactions: [w][n] is the state after transactions 0..n-1.
func crashExpect(txns int) [][]map[string]string {
	out := make([][]map[string]string, crashWorkers)
	for w := range crashWorkers {
		cur := map[string]string{}
		out[w] = append(out[w], cur)
		for i := range txns {
			next := make(map[string]string, len(cur))
			for k, v := range cur {
				next[k] = v
			}
			for _, op := range crashPlan(w, i) {
				if op.value == nil {
					delete(next, op.key)
				} else {
					next[op.key] = string(op.value)
				}
			}
			out[w] = append(out[w], next)
			cur = next
		}
	}
	return out
}

// TestCrashWorkload is the workload of TestCrashPoints, run by it in a process of its own
// under strace; on its own it skips. It opens the store in $COFFER_CRASH_DIR through the
// barrier, unseals it, runs every worker's transactions, and after each transaction returns
// writes "ACK <worker>-<n>" to stdout in one write(2): the acknowledgement point.
func TestCrashWorkload(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("the workload of TestCrashPoints, which runs it under strace")
	}
	share, err := os.ReadFile(filepath.Join(dir, "share"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(filepath.Join(dir, "coffer.db"), Options{noSync: os.Getenv(envCrashNS) == "1"})
	if err != nil {
		t.Fatal(err)
	}
	b := barrier.New(db)
	defer b.Close()
	ctx := context.Background()
	if _, err := barrier.NewManager(db, b, nil, time.Now).Unseal(ctx, string(share)); err != nil {
		t.Fatal(err)
	}
	txns := crashTxns(t)
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			for i := range txns {
				err := b.Txn(ctx, func(tx storage.Tx) error {
					for _, op := range crashPlan(w, i) {
						var err error
						if op.value == nil {
							err = tx.Delete(ctx, op.key)
						} else {
							err = tx.Put(ctx, op.key, op.value)
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("worker %d transaction %d: %v", w, i, err)
					return
				}
				if _, err := os.Stdout.Write([]byte(fmt.Sprintf("ACK %d-%d\n", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// crashWorkload is a traced run of the workload.
type crashWorkload struct {
	base   fileImage // the store as the workload found it, synced
	events []event
	share  string
}

func (w *crashWorkload) count(k evKind) int {
	n := 0
	for _, ev := range w.events {
		if ev.kind == k {
			n++
		}
	}
	return n
}

// pointCounts returns the number of crash points and how many of them have unsynced writes.
func (w *crashWorkload) pointCounts() (points, withPending int) {
	pending := false
	for p := 0; p <= len(w.events); p++ {
		if p > 0 {
			switch w.events[p-1].kind {
			case evSync:
				pending = false
			case evWrite, evTruncate:
				pending = true
			}
		}
		if pending {
			withPending++
		}
	}
	return len(w.events) + 1, withPending
}

// runCrashWorkload initializes a store, runs TestCrashWorkload on it under strace and
// returns the parsed trace.
func runCrashWorkload(t *testing.T, strace string, noSync bool) *crashWorkload {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("COFFER_CRASH_KEEP"); keep != "" {
		dir = keep // the trace, the initial store and the share stay there
	}
	path := filepath.Join(dir, "coffer.db")
	db := mustOpen(t, path)
	res, err := barrier.NewManager(db, barrier.New(db), nil, time.Now).Init(context.Background(), barrier.InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(path) // every commit of Init was synced, and the file's growth
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "share"), []byte(res.Shares[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tracePath := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-yy", "-xx", "-s", strconv.Itoa(4<<20),
		"-e", "trace=pwrite64,pwritev,pwritev2,write,writev,fdatasync,fsync,ftruncate,fallocate,sync_file_range,copy_file_range",
		"-o", tracePath, exe, "-test.run=^TestCrashWorkload$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir)
	if noSync {
		cmd.Env = append(cmd.Env, envCrashNS+"=1")
	}
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(stdout.Name())
		t.Fatalf("workload under strace: %v\nstdout: %s\nstderr: %s", err, out, stderr.Bytes())
	}
	f, err := os.Open(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := parseTrace(f, "coffer.db")
	if err != nil {
		t.Fatalf("parse %s: %v", tracePath, err)
	}
	w := &crashWorkload{base: newImage(base), events: evs, share: res.Shares[0]}
	if n, txns := w.count(evAck), crashTxns(t); n != crashWorkers*txns {
		t.Fatalf("the trace holds %d acknowledgements; want %d (one per transaction)", n, crashWorkers*txns)
	}
	if !noSync && w.count(evSync) == 0 {
		t.Fatal("the trace holds no fdatasync or fsync of coffer.db")
	}
	return w
}

// crashChecker opens crash states and checks the invariants of TestCrashPoints.
type crashChecker struct {
	t      *testing.T
	dir    string // where each state's file is written
	n      int    // states checked
	hung   int    // checks that did not finish
	share  string
	txns   int // per worker
	expect [][]map[string]string
	acked  [][crashWorkers]int // [point][worker]: acknowledged transactions before the point
}

func newCrashChecker(t *testing.T, w *crashWorkload, evs []event) *crashChecker {
	t.Helper()
	dir := t.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "coffer-crash-"); err == nil { // no disk fsyncs
		dir = shm
		t.Cleanup(func() { _ = os.RemoveAll(shm) })
	}
	c := &crashChecker{t: t, dir: dir, share: w.share, txns: crashTxns(t), expect: crashExpect(crashTxns(t))}
	var cur [crashWorkers]int
	c.acked = append(c.acked, cur)
	for _, ev := range evs {
		if ev.kind == evAck {
			var wk, n int
			if _, err := fmt.Sscanf(ev.ack, "%d-%d", &wk, &n); err != nil || wk < 0 || wk >= crashWorkers || n != cur[wk] {
				t.Fatalf("acknowledgement %q out of order (worker acknowledged %v so far)", ev.ack, cur)
			}
			cur[wk]++
		}
		c.acked = append(c.acked, cur)
	}
	return c
}

// crashCheckTimeout bounds the check of one state: a file whose pages point in a cycle can
// keep bbolt walking it for ever.
const crashCheckTimeout = 10 * time.Second

// check checks st (checkState) in a file of its own and reports a panic, or a check that
// does not finish in crashCheckTimeout, as a violation. A check that timed out goes on
// running (nothing can stop it); after three the test stops.
func (c *crashChecker) check(st crashState) error {
	c.n++
	path := filepath.Join(c.dir, fmt.Sprintf("state-%d.db", c.n))
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- c.checkState(path, st)
	}()
	select {
	case err := <-done:
		_ = os.Remove(path)
		return err
	case <-time.After(crashCheckTimeout):
		if c.hung++; c.hung >= 3 {
			c.t.Fatalf("crash point %d (state %s): a third check did not finish in %s; stopping", st.point, st.variant, crashCheckTimeout)
		}
		return fmt.Errorf("the check did not finish in %s (bbolt walking a cycle of pages?)", crashCheckTimeout)
	}
}

// checkState writes st's file and checks it: bbolt opens it and its consistency check
// passes; the barrier unseals it (which verifies the store state) and Verify passes; each
// worker's keys hold exactly the state after its acknowledged transactions, or after one
// more (the one it had in flight, wholly applied).
func (c *crashChecker) checkState(path string, st crashState) error {
	if err := os.WriteFile(path, st.image.data, 0o600); err != nil {
		return fmt.Errorf("write the state (not a violation): %w", err)
	}
	if err := os.Truncate(path, st.image.size); err != nil {
		return fmt.Errorf("write the state (not a violation): %w", err)
	}
	raw, err := bbolt.Open(path, fileMode, &bbolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
	if err != nil {
		return fmt.Errorf("bbolt open: %w", err)
	}
	err = raw.View(checkTx)
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bbolt check: %w", err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	b := barrier.New(db)
	defer b.Close()
	ctx := context.Background()
	if _, err := barrier.NewManager(db, b, nil, time.Now).Unseal(ctx, c.share); err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if _, err := b.Verify(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	page, err := b.List(ctx, "w", storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	have := make([]map[string]string, crashWorkers)
	for i := range have {
		have[i] = map[string]string{}
	}
	for _, k := range page.Keys {
		var wk int
		if _, err := fmt.Sscanf(k, "w%d/", &wk); err != nil || wk < 0 || wk >= crashWorkers {
			return fmt.Errorf("unexpected key %q", k)
		}
		v, err := b.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("get %s: %w", k, err)
		}
		have[wk][k] = string(v)
	}
	if page.Next != "" {
		return errors.New("more keys than the workload writes")
	}
	var errs []error
	for wk := range crashWorkers {
		n := c.acked[st.point][wk]
		if equalState(have[wk], c.expect[wk][n]) {
			continue
		}
		if n < c.txns && equalState(have[wk], c.expect[wk][n+1]) {
			continue
		}
		errs = append(errs, fmt.Errorf("worker %d: %d transactions acknowledged, but its keys hold %s; want %s (or, with transaction %d in flight wholly applied, %s)",
			wk, n, describeState(have[wk]), describeState(c.expect[wk][n]), n, describeState(c.expect[wk][min(n+1, c.txns)])))
	}
	return errors.Join(errs...)
}

func equalState(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// describeState names each key with the transaction its value came from ("w0/k1@12").
func describeState(m map[string]string) string {
	var parts []string
	for _, v := range m {
		parts = append(parts, strings.SplitN(v, ";", 2)[0])
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, " ") + "}"
}
