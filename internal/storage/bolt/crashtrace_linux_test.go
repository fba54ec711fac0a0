package bolt

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// This file turns an strace of a workload into power-loss crash states (the ALICE /
// CrashMonkey approach): bbolt writes with pwrite64 and reads through mmap, so no in-memory
// file system can stand in for the disk; the syscalls it made are replayed instead.

// evKind is what one traced event did.
type evKind uint8

const (
	evWrite    evKind = iota // bytes written to the database file at an offset
	evTruncate               // the database file's size set
	evSync                   // fdatasync or fsync of the database file completed
	evAck                    // the workload acknowledged a transaction on stdout
)

// event is one traced syscall that matters to the database file or to the acknowledgements.
type event struct {
	kind evKind
	off  int64  // evWrite: file offset; evTruncate: new length
	data []byte // evWrite
	ack  string // evAck: the transaction id
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

// parseTrace reads strace output and returns, in trace order, the events on the file whose
// path ends in dbName and the "ACK <id>" lines written to fd 1. strace -f prints each call
// when it completes, or splits it (unfinished … resumed) when another thread's call completes
// meanwhile: a write or an acknowledgement is placed where it started (its bytes may reach
// the file, or the reader, from then on: the earliest is the strictest place for an
// acknowledgement), a sync where it completed (only then is it a promise). Any other call
// that changes the database file (pwritev, fallocate, write, msync, sync_file_range) fails
// the parse: the crash model would not cover it.
func parseTrace(r io.Reader, dbName string) ([]event, error) {
	var evs []event
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
		isDB := strings.HasSuffix(string(path), "/"+dbName)
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
		var ev event
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
			ev = event{kind: evAck, ack: id}
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
			ev = event{kind: evWrite, off: off, data: data}
		case name == "ftruncate":
			f := strings.Fields(strings.TrimPrefix(rest, ","))
			size, err := strconv.ParseInt(strings.TrimRight(f[0], ")"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: ftruncate length: %w", n, err)
			}
			ev = event{kind: evTruncate, off: size}
		case name == "fdatasync" || name == "fsync":
			if !done {
				unfinished[pid] = open{idx: -1, name: name}
				continue
			}
			if ret != 0 {
				return nil, fmt.Errorf("trace line %d: %s failed: %.200s", n, name, l)
			}
			evs = append(evs, event{kind: evSync})
			continue
		case name == "openat" || name == "close" || name == "flock" || name == "fstat" || name == "pread64":
			continue
		default:
			return nil, fmt.Errorf("trace line %d: %s on the database file is not in the crash model: %.200s", n, name, l)
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

// complete applies the return value ret of call name, whose event (if it has one placed at
// its start) is evs[idx]; a sync is appended here, where it completed.
func complete(evs *[]event, idx int, name string, ret int64) error {
	if idx < 0 {
		if ret != 0 {
			return fmt.Errorf("%s failed (%d)", name, ret)
		}
		*evs = append(*evs, event{kind: evSync})
		return nil
	}
	ev := &(*evs)[idx]
	switch {
	case ret < 0:
		return fmt.Errorf("%s failed (%d)", name, ret)
	case ev.kind == evWrite && ret < int64(len(ev.data)):
		ev.data = ev.data[:ret] // a short write: the rest was written by the next call
	case ev.kind == evWrite && ret > int64(len(ev.data)):
		return fmt.Errorf("%s wrote %d bytes but strace showed %d (raise -s)", name, ret, len(ev.data))
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

// crashPage is the granularity at which a write that was not synced reaches the disk or not.
const crashPage = 4096

// fileImage is the content of the database file: data, then zeros up to size. bbolt grows
// the file in large steps that stay sparse; keeping only the written part keeps copying and
// writing a crash state cheap.
type fileImage struct {
	data []byte
	size int64
}

// newImage returns the image of a file with content b.
func newImage(b []byte) fileImage {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return fileImage{data: append([]byte(nil), b[:n]...), size: int64(len(b))}
}

// clone returns a copy of img that shares no storage with it.
func (img fileImage) clone() fileImage {
	return fileImage{data: append([]byte(nil), img.data...), size: img.size}
}

// apply returns img with ev (a write or a truncate) applied; it may reuse img's storage.
func (img fileImage) apply(ev event) fileImage {
	switch ev.kind {
	case evTruncate:
		img.size = ev.off
		if int64(len(img.data)) > ev.off {
			img.data = img.data[:ev.off]
		}
	case evWrite:
		end := ev.off + int64(len(ev.data))
		if end > int64(len(img.data)) {
			img.data = append(img.data, make([]byte, end-int64(len(img.data)))...)
		}
		copy(img.data[ev.off:], ev.data)
		img.size = max(img.size, end)
	}
	return img
}

// crashState is one content the file may have after a power loss at a crash point.
type crashState struct {
	point   int    // the crash happened after events[:point]
	variant string // "lost", "applied" or "random/<n>"
	acks    int    // acknowledgements among events[:point]
	image   fileImage
}

// pieces splits the writes among pending at page boundaries of the file: each piece reaches
// the disk or not on its own.
func pieces(pending []event) []event {
	var out []event
	for _, ev := range pending {
		if ev.kind != evWrite {
			out = append(out, ev)
			continue
		}
		for start := 0; start < len(ev.data); {
			off := ev.off + int64(start)
			end := start + int(crashPage-off%crashPage)
			end = min(end, len(ev.data))
			out = append(out, event{kind: evWrite, off: off, data: ev.data[start:end]})
			start = end
		}
	}
	return out
}

// crashStates yields, for every crash point (after each event, and before the first), the
// states the model allows there: the file as of its last sync with every later write and
// truncate lost ("lost"); with all of them applied ("applied"); and random extra states
// ("random/<n>"), each from its own generator seeded by (seed, point, n): every later
// write's page-sized piece and every truncate independently lost or applied in trace order,
// and a piece that is applied torn (its first half written) in one of eight. Points with
// nothing unsynced have one state. keep, if not nil, chooses which points to yield.
func crashStates(base fileImage, evs []event, random int, seed uint64, keep func(point int) bool, yield func(crashState) bool) {
	synced := base.clone()
	var pending []event
	acks := 0
	for point := 0; point <= len(evs); point++ {
		if point > 0 {
			switch ev := evs[point-1]; ev.kind {
			case evAck:
				acks++
			case evSync:
				for _, p := range pending {
					synced = synced.apply(p)
				}
				pending = pending[:0]
			default:
				pending = append(pending, ev)
			}
		}
		if keep != nil && !keep(point) {
			continue
		}
		state := func(variant string, img fileImage) bool {
			return yield(crashState{point: point, variant: variant, acks: acks, image: img})
		}
		if !state("lost", synced.clone()) {
			return
		}
		if len(pending) == 0 {
			continue
		}
		all := synced.clone()
		for _, p := range pending {
			all = all.apply(p)
		}
		if !state("applied", all) {
			return
		}
		ps := pieces(pending)
		for n := range random {
			rng := rand.New(rand.NewPCG(seed, uint64(point)<<16|uint64(n)))
			img := synced.clone()
			for _, p := range ps {
				switch {
				case rng.IntN(2) == 0: // lost
				case p.kind == evWrite && len(p.data) > 1 && rng.IntN(8) == 0:
					img = img.apply(event{kind: evWrite, off: p.off, data: p.data[:len(p.data)/2]})
				default:
					img = img.apply(p)
				}
			}
			if !state("random/"+strconv.Itoa(n), img) {
				return
			}
		}
	}
}
