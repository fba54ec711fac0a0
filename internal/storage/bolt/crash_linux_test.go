package bolt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/coffer-kms/coffer/internal/barrier"
	"github.com/coffer-kms/coffer/internal/crashtest"
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
// strace, and every crash state the trace allows is rebuilt and opened (internal/crashtest):
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
	target := crashtest.EnvInt(t, "COFFER_CRASH_STATES", 5000)
	seed := crashtest.Seed(t, "COFFER_CRASH_SEED")
	noSync := os.Getenv("COFFER_CRASH_NOSYNC") == "1"

	start := time.Now()
	w := runCrashWorkload(t, strace, noSync)
	t.Logf("workload: %s in %s", crashtest.Describe(w.events), time.Since(start).Round(time.Millisecond))

	t.Run("model-without-fsync", func(t *testing.T) {
		// The checker must see that a write counted as durable without its sync is lost:
		// replay the same trace as if no sync had happened, and crash right after each of
		// the first acknowledgements with every unsynced write lost.
		bad, of := crashtest.WithoutSyncs(w.base, w.events, 10, seed, func(evs []crashtest.Event) func(crashtest.State) bool {
			chk := newCrashChecker(t, w, evs)
			return func(st crashtest.State) bool {
				err := chk.check(st)
				return err != nil && strings.Contains(err.Error(), "transactions acknowledged")
			}
		})
		if bad == 0 {
			t.Errorf("replaying the trace without its syncs, 0 of %d crash states lost an acknowledged transaction; want every one: the checker cannot see lost writes", of)
		}
		t.Logf("without the syncs: %d of %d crash states after an acknowledgement violate (as they must)", bad, of)
	})

	chk := newCrashChecker(t, w, w.events)
	fig := crashtest.CheckStates(w.base, w.events, target, seed, func(p int) any { return chk.acked[p] }, chk.check,
		func(st crashtest.State, err error, n int) bool {
			if n <= 5 || !noSync {
				t.Errorf("crash point %d of %d (seed %d, state %s, %d acknowledgements before it): %v", st.Point, len(w.events), seed, st.Variant, st.Acks, err)
			}
			return n < 20 // enough to see what is wrong (with noSync: that it is seen)
		})
	violations, checked := fig.Violations, fig.Checked
	t.Logf("%s, %s in all", fig, time.Since(start).Round(time.Millisecond))
	if noSync {
		if violations == 0 {
			t.Fatalf("COFFER_CRASH_NOSYNC=1: a bbolt that never syncs gave 0 violations in %d states: the checker cannot see lost writes", checked)
		}
		t.Fatalf("COFFER_CRASH_NOSYNC=1 (negative check): %d of %d crash states violate, as they must with a bbolt that never syncs", violations, checked)
	}
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
func crashTxns(t *testing.T) int { return crashtest.EnvInt(t, envCrashTxns, 75) }

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
	base   crashtest.Image // the store as the workload found it, synced
	events []crashtest.Event
	share  string
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
	env := []string{envCrashDir + "=" + dir}
	if noSync {
		env = append(env, envCrashNS+"=1")
	}
	evs := crashtest.Trace(t, strace, dir, "coffer.db", "^TestCrashWorkload$", crashWorkers*crashTxns(t), env...)
	w := &crashWorkload{base: crashtest.NewImage(base), events: evs, share: res.Shares[0]}
	if !noSync && crashtest.Count(w.events, crashtest.Sync) == 0 {
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
	acked  [][]int // [point][worker]: acknowledged transactions before the point
}

func newCrashChecker(t *testing.T, w *crashWorkload, evs []crashtest.Event) *crashChecker {
	t.Helper()
	return &crashChecker{t: t, dir: crashtest.StateDir(t), share: w.share, txns: crashTxns(t), expect: crashExpect(crashTxns(t)),
		acked: crashtest.Acked(t, evs, crashWorkers)}
}

// crashCheckTimeout bounds the check of one state: a file whose pages point in a cycle can
// keep bbolt walking it for ever.
const crashCheckTimeout = 10 * time.Second

// check checks st (checkState) in a file of its own and reports a panic, or a check that
// does not finish in crashCheckTimeout, as a violation. A check that timed out goes on
// running (nothing can stop it); after three the test stops.
func (c *crashChecker) check(st crashtest.State) error {
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
			c.t.Fatalf("crash point %d (state %s): a third check did not finish in %s; stopping", st.Point, st.Variant, crashCheckTimeout)
		}
		return fmt.Errorf("the check did not finish in %s (bbolt walking a cycle of pages?)", crashCheckTimeout)
	}
}

// checkState writes st's file and checks it: bbolt opens it and its consistency check
// passes; the barrier unseals it (which verifies the store state) and Verify passes; each
// worker's keys hold exactly the state after its acknowledged transactions, or after one
// more (the one it had in flight, wholly applied).
func (c *crashChecker) checkState(path string, st crashtest.State) error {
	if err := st.Image.WriteFile(path); err != nil {
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
		n := c.acked[st.Point][wk]
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
