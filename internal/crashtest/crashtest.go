// Package crashtest turns an strace of a workload into the power-loss crash states of one
// file (the ALICE / CrashMonkey approach): ParseTrace reads the writes, truncates and syncs
// of the file and the workload's "ACK <id>" lines to stdout, in trace order; States yields,
// after every traced event, the contents the file may have after a power loss there (the
// synced state plus any subset of the later writes, page by page, some pages torn); Plan
// spreads a budget of states over the crash points. The store (bbolt, which writes with
// pwrite64 and reads through mmap) and the audit log (pwrite64 into zero padding, then
// fdatasync) are checked with it: no in-memory file system can stand in for the disk.
//
// Only tests import this package (internal/archtest checks that no other package does).
package crashtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Kind is what one traced Event did.
type Kind uint8

const (
	Write    Kind = iota // bytes written to the traced file at an offset
	Truncate             // the traced file's size set
	Sync                 // fdatasync or fsync of the traced file completed
	Ack                  // the workload acknowledged something on stdout
)

// Event is one traced syscall that matters to the traced file or to the acknowledgements.
type Event struct {
	Kind Kind
	Off  int64  // Write: file offset; Truncate: new length
	Data []byte // Write
	Ack  string // Ack: the id after "ACK "
}

// traceLine is one strace -f -yy -xx line: pid, syscall name, the first argument's fd and
// the path strace resolved it to, the rest of the line.
var traceLine = regexp.MustCompile(`^(\d+) +([a-z0-9_]+)\((\d+)<([^>]*)>(.*)$`)

// resumedLine is strace's completion of a call another thread's call interrupted.
var resumedLine = regexp.MustCompile(`^(\d+) +<\.\.\. ([a-z0-9_]+) resumed>.*= (-?\d+)`)

// retval is a completed call's return value.
var retval = regexp.MustCompile(`\) += (-?\d+)`)

// hexString is the first string argument as strace -xx prints it.
var hexString = regexp.MustCompile(`"((?:\\x[0-9a-f]{2})*)"`)

// ParseTrace reads strace output and returns, in trace order, the events on the file whose
// path ends in fileName and the "ACK <id>" lines written to fd 1. strace -f prints each call
// when it completes, or splits it (unfinished … resumed) when another thread's call completes
// meanwhile: a write or an acknowledgement is placed where it started (its bytes may reach
// the file, or the reader, from then on: the earliest is the strictest place for an
// acknowledgement), a sync where it completed (only then is it a promise). Any other call
// that changes the traced file (pwritev, fallocate, write, msync, sync_file_range) fails
// the parse: the crash model would not cover it.
func ParseTrace(r io.Reader, fileName string) ([]Event, error) {
	var evs []Event
	type open struct {
		idx  int    // index in evs of a write placed at its start; -1 for a sync
		name string // the syscall
	}
	unfinished := map[string]open{} // pid → its call that has not completed
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if m := resumedLine.FindStringSubmatch(l); m != nil {
			u, ok := unfinished[m[1]]
			if !ok || u.name != m[2] {
				continue // a call on another file
			}
			delete(unfinished, m[1])
			ret, _ := strconv.ParseInt(m[3], 10, 64)
			if err := complete(&evs, u.idx, u.name, ret); err != nil {
				return nil, fmt.Errorf("trace line %d: %w", n, err)
			}
			continue
		}
		m := traceLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		pid, name, fd, rest := m[1], m[2], m[3], m[5]
		path, err := hex.DecodeString(strings.ReplaceAll(m[4], `\x`, "")) // -xx prints paths in hex too
		if err != nil {
			return nil, fmt.Errorf("trace line %d: path: %w", n, err)
		}
		isDB := strings.HasSuffix(string(path), "/"+fileName)
		isAck := fd == "1" && name == "write"
		if !isDB && !isAck {
			continue
		}
		done := !strings.HasSuffix(rest, "<unfinished ...>")
		ret := int64(0)
		if done {
			rm := retval.FindStringSubmatch(rest)
			if rm == nil {
				return nil, fmt.Errorf("trace line %d: no return value: %.200s", n, l)
			}
			ret, _ = strconv.ParseInt(rm[1], 10, 64)
		}
		var ev Event
		switch {
		case isAck:
			data, err := hexArg(rest)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: %w", n, err)
			}
			id, ok := strings.CutPrefix(strings.TrimSuffix(string(data), "\n"), "ACK ")
			if !ok {
				continue // the test binary's own output
			}
			ev = Event{Kind: Ack, Ack: id}
		case name == "pwrite64":
			data, err := hexArg(rest)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: %w", n, err)
			}
			f := strings.Split(rest[strings.LastIndex(rest, `"`)+1:], ",")
			if len(f) < 3 {
				return nil, fmt.Errorf("trace line %d: pwrite64 without offset: %.200s", n, l)
			}
			off, err := strconv.ParseInt(strings.TrimRight(strings.Fields(f[2])[0], ")"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: offset: %w", n, err)
			}
			ev = Event{Kind: Write, Off: off, Data: data}
		case name == "ftruncate":
			f := strings.Fields(strings.TrimPrefix(rest, ","))
			size, err := strconv.ParseInt(strings.TrimRight(f[0], ")"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: ftruncate length: %w", n, err)
			}
			ev = Event{Kind: Truncate, Off: size}
		case name == "fdatasync" || name == "fsync":
			if !done {
				unfinished[pid] = open{idx: -1, name: name}
				continue
			}
			if ret != 0 {
				return nil, fmt.Errorf("trace line %d: %s failed: %.200s", n, name, l)
			}
			evs = append(evs, Event{Kind: Sync})
			continue
		case name == "openat" || name == "close" || name == "flock" || name == "fstat" || name == "pread64":
			continue
		default:
			return nil, fmt.Errorf("trace line %d: %s on the traced file is not in the crash model: %.200s", n, name, l)
		}
		evs = append(evs, ev)
		if done {
			if err := complete(&evs, len(evs)-1, name, ret); err != nil {
				return nil, fmt.Errorf("trace line %d: %w", n, err)
			}
		} else {
			unfinished[pid] = open{idx: len(evs) - 1, name: name}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(unfinished) != 0 {
		return nil, fmt.Errorf("trace ends with %d calls unfinished", len(unfinished))
	}
	return evs, nil
}

// complete applies the return value ret of call name, whose Event (if it has one placed at
// its start) is evs[idx]; a sync is appended here, where it completed.
func complete(evs *[]Event, idx int, name string, ret int64) error {
	if idx < 0 {
		if ret != 0 {
			return fmt.Errorf("%s failed (%d)", name, ret)
		}
		*evs = append(*evs, Event{Kind: Sync})
		return nil
	}
	ev := &(*evs)[idx]
	switch {
	case ret < 0:
		return fmt.Errorf("%s failed (%d)", name, ret)
	case ev.Kind == Write && ret < int64(len(ev.Data)):
		ev.Data = ev.Data[:ret] // a short write: the rest was written by the next call
	case ev.Kind == Write && ret > int64(len(ev.Data)):
		return fmt.Errorf("%s wrote %d bytes but strace showed %d (raise -s)", name, ret, len(ev.Data))
	}
	return nil
}

// hexArg decodes the first string argument in rest, which strace printed with -xx.
func hexArg(rest string) ([]byte, error) {
	m := hexString.FindStringSubmatch(rest)
	if m == nil {
		return nil, fmt.Errorf("no string argument: %.200s", rest)
	}
	if strings.HasPrefix(rest[len(m[0])+strings.Index(rest, m[0]):], "...") {
		return nil, fmt.Errorf("strace truncated a write (raise -s)")
	}
	return hex.DecodeString(strings.ReplaceAll(m[1], `\x`, ""))
}

// Page is the granularity at which a write that was not synced reaches the disk or not.
const Page = 4096

// Image is the content of the traced file: Data, then zeros up to Size. bbolt grows
// the file in large steps that stay sparse, the audit log pads it with zeros; keeping only the written part keeps copying and
// writing a crash state cheap.
type Image struct {
	Data []byte
	Size int64
}

// NewImage returns the image of a file with content b.
func NewImage(b []byte) Image {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return Image{Data: append([]byte(nil), b[:n]...), Size: int64(len(b))}
}

// Clone returns a copy of img that shares no storage with it.
func (img Image) Clone() Image {
	return Image{Data: append([]byte(nil), img.Data...), Size: img.Size}
}

// Apply returns img with ev (a write or a truncate) applied; it may reuse img's storage.
func (img Image) Apply(ev Event) Image {
	switch ev.Kind {
	case Truncate:
		img.Size = ev.Off
		if int64(len(img.Data)) > ev.Off {
			img.Data = img.Data[:ev.Off]
		}
	case Write:
		end := ev.Off + int64(len(ev.Data))
		if end > int64(len(img.Data)) {
			img.Data = append(img.Data, make([]byte, end-int64(len(img.Data)))...)
		}
		copy(img.Data[ev.Off:], ev.Data)
		img.Size = max(img.Size, end)
	}
	return img
}

// State is one content the file may have after a power loss at a crash point.
type State struct {
	Point   int    // the crash happened after events[:point]
	Variant string // "lost", "applied" or "random/<n>"
	Acks    int    // acknowledgements among events[:point]
	Image   Image
}

// pieces splits the writes among pending at page boundaries of the file: each piece reaches
// the disk or not on its own.
func pieces(pending []Event) []Event {
	var out []Event
	for _, ev := range pending {
		if ev.Kind != Write {
			out = append(out, ev)
			continue
		}
		for start := 0; start < len(ev.Data); {
			off := ev.Off + int64(start)
			end := start + int(Page-off%Page)
			end = min(end, len(ev.Data))
			out = append(out, Event{Kind: Write, Off: off, Data: ev.Data[start:end]})
			start = end
		}
	}
	return out
}

// States yields, for every crash point (after each Event, and before the first), the
// states the model allows there: the file as of its last sync with every later write and
// truncate lost ("lost"); with all of them applied ("applied"); and random extra states
// ("random/<n>"), each from its own generator seeded by (seed, point, n): every later
// write's page-sized piece and every truncate independently lost or applied in trace order,
// and a piece that is applied torn (its first half written) in one of eight. Points with
// nothing unsynced have one state. keep, if not nil, chooses which points to yield.
func States(base Image, evs []Event, random int, seed uint64, keep func(point int) bool, yield func(State) bool) {
	synced := base.Clone()
	var pending []Event
	acks := 0
	for point := 0; point <= len(evs); point++ {
		if point > 0 {
			switch ev := evs[point-1]; ev.Kind {
			case Ack:
				acks++
			case Sync:
				for _, p := range pending {
					synced = synced.Apply(p)
				}
				pending = pending[:0]
			default:
				pending = append(pending, ev)
			}
		}
		if keep != nil && !keep(point) {
			continue
		}
		state := func(variant string, img Image) bool {
			return yield(State{Point: point, Variant: variant, Acks: acks, Image: img})
		}
		if !state("lost", synced.Clone()) {
			return
		}
		if len(pending) == 0 {
			continue
		}
		all := synced.Clone()
		for _, p := range pending {
			all = all.Apply(p)
		}
		if !state("applied", all) {
			return
		}
		ps := pieces(pending)
		for n := range random {
			rng := rand.New(rand.NewPCG(seed, uint64(point)<<16|uint64(n)))
			img := synced.Clone()
			for _, p := range ps {
				switch {
				case rng.IntN(2) == 0: // lost
				case p.Kind == Write && len(p.Data) > 1 && rng.IntN(8) == 0:
					img = img.Apply(Event{Kind: Write, Off: p.Off, Data: p.Data[:len(p.Data)/2]})
				default:
					img = img.Apply(p)
				}
			}
			if !state("random/"+strconv.Itoa(n), img) {
				return
			}
		}
	}
}

// WriteFile writes img to a new file at path (Data, then zeros up to Size).
func (img Image) WriteFile(path string) error {
	if err := os.WriteFile(path, img.Data, 0o600); err != nil {
		return err
	}
	return os.Truncate(path, img.Size)
}

// Count returns how many of evs are of kind k.
func Count(evs []Event, k Kind) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// pointCounts returns the number of crash points of evs (one after each event and one before
// the first) and how many of them have unsynced writes or truncates.
func pointCounts(evs []Event) (points, withPending int) {
	pending := false
	for p := 0; p <= len(evs); p++ {
		if p > 0 {
			switch evs[p-1].Kind {
			case Sync:
				pending = false
			case Write, Truncate:
				pending = true
			}
		}
		if pending {
			withPending++
		}
	}
	return len(evs) + 1, withPending
}

// plan chooses, for about target states in all, how many random states States makes per
// crash point with unsynced writes (at least 3) and which points it keeps: every point when
// target allows it (keep is then nil), else every stride-th, starting at an offset taken
// from seed.
func plan(evs []Event, target int, seed uint64) (random, stride int, keep func(point int) bool) {
	points, withPending := pointCounts(evs)
	random = 3
	for withPending > 0 && points+withPending*(1+random) < target {
		random++
	}
	stride = max(1, (points+withPending*(1+random))/target)
	offset := int(seed % uint64(stride))
	keep = func(p int) bool { return p%stride == offset }
	if stride == 1 {
		keep = nil
	}
	return random, stride, keep
}

// EnvInt returns the positive integer in the environment variable name, or def.
func EnvInt(t testing.TB, name string, def int) int {
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

// Seed returns the seed of the random states: the integer in the environment variable name,
// or a new one; it logs it, with how to reproduce the run's random subsets.
func Seed(t testing.TB, name string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(name); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", name, s, err)
		}
	}
	t.Logf("seed %d (%s=%d reproduces the random subsets of this trace)", seed, name, seed)
	return seed
}

// seen remembers the crash states checked already, by file content and what the checker
// expects of it (e.g. the acknowledgements before the crash point).
type seen map[[sha256.Size]byte]bool

// first reports whether img with expect is new to s, and adds it.
func (s seen) first(img Image, expect any) bool {
	h := sha256.New()
	h.Write(img.Data)
	fmt.Fprint(h, img.Size, expect)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if s[sum] {
		return false
	}
	s[sum] = true
	return true
}

// traceCalls are the calls Trace records: every way to write, size or sync a file, so that
// ParseTrace sees (and refuses) any it does not model.
const traceCalls = "pwrite64,pwritev,pwritev2,write,writev,fdatasync,fsync,ftruncate,fallocate,sync_file_range,copy_file_range"

// Trace runs this test binary again, its tests matching run only, with env added, under
// strace -f, and returns the events on the file named fileName and the acknowledgements. The
// trace and the workload's stdout are left in dir. It fails t unless the workload succeeds,
// the trace parses and it holds acks acknowledgements.
func Trace(t testing.TB, strace, dir, fileName, run string, acks int, env ...string) []Event {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tracePath := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-yy", "-xx", "-s", strconv.Itoa(4<<20), "-e", "trace="+traceCalls,
		"-o", tracePath, exe, "-test.run="+run, "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
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
	evs, err := ParseTrace(f, fileName)
	if err != nil {
		t.Fatalf("parse %s: %v", tracePath, err)
	}
	if n := Count(evs, Ack); n != acks {
		t.Fatalf("the trace holds %d acknowledgements; want %d (one per acknowledged operation)", n, acks)
	}
	return evs
}

// WithoutSyncs replays evs without its syncs and crashes right after each of its first n
// acknowledgements with everything unsynced lost: every one of those states must lose an
// acknowledged operation, or the checker cannot see lost writes. newLost builds the check
// for that trace (its acknowledgements are at other points), which reports whether a state
// lost an acknowledged operation. It returns how many states did, of how many.
func WithoutSyncs(base Image, evs []Event, n int, seed uint64, newLost func(evs []Event) func(State) bool) (lost, states int) {
	var out []Event
	for _, ev := range evs {
		if ev.Kind != Sync {
			out = append(out, ev)
		}
	}
	points := map[int]bool{}
	for i, ev := range out {
		if ev.Kind == Ack && len(points) < n {
			points[i+1] = true
		}
	}
	check := newLost(out)
	States(base, out, 0, seed, func(p int) bool { return points[p] }, func(st State) bool {
		if check(st) {
			lost++
		}
		return true
	})
	return lost, len(points)
}

// Figures are what CheckStates did.
type Figures struct {
	Points, Kept, Stride, Random   int
	Generated, Checked, Violations int
}

func (f Figures) String() string {
	return fmt.Sprintf("%d crash points of %d (every %d), %d random states each where writes were unsynced: %d states generated, %d distinct checked, %d invariant violations",
		f.Kept, f.Points, f.Stride, f.Random, f.Generated, f.Checked, f.Violations)
}

// CheckStates generates about target crash states of evs from base (Plan, States) and calls
// check on each one not seen before with the same expect(point) (seen). A violation (check's
// error) goes to violation with its number (1 for the first), which returns false to stop.
func CheckStates(base Image, evs []Event, target int, seed uint64, expect func(point int) any,
	check func(State) error, violation func(st State, err error, n int) bool) Figures {
	var f Figures
	f.Points, _ = pointCounts(evs)
	var keep func(int) bool
	f.Random, f.Stride, keep = plan(evs, target, seed)
	checked := seen{}
	last := -1
	States(base, evs, f.Random, seed, keep, func(st State) bool {
		f.Generated++
		if st.Point != last {
			f.Kept++
			last = st.Point
		}
		if !checked.first(st.Image, expect(st.Point)) {
			return true // the same file with the same expectations was checked already
		}
		f.Checked++
		if err := check(st); err != nil {
			f.Violations++
			return violation(st, err, f.Violations)
		}
		return true
	})
	return f
}

// Describe counts the events of evs by kind, for the log.
func Describe(evs []Event) string {
	return fmt.Sprintf("%d traced events (%d writes, %d syncs, %d truncates, %d acknowledgements)",
		len(evs), Count(evs, Write), Count(evs, Sync), Count(evs, Truncate), Count(evs, Ack))
}

// Acked returns, for each crash point of evs, how many operations each of workers workers
// had acknowledged before it ([point][worker]), from acknowledgements "<worker>-<n>" where
// each worker's n counts 0, 1, 2, … (its operations run one after another). It fails t on
// any other acknowledgement.
func Acked(t testing.TB, evs []Event, workers int) [][]int {
	t.Helper()
	cur := make([]int, workers)
	out := [][]int{slices.Clone(cur)}
	for _, ev := range evs {
		if ev.Kind == Ack {
			var w, n int
			if _, err := fmt.Sscanf(ev.Ack, "%d-%d", &w, &n); err != nil || w < 0 || w >= workers || n != cur[w] {
				t.Fatalf("acknowledgement %q out of order (workers acknowledged %v so far)", ev.Ack, cur)
			}
			cur[w]++
		}
		out = append(out, slices.Clone(cur))
	}
	return out
}

// StateDir returns a directory for the crash states' files: on /dev/shm if it can (no disk
// syncs), else a test temporary directory; either is removed at cleanup.
func StateDir(t testing.TB) string {
	t.Helper()
	if shm, err := os.MkdirTemp("/dev/shm", "coffer-crash-"); err == nil {
		t.Cleanup(func() { _ = os.RemoveAll(shm) })
		return shm
	}
	return t.TempDir()
}
