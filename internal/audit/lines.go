package audit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxLineBytes is the longest line the readers accept. Appended records are far shorter
// (every field is bounded); a longer line is an error, or torn if it is the last one.
const MaxLineBytes = 64 << 10

// line is one line of a log as read.
type line struct {
	b    []byte // content without the newline; nil if long
	size int64  // bytes in the file, newline included
	off  int64  // offset of the first byte
	no   int    // 1-based line number
	nl   bool   // ended with a newline
	long bool   // longer than MaxLineBytes
	// nul is set if the line holds a NUL byte, which no record does: the line is the
	// preallocated zero padding after the last record (see prealloc.go) or what a crash left
	// of an unsynced write into it. data is the line's length up to its last byte that is
	// not NUL (0 for pure padding).
	nul  bool
	data int64
}

// lineReader splits a log into lines with a bounded buffer and a one-line lookahead.
type lineReader struct {
	br     *bufio.Reader
	off    int64
	no     int
	peeked *line
	err    error
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 16<<10)}
}

// peek returns the next line without consuming it; nil at the end (check lr.err).
func (lr *lineReader) peek() *line {
	if lr.peeked == nil && lr.err == nil {
		lr.peeked, lr.err = lr.read()
	}
	return lr.peeked
}

// next returns the next line; nil at the end (io.EOF) or on a read error (lr.failure()).
func (lr *lineReader) next() *line {
	l := lr.peek()
	lr.peeked = nil
	return l
}

// failure is the read error that ended the lines, nil at a clean end.
func (lr *lineReader) failure() error {
	if errors.Is(lr.err, io.EOF) {
		return nil
	}
	return lr.err
}

func (lr *lineReader) read() (*line, error) {
	l := &line{off: lr.off, no: lr.no + 1}
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if i := lastNonNUL(chunk); i >= 0 {
			l.data = l.size + int64(i) + 1
		}
		if !l.nul && bytes.IndexByte(chunk, 0) >= 0 {
			l.nul = true
		}
		l.size += int64(len(chunk))
		if !l.long {
			if len(l.b)+len(chunk) > MaxLineBytes+1 {
				l.long, l.b = true, nil
			} else {
				l.b = append(l.b, chunk...)
			}
		}
		switch {
		case err == nil:
			l.nl = true
			if !l.long {
				l.b = l.b[:len(l.b)-1]
			}
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if l.size == 0 {
				return nil, io.EOF
			}
		default:
			return nil, err
		}
		if len(l.b) > MaxLineBytes {
			l.long, l.b = true, nil
		}
		lr.off += l.size
		lr.no++
		return l, nil
	}
}

// lastNonNUL is the index of the last byte of b that is not NUL, or -1.
func lastNonNUL(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}
