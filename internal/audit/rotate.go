package audit

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rotation (Options.MaxFileBytes). When a commit leaves the file at or past the limit, the
// committer, after a batch (so at a record boundary), appends a
// checkpoint if any record follows the last one, makes the file durable without its
// padding, renames it to RotatedName(path, n) (n = 1, 2, … in rotation order) and starts a
// new, empty file at path. The chain does not restart: the new file's first record
// continues the last one (seq+1, prev = its hash) exactly as Options.Continue would, so the
// files are one log: VerifyFiles checks them together, Verify their concatenation, and
// Verify with VerifyOptions.Continue one file alone. Every rotated file ends with a signed
// checkpoint. Rotated files are never renamed again or deleted by the log.
//
// Crash safety: the rename and the new file are made durable (directory fsync) before any
// record goes to the new file. A crash between the rename and the new file leaves no file
// at path (or an empty one); Open then continues the chain from the newest rotated file
// instead of starting a new log.

// RotatedName is the name of the n-th rotated file of the log at path: path.000001, …
// (six digits, more past 999999, so that names sort in rotation order).
func RotatedName(path string, n int) string {
	return fmt.Sprintf("%s.%06d", path, n)
}

// RotatedFiles returns the rotated files of the log at path, oldest first. It does not
// open them.
func RotatedFiles(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("audit: list rotated files: %w", err)
	}
	type file struct {
		n    int
		name string
	}
	var fs []file
	prefix := filepath.Base(path) + "."
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || len(suffix) < 6 || !e.Type().IsRegular() {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strings.TrimLeft(suffix, "0123456789") != "" {
			continue
		}
		fs = append(fs, file{n, filepath.Join(filepath.Dir(path), e.Name())})
	}
	slices.SortFunc(fs, func(a, b file) int { return a.n - b.n })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out, nil
}

// rotatedIndex is n of a name RotatedName made, or 0.
func rotatedIndex(name string) int {
	i := strings.LastIndexByte(name, '.')
	n, err := strconv.Atoi(name[i+1:])
	if i < 0 || err != nil {
		return 0
	}
	return n
}

// maybeRotate rotates the file if it has reached Options.MaxFileBytes (commit slot holder).
// A failed rotation leaves the log writing to the same file, which loses nothing; it is
// reported to Options.OnRotate and tried again once the file has grown by PreallocBytes.
func (l *Log) maybeRotate() {
	if l.maxBytes <= 0 || l.file == nil || l.size < l.maxBytes || l.size < l.rotateRetryAt {
		return
	}
	name, err := l.rotate()
	if err != nil {
		l.failures.Add(1)
		l.rotateRetryAt = l.size + PreallocBytes
	}
	if l.onRotate != nil {
		l.onRotate(name, err)
	}
}

// rotate moves the file aside and starts a new one; see the comment at the top of the file.
func (l *Log) rotate() (string, error) {
	if p := l.commit([]*request{{kind: kindTick}}); p != nil { // the checkpoint that ends the file
		defer p.resolve(l, nil) // no caller waits for it; deferredSync's failure is sticky
	}
	l.deferredSync()
	switch {
	case l.syncErr != nil:
		return "", l.syncErr
	case l.since > 0:
		return "", fmt.Errorf("audit: rotate %s: the closing checkpoint could not be written", l.path)
	}
	if err := l.trimPadding(); err != nil {
		return "", fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	n := l.rotated + 1
	for {
		if _, err := os.Lstat(RotatedName(l.path, n)); errors.Is(err, os.ErrNotExist) {
			break
		}
		n++
	}
	name := RotatedName(l.path, n)
	dir := filepath.Dir(l.path)
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	if err := os.Rename(l.path, name); err != nil {
		return "", fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	undo := func(err error) (string, error) {
		if rerr := os.Rename(name, l.path); rerr != nil {
			err = fmt.Errorf("%w; moving it back failed too: %v (Open continues from it)", err, rerr)
		}
		_ = syncDir(dir)
		return "", fmt.Errorf("audit: rotate %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return undo(err)
	}
	if err := lockFile(f); err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		f.Close()
		os.Remove(l.path)
		return undo(err)
	}
	old := l.file
	l.file, l.w = f, f
	l.size, l.alloc, l.dirty = 0, 0, false
	l.span = fileSpan{known: true}
	l.rotated, l.rotateRetryAt = n, 0
	old.Close()
	return name, nil
}

// OpenFiles opens the files of the log that may hold records with a Time in [since, until)
// (a zero bound is open: zero both, every file), the rotated ones oldest first and then the
// current one, and returns them as one stream (for Query with the same bounds). A rotated
// file is left out, unread, when its closing checkpoint carries a Span that misses the range
// (closingSpan: its last line, a checkpoint of this log whose signature verifies); one
// without (written before spans, or damaged) is read, as is the current file. Rotation waits
// while the files are opened, so none is missed or read twice; the stream reads what the
// files hold then.
func (l *Log) OpenFiles(since, until time.Time) (io.ReadCloser, error) {
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	if l.file == nil {
		return nil, errors.New("audit: a writer sink has no files")
	}
	names, err := RotatedFiles(l.path)
	if err != nil {
		return nil, err
	}
	var fs multiFile
	for i, name := range append(names, l.path) {
		f, err := os.Open(name)
		if err != nil {
			fs.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
		if i < len(names) && (!since.IsZero() || !until.IsZero()) && l.misses(f, since, until) {
			f.Close()
			continue
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// misses reports whether the rotated file f holds no record with a Time in [since, until),
// by its closing checkpoint's span.
func (l *Log) misses(f *os.File, since, until time.Time) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	s, ok := closingSpan(f, fi.Size(), l.signer.Public(), l.logID)
	return ok && s.Misses(since, until)
}

// multiFile reads files one after the other.
type multiFile []*os.File

func (m multiFile) Read(p []byte) (int, error) {
	for len(m) > 0 {
		n, err := m[0].Read(p)
		if err == io.EOF {
			m = m[1:]
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
	return 0, io.EOF
}

func (m multiFile) Close() error {
	var errs []error
	for _, f := range m {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// newestRotatedHead returns the head of the newest rotated file of the log at path and how
// many of its records follow its last checkpoint, reading it from that checkpoint (Open of
// an empty file after a rotation). ok is false if there is no rotated file.
func newestRotatedHead(path string, pub crypto.PublicKey, logID string) (h Head, since int, ok bool, err error) {
	names, err := RotatedFiles(path)
	if err != nil || len(names) == 0 {
		return Head{}, 0, false, err
	}
	name := names[len(names)-1]
	f, err := os.Open(name)
	if err != nil {
		return Head{}, 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Head{}, 0, false, err
	}
	c := newChain(pub, logID)
	c.anyStart = true
	off, rec, found, err := lastCheckpoint(f, fi.Size(), pub, logID)
	if err != nil {
		return Head{}, 0, false, err
	}
	if found {
		c.continueFrom(Head{LogID: rec.LogID, Seq: rec.Seq - 1, Hash: rec.Prev})
	}
	lr := newLineReader(io.NewSectionReader(f, off, fi.Size()-off))
	last, verr := c.readAll(lr)
	if err := lr.failure(); err != nil {
		return Head{}, 0, false, err
	}
	if verr != nil {
		return Head{}, 0, false, fmt.Errorf("rotated file %s: %w", name, verr)
	}
	if last == nil || c.torn != nil {
		return Head{}, 0, false, fmt.Errorf("rotated file %s holds no complete record to continue from", name)
	}
	return Head{LogID: c.logID, Seq: c.seq, Hash: c.head}, int(c.seq - c.signedThrough), true, nil
}
