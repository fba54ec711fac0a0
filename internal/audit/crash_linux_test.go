package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/crashtest"
	"github.com/coffer-kms/coffer/internal/testfs"
)

// TestAuditCrashPoints checks that a power loss at any point of a workload of durable
// appends leaves an audit log that Verify accepts (no edit reported; a torn or missing tail
// after the last synced record is reported as torn, TornBytes, not as tampering), that holds
// every acknowledged record, intact and in order, and that Open (as the server opens it at
// start, VerifyFromCheckpoint) continues: one more record appended and closed verifies too.
//
// The workload (TestAuditCrashWorkload, this test binary run again) runs under strace:
// auditCrashWorkers goroutines append auditCrashRecords() records each with Append, the
// durable append, and write "ACK <worker>-<n>" in one write(2) when it returns; the log
// writes a checkpoint every 64 records and on Close. Every crash state of audit.log the
// trace allows is rebuilt (internal/crashtest): after each traced event, the file as of its
// last fdatasync/fsync plus any subset of the later writes, page by page, some pages torn.
//
// COFFER_AUDIT_CRASH_STATES sets how many crash states to generate (default 1000, about 5 s
// here); COFFER_AUDIT_CRASH_SEED fixes the seed of the random subsets.
func TestAuditCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload under strace and checks crash states")
	}
	strace := testfs.Strace(t, "the audit log under power loss at each crash point")
	target := crashtest.EnvInt(t, "COFFER_AUDIT_CRASH_STATES", 1000)
	seed := crashtest.Seed(t, "COFFER_AUDIT_CRASH_SEED")

	start := time.Now()
	base, evs := runAuditCrashWorkload(t, strace)
	t.Logf("workload: %s in %s", crashtest.Describe(evs), time.Since(start).Round(time.Millisecond))

	t.Run("model-without-fsync", func(t *testing.T) {
		// The checker must see that a record counted as durable without its sync is lost:
		// replay the trace as if no sync had happened and crash right after each of the
		// first acknowledgements with every unsynced write lost.
		bad, of := crashtest.WithoutSyncs(base, evs, 10, seed, func(evs []crashtest.Event) func(crashtest.State) bool {
			chk := newAuditCrashChecker(t, evs)
			return func(st crashtest.State) bool {
				err := chk.check(st)
				return err != nil && strings.Contains(err.Error(), "records acknowledged")
			}
		})
		if bad != of {
			t.Errorf("replaying the trace without its syncs, %d of %d crash states lost an acknowledged record; want every one: the checker cannot see lost records", bad, of)
		}
		t.Logf("without the syncs: %d of %d crash states after an acknowledgement lose an acknowledged record (as they must)", bad, of)
	})

	chk := newAuditCrashChecker(t, evs)
	torn := 0
	fig := crashtest.CheckStates(base, evs, target, seed, func(p int) any { return chk.acked[p] },
		func(st crashtest.State) error {
			err := chk.check(st)
			if err == nil && chk.lastTorn > 0 {
				torn++
			}
			return err
		},
		func(st crashtest.State, err error, n int) bool {
			t.Errorf("crash point %d of %d (seed %d, state %s, %d acknowledgements before it): %v", st.Point, len(evs), seed, st.Variant, st.Acks, err)
			return n < 10
		})
	t.Logf("%s (%d of them with a torn tail), %s in all", fig, torn, time.Since(start).Round(time.Millisecond))
	if torn == 0 {
		t.Error("no crash state had a torn tail: the states do not exercise torn-line recovery")
	}
}

// The workload: auditCrashWorkers goroutines each append auditCrashRecords() events, one
// after another, so the events of a worker in the log after its first n appends are known.
const (
	auditCrashWorkers = 3
	envAuditCrashN    = "COFFER_AUDIT_CRASH_RECORDS" // records per worker; the workload inherits it
	envAuditCrashDir  = "COFFER_AUDIT_CRASH_DIR"     // set in the workload process: its directory
	auditCrashFile    = "audit.log"
)

func auditCrashRecords(t testing.TB) int { return crashtest.EnvInt(t, envAuditCrashN, 100) }

// auditCrashOptions are the options of the workload and of the checker: fixed keys, a
// checkpoint every 64 records, and VerifyFromCheckpoint as the server opens its log.
func auditCrashOptions() Options {
	seed := sha256.Sum256([]byte("coffer audit crash test"))
	opts := testOptions(ed25519.NewKeyFromSeed(seed[:]), "crash", 64)
	opts.VerifyFromCheckpoint = true
	return opts
}

// auditCrashEvent is worker w's event n.
func auditCrashEvent(w, n int) Event {
	ev := testEvent(w*1000 + n)
	ev.CorrelationID = fmt.Sprintf("%d-%d", w, n)
	ev.ObjectID = fmt.Sprintf("https://vault1.localhost/keys/w%d/%s", w, strings.Repeat("x", n%97))
	return ev
}

// TestAuditCrashWorkload is the workload of TestAuditCrashPoints, run by it in a process of
// its own under strace; on its own it skips.
func TestAuditCrashWorkload(t *testing.T) {
	dir := os.Getenv(envAuditCrashDir)
	if dir == "" {
		t.Skip("the workload of TestAuditCrashPoints, which runs it under strace")
	}
	l, err := Open(filepath.Join(dir, auditCrashFile), auditCrashOptions())
	if err != nil {
		t.Fatal(err)
	}
	n := auditCrashRecords(t)
	var wg sync.WaitGroup
	for w := range auditCrashWorkers {
		wg.Go(func() {
			for i := range n {
				if err := l.Append(auditCrashEvent(w, i)); err != nil {
					t.Errorf("worker %d record %d: %v", w, i, err)
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
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// runAuditCrashWorkload writes a log of a few records (closed: the workload reopens it),
// runs TestAuditCrashWorkload on it under strace and returns the file it started from and
// the parsed trace.
func runAuditCrashWorkload(t *testing.T, strace string) (crashtest.Image, []crashtest.Event) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, auditCrashFile)
	writeLog(t, path, auditCrashOptions(), 3)
	base, err := os.ReadFile(path) // Close synced it
	if err != nil {
		t.Fatal(err)
	}
	evs := crashtest.Trace(t, strace, dir, auditCrashFile, "^TestAuditCrashWorkload$",
		auditCrashWorkers*auditCrashRecords(t), envAuditCrashDir+"="+dir)
	if crashtest.Count(evs, crashtest.Sync) == 0 {
		t.Fatal("the trace holds no fdatasync or fsync of the audit log")
	}
	return crashtest.NewImage(base), evs
}

// auditCrashChecker checks the crash states of TestAuditCrashPoints.
type auditCrashChecker struct {
	t        *testing.T
	dir      string
	opts     Options
	n        int     // records per worker
	acked    [][]int // [point][worker]: acknowledged records before the point
	lastTorn int64   // TornBytes of the last state checked
}

func newAuditCrashChecker(t *testing.T, evs []crashtest.Event) *auditCrashChecker {
	t.Helper()
	return &auditCrashChecker{t: t, dir: crashtest.StateDir(t), opts: auditCrashOptions(), n: auditCrashRecords(t),
		acked: crashtest.Acked(t, evs, auditCrashWorkers)}
}

// check writes st's file and checks it: Verify passes (a torn tail allowed, except in the
// synced state itself), the acknowledged records are there (checkRecords), and Open
// continues the log: one more record, Close, and the whole file verifies again, untorn,
// with its records before the crash unchanged.
func (c *auditCrashChecker) check(st crashtest.State) error {
	path := filepath.Join(c.dir, auditCrashFile)
	defer os.Remove(path)
	c.lastTorn = 0
	if err := st.Image.WriteFile(path); err != nil {
		return fmt.Errorf("write the state (not a violation): %w", err)
	}
	rep, err := verifyCrashFile(path, c.opts)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	c.lastTorn = rep.TornBytes
	if st.Variant == "lost" && rep.TornBytes != 0 {
		return fmt.Errorf("the synced state has a torn tail of %d bytes: a sync covered part of a record", rep.TornBytes)
	}
	good, err := c.checkRecords(path, rep, c.acked[st.Point])
	if err != nil {
		return err
	}
	l, err := Open(path, c.opts)
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	extra := auditCrashEvent(auditCrashWorkers, 0)
	if err := l.Append(extra); err != nil {
		l.Close()
		return fmt.Errorf("append after reopening: %w", err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("close after reopening: %w", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(after, good) {
		return errors.New("reopening changed the records the crash left")
	}
	// The records before are those verified above: verify what follows them as their
	// continuation (Verify of the whole file, at a cost that grows with the log).
	rep2, err := Verify(bytes.NewReader(after[len(good):]), c.opts.Signer.Public(),
		VerifyOptions{LogID: c.opts.LogID, Continue: &Head{LogID: rep.LogID, Seq: rep.LastSeq, Hash: rep.HeadHash}})
	if err != nil {
		return fmt.Errorf("verify after reopening and appending: %w", err)
	}
	if rep2.TornBytes != 0 || rep2.LastSeq <= rep.LastSeq {
		return fmt.Errorf("after reopening and appending: %+v; want no torn bytes and records after seq %d", rep2, rep.LastSeq)
	}
	for _, line := range bytes.Split(after[len(good):], []byte("\n")) {
		var rec Record
		if json.Unmarshal(line, &rec) == nil && rec.Kind == KindEvent &&
			bytes.Equal(appendEventJSON(nil, &rec.Event), appendEventJSON(nil, &extra)) {
			return nil
		}
	}
	return errors.New("the record appended after reopening is not in the log")
}

// verifyCrashFile verifies the log at path with the checkpoint key.
func verifyCrashFile(path string, opts Options) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	return Verify(f, opts.Signer.Public(), VerifyOptions{LogID: opts.LogID})
}

// checkRecords reads the records Verify accepted (rep.Records lines) and checks that each
// worker's events are its first k, in order and intact, with k its acknowledged records or
// one more (the append it had in flight). It returns the bytes of those records.
func (c *auditCrashChecker) checkRecords(path string, rep Report, acked []int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var have [auditCrashWorkers]int
	end := 0
	for range rep.Records {
		nl := bytes.IndexByte(b[end:], '\n')
		if nl < 0 {
			return nil, fmt.Errorf("Verify counted %d records but the file has fewer lines", rep.Records)
		}
		line := b[end : end+nl]
		end += nl + 1
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("a record Verify accepted does not parse: %w", err)
		}
		if rec.Kind != KindEvent || strings.HasPrefix(rec.CorrelationID, "req-") { // the base log's own
			continue
		}
		var w, n int
		if _, err := fmt.Sscanf(rec.CorrelationID, "%d-%d", &w, &n); err != nil || w < 0 || w >= auditCrashWorkers {
			return nil, fmt.Errorf("seq %d: unexpected correlation id %q", rec.Seq, rec.CorrelationID)
		}
		if n != have[w] {
			return nil, fmt.Errorf("seq %d: worker %d's record %d follows its record %d: out of order", rec.Seq, w, n, have[w]-1)
		}
		want := auditCrashEvent(w, n)
		if !bytes.Equal(appendEventJSON(nil, &rec.Event), appendEventJSON(nil, &want)) {
			return nil, fmt.Errorf("seq %d: worker %d's record %d is not the event appended", rec.Seq, w, n)
		}
		have[w]++
	}
	var errs []error
	for w := range auditCrashWorkers {
		if have[w] < acked[w] || have[w] > min(acked[w]+1, c.n) {
			errs = append(errs, fmt.Errorf("worker %d: %d records acknowledged, but the log holds its first %d (want %d, or %d with the one in flight)", w, acked[w], have[w], acked[w], acked[w]+1))
		}
	}
	return b[:end], errors.Join(errs...)
}
