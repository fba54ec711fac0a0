package audit

import (
	"fmt"
	"io"
	"os"
)

// PreallocBytes is how far ahead of the records the writer extends the log file, in zero
// bytes written and fsynced once (a multiple of it at a time).
//
// Why: an fsync after an append must also commit the file's new size to the filesystem
// journal. Overwriting bytes that are already allocated and on disk needs only a data sync
// (fdatasync), which costs far less: on this project's 2-core VM (ext4 on virtio) 4.6 KiB
// append+fsync took ~820 µs wall and ~460 µs of CPU, the same write into zeroed space +
// fdatasync ~220 µs wall and ~120 µs of CPU. Every data-plane request waits for one of
// these (shared by group commit), so this is most of the audit log's cost.
//
// The padding is never part of the log: readers stop at the first NUL byte (no record holds
// one), Open removes the padding and Close truncates it away, so a closed log is exactly its
// records.
const PreallocBytes = 1 << 20

var zeros [64 << 10]byte

// writeRecords writes buf at the end of the good records, into space that is allocated and
// durable already (grow), so that a data sync (fdatasync) makes the records durable: commit
// leaves that sync to its caller, outside the commit slot (finish). It returns the number of
// bytes written, for the caller's cleanup on failure.
func (l *Log) writeRecords(buf []byte) (int, error) {
	end := l.size + int64(len(buf))
	l.collectGrow(end > l.alloc) // the padding being written ahead may be needed now
	inPlace := end <= l.alloc
	if !inPlace {
		inPlace = l.grow(end) == nil
	}
	n, err := l.file.WriteAt(buf, l.size)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil || inPlace {
		return n, err
	}
	// Growing failed (e.g. no room for the padding): a plain append with a full fsync, which
	// makes the new length durable too (the data sync that follows finds nothing to do).
	if end > l.alloc {
		l.alloc = end
	}
	return n, l.syncFile(l.file, false)
}

// pad writes zeros to f from from to to and syncs them with the file's new length.
func (l *Log) pad(f *os.File, from, to int64) error {
	for off := from; off < to; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off); err != nil {
			return err
		}
	}
	return l.syncFile(f, false)
}

// grow extends the file's zero padding to cover end and makes it durable (see PreallocBytes).
func (l *Log) grow(end int64) error {
	target := (end + PreallocBytes - 1) / PreallocBytes * PreallocBytes
	if err := l.pad(l.file, l.alloc, target); err != nil {
		if terr := l.file.Truncate(l.alloc); terr != nil {
			l.dirty = true
		}
		return fmt.Errorf("audit: preallocate %s: %w", l.path, err)
	}
	l.alloc = target
	return nil
}

// trimPadding cuts the file back to its records (Close), so a closed log holds no padding.
func (l *Log) trimPadding() error {
	if l.alloc == l.size {
		return nil
	}
	if err := l.file.Truncate(l.size); err != nil {
		return err
	}
	l.alloc = l.size
	return l.syncFile(l.file, false)
}

// syncFile is the default Log.syncFile.
func syncFile(f *os.File, dataOnly bool) error {
	if dataOnly {
		return datasync(f)
	}
	return f.Sync()
}

// grown is the outcome of a background extension of the padding of file f from from to to.
type grown struct {
	f        *os.File
	from, to int64
	err      error
}

// maybeGrow starts extending the padding once less than half of PreallocBytes is left, so
// that commits seldom pay for writing and syncing a megabyte of zeros while they hold the
// commit slot (1–5 ms here, a stall of every request's record). Commit slot holder only.
func (l *Log) maybeGrow() {
	if l.file == nil || l.growing || l.dirty || l.syncErr != nil || l.alloc-l.size >= PreallocBytes/2 {
		return
	}
	l.growing = true
	l.fileRef.RLock() // the file stays open until the extension ends
	go l.growAhead(grown{f: l.file, from: l.alloc, to: l.alloc + PreallocBytes})
}

// growAhead writes zeros after the padding, where no record is written until the commit slot
// holder has taken the outcome (collectGrow), and syncs them with the file's new length. It
// runs on its own goroutine, needing neither the commit slot nor anything its holder may
// wait for.
func (l *Log) growAhead(g grown) {
	g.err = l.pad(g.f, g.from, g.to)
	l.grown <- g // before fileRef is released, so that its next writer finds it (lockFile)
	l.fileRef.RUnlock()
}

// collectGrow takes the background extension's outcome, waiting for it if wait is set and
// one is running. Commit slot holder only.
func (l *Log) collectGrow(wait bool) {
	if !l.growing {
		return
	}
	var g grown
	if wait {
		g = <-l.grown
	} else {
		select {
		case g = <-l.grown:
		default:
			return
		}
	}
	l.growing = false
	if g.f != l.file || g.from != l.alloc || l.dirty {
		return // the file was replaced or cut back meanwhile: its padding is not ours to count
	}
	if g.err == nil {
		l.alloc = g.to
		return
	}
	if err := l.file.Truncate(l.alloc); err != nil {
		l.dirty = true // the next commit cuts the file back to its records
	}
}

// lockFile takes fileRef for writing — every sync and extension outside the commit slot has
// ended — and takes a finished extension's outcome. Commit slot holder only.
func (l *Log) lockFile() {
	l.fileRef.Lock()
	l.collectGrow(false)
}
