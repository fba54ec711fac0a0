package audit

import (
	"bytes"
	"crypto"
	"encoding/json"
	"io"
)

// Windows of the file's end that lastCheckpoint searches, growing by 4×; past the largest,
// Open checks the whole file.
const (
	tailWindowMin = 1 << 20
	tailWindowMax = 64 << 20
)

// lastCheckpoint finds the last checkpoint record in r[0:size) that verifies on its own: a
// canonical record whose hash matches, whose checkpoint describes the record before it and
// whose signature verifies under pub (and of log logID, if set). It returns the offset of its
// line and the record. ok is false if there is none in the last tailWindowMax bytes.
func lastCheckpoint(r io.ReaderAt, size int64, pub crypto.PublicKey, logID string) (off int64, rec *Record, ok bool, err error) {
	marker := []byte(`"kind":"` + KindCheckpoint + `"`)
	for window := int64(tailWindowMin); ; window *= 4 {
		start := max(size-window, 0)
		buf := make([]byte, size-start)
		if _, err := r.ReadAt(buf, start); err != nil && err != io.EOF {
			return 0, nil, false, err
		}
		end := bytes.LastIndexByte(buf, '\n') // what follows is torn or padding
		if nul := bytes.IndexByte(buf, 0); nul >= 0 {
			// Readers stop at the first line holding a NUL (the package doc): a checkpoint
			// after it is past a hole a crash left in unsynced writes (a page of padding
			// not overwritten), and continuing from it would put every later record where
			// Verify, and Open without this search, see only a torn tail.
			end = bytes.LastIndexByte(buf[:nul], '\n')
		}
		for end > 0 {
			begin := bytes.LastIndexByte(buf[:end], '\n') + 1
			if begin == 0 && start > 0 {
				break // the window cuts this line
			}
			if line := buf[begin:end]; bytes.Contains(line, marker) {
				if rec, ok := verifiedCheckpoint(line, pub, logID); ok {
					return start + int64(begin), rec, true, nil
				}
			}
			end = begin - 1
		}
		if start == 0 || window >= tailWindowMax {
			return 0, nil, false, nil
		}
	}
}

// verifiedCheckpoint checks one line as a checkpoint record, with the verifier's own rules,
// trusting only its own prev.
func verifiedCheckpoint(b []byte, pub crypto.PublicKey, logID string) (*Record, bool) {
	if bytes.IndexByte(b, 0) >= 0 {
		return nil, false
	}
	var r Record
	if json.Unmarshal(b, &r) != nil || r.Kind != KindCheckpoint || r.Seq < 2 || !isHash(r.Prev) ||
		logID != "" && r.LogID != logID || checkLogID(r.LogID) != nil {
		return nil, false
	}
	c := newChain(pub, logID)
	c.continueFrom(Head{LogID: r.LogID, Seq: r.Seq - 1, Hash: r.Prev})
	if _, verr := c.add(&line{b: b, size: int64(len(b)) + 1, nl: true, no: 1}); verr != nil {
		return nil, false
	}
	return &r, true
}

// closingSpan returns the Span of the last line of a rotated file if that line is a
// checkpoint record of log logID that verifies on its own (as lastCheckpoint's do: its
// signature, which covers the span, under pub) and carries one. A rotated file ends with
// its closing checkpoint, whose span covers every record of the file.
func closingSpan(f io.ReaderAt, size int64, pub crypto.PublicKey, logID string) (Span, bool) {
	for _, window := range []int64{4 << 10, MaxLineBytes + 1} {
		start := max(size-window, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return Span{}, false
		}
		if len(buf) == 0 || buf[len(buf)-1] != '\n' {
			return Span{}, false // empty, or not ending in a complete line
		}
		begin := bytes.LastIndexByte(buf[:len(buf)-1], '\n') + 1
		if begin == 0 && start > 0 {
			continue // the window cuts the line
		}
		rec, ok := verifiedCheckpoint(buf[begin:len(buf)-1], pub, logID)
		if !ok || rec.Checkpoint.Span == nil {
			return Span{}, false
		}
		return *rec.Checkpoint.Span, true
	}
	return Span{}, false
}
