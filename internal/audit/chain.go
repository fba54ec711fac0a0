package audit

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// The chain is the verifier's state machine, shared by Verify, VerifyFiles and Open: it
// reads a log line by line and applies the format's rules (see the package doc) to each
// record, naming the first that breaks one.

// chain is the verifier's state, shared by Verify and Open.
type chain struct {
	pub      crypto.PublicKey // nil: signatures are not checked
	logID    string           // "" until the first record unless fixed
	started  bool
	anyStart bool // Open: accept a file starting at any seq (a rotated file)
	trackDup bool // keep hash prefixes to tell duplicates and conflicts apart
	expect   *Checkpoint

	first         uint64 // seq of the first record
	seq           uint64 // seq of the last good record
	head          string // hash of the last good record (genesis before seq 1)
	signedThrough uint64 // seq of the last good checkpoint record (or the trusted start)
	prefixes      []uint64
	rep           Report

	torn    *line // a torn final line, if any
	goodLen int64 // byte length of the good records

	span fileSpan // times of the good records read (Open: of the file, for the writer)
	seg  fileSpan // times of the good records since the last checkpoint record
}

func newChain(pub crypto.PublicKey, logID string) *chain {
	return &chain{pub: pub, logID: logID, span: fileSpan{known: true}}
}

// continueFrom starts the chain after a trusted head.
func (c *chain) continueFrom(h Head) {
	c.started = true
	c.logID = h.LogID
	c.seq, c.head, c.first = h.Seq, h.Hash, h.Seq+1
	c.signedThrough = h.Seq
}

func (c *chain) report() Report {
	r := c.rep
	r.LogID = c.logID
	r.LastSeq = c.seq
	r.HeadHash = c.head
	if c.seq > c.signedThrough {
		r.UnsignedTail = int(c.seq - c.signedThrough)
	}
	if c.torn != nil {
		r.TornBytes = c.torn.size
	}
	return r
}

// readAll feeds every line to the chain. A final line without a newline, or that is not a
// record at all, is torn: it is remembered in c.torn, not counted. It returns the last good
// record.
func (c *chain) readAll(lr *lineReader) (*Record, *VerifyError) {
	var last *Record
	for {
		l := lr.next()
		if l == nil {
			return last, nil
		}
		if l.nul {
			c.tail(l, lr)
			return last, nil
		}
		final := lr.peek() == nil && lr.failure() == nil
		if final && isTorn(l) {
			c.torn = l
			return last, nil
		}
		rec, verr := c.add(l)
		if verr != nil {
			if verr.Kind == BadGap {
				if n := lr.peek(); n != nil && peekSeq(n) == c.seq+1 {
					verr.Kind = BadReorder
					verr.Msg = fmt.Sprintf("expected seq %d, found %d, and seq %d follows it: records were reordered", c.seq+1, rec.Seq, c.seq+1)
				}
			}
			return last, verr
		}
		last = rec
	}
}

// tail consumes the rest of a log from its first line holding a NUL byte. Records never
// hold one, and every acknowledged record was fsynced, so the first NUL is at or after the
// end of the last durable write: what follows is the writer's zero padding (not an error, not
// counted) and possibly what a crash left of an unsynced write into it, which is torn like a
// torn final line (its size, without the trailing padding, goes to c.torn).
func (c *chain) tail(first *line, lr *lineReader) {
	end := first.off + first.data // end of the last non-NUL byte seen so far
	for l := lr.next(); l != nil; l = lr.next() {
		if l.data > 0 {
			end = l.off + l.data
		}
	}
	if end > first.off {
		c.torn = &line{off: first.off, no: first.no, size: end - first.off}
	}
}

// isTorn reports whether a final line is what a crash mid-write leaves: no newline, or not
// a JSON object at all (e.g. a zero-filled block).
func isTorn(l *line) bool {
	if !l.nl || l.long {
		return true
	}
	var rec Record
	return json.Unmarshal(l.b, &rec) != nil
}

// peekSeq is the seq a line claims, or 0.
func peekSeq(l *line) uint64 {
	var s struct {
		Seq uint64 `json:"seq"`
	}
	if l.long || json.Unmarshal(l.b, &s) != nil {
		return 0
	}
	return s.Seq
}

// add checks one line against the chain and, if it is good, advances the chain. On error it
// may still return the parsed record (for messages).
func (c *chain) add(l *line) (*Record, *VerifyError) {
	bad := func(seq uint64, kind, format string, args ...any) *VerifyError {
		return &VerifyError{Seq: seq, Line: l.no, Kind: kind, Msg: fmt.Sprintf(format, args...)}
	}
	next := c.seq + 1
	if l.long {
		return nil, bad(next, BadSyntax, "line is longer than %d bytes", MaxLineBytes)
	}
	var rec Record
	if err := json.Unmarshal(l.b, &rec); err != nil {
		return nil, bad(next, BadSyntax, "not a JSON record: %v", err)
	}
	canon, err := canonical(&rec)
	if err != nil {
		return &rec, bad(next, BadSyntax, "record cannot be re-encoded: %v", err)
	}
	if !isHash(rec.Hash) {
		return &rec, bad(next, BadHash, "hash field is missing or not 64 lowercase hex digits")
	}
	want := make([]byte, 0, len(canon)+80)
	want = append(want, canon[:len(canon)-1]...)
	want = append(want, `,"hash":"`+rec.Hash+`"}`...)
	if !bytes.Equal(l.b, want) {
		return &rec, bad(next, BadCanonical, "line is not the canonical encoding of its record (fields added, duplicated, reordered or reformatted)")
	}
	self := rec.Prev
	if rec.Seq == 1 {
		self = genesis(rec.LogID)
	}
	if chainHash(self, canon) != rec.Hash {
		return &rec, bad(next, BadHash, "hash does not match the record's contents: a field was edited")
	}

	if c.logID == "" {
		c.logID = rec.LogID
	}
	if rec.LogID != c.logID {
		return &rec, bad(next, BadSplice, "record of log %q in log %q: spliced in from another log", rec.LogID, c.logID)
	}

	if !c.started {
		switch {
		case rec.Seq == 1:
			c.head = genesis(rec.LogID)
		case c.anyStart && rec.Seq > 1 && isHash(rec.Prev):
			c.head = rec.Prev
			c.signedThrough = rec.Seq - 1 // trusted start of a rotated file
		default:
			return &rec, bad(1, BadGenesis, "first record has seq %d; a log starts at seq 1 (records cut from the start, or a rotated file verified without VerifyOptions.Continue)", rec.Seq)
		}
		c.started = true
		c.first, c.seq = rec.Seq, rec.Seq-1
		next = rec.Seq
	}
	switch {
	case rec.Seq > next:
		return &rec, bad(next, BadGap, "expected seq %d, found %d: %s deleted", next, rec.Seq, span(next, rec.Seq-1))
	case rec.Seq < next:
		return &rec, c.backwards(&rec, l, next)
	}
	wantPrev := c.head
	if rec.Seq == 1 {
		wantPrev = ""
	}
	if rec.Prev != wantPrev {
		return &rec, bad(next, BadPrev, "prev is not the hash of record %d: the record was replaced or inserted", rec.Seq-1)
	}

	switch rec.Kind {
	case KindEvent, KindRecovery:
		if rec.Checkpoint != nil {
			return &rec, bad(next, BadKind, "%s record carries a checkpoint", rec.Kind)
		}
	case KindCheckpoint:
		cp := rec.Checkpoint
		if cp == nil {
			return &rec, bad(next, BadKind, "checkpoint record without a checkpoint")
		}
		// Everything in a checkpoint record but its chain fields is the signed payload, so a
		// good signature vouches for the whole record.
		if !onlyTime(rec.Event, cp.Time) {
			return &rec, bad(next, BadKind, "checkpoint record carries event fields or a time other than the checkpoint's")
		}
		if cp.LogID != rec.LogID || cp.Seq != rec.Seq-1 || cp.HeadHash != c.head {
			return &rec, bad(c.signedThrough+1, BadCheckpointHead,
				"checkpoint at seq %d claims seq %d with head %.16s…, but record %d has hash %.16s…: %s forged, re-chained or reordered",
				rec.Seq, cp.Seq, cp.HeadHash, rec.Seq-1, c.head, span(c.signedThrough+1, rec.Seq-1))
		}
		if c.pub != nil && !verifySig(c.pub, cp) {
			return &rec, bad(c.signedThrough+1, BadCheckpointSignature,
				"checkpoint at seq %d is not signed by the checkpoint key: it, or a record it covers since the last good checkpoint (seq %d–%d), was forged or re-chained",
				rec.Seq, c.signedThrough+1, rec.Seq)
		}
		if sp := cp.Span; sp != nil {
			seg := c.seg
			seg.add(cp.Time)
			if sp.From.After(sp.To) || seg.from.Before(sp.From) || seg.to.After(sp.To) {
				return &rec, bad(next, BadCheckpointSpan,
					"checkpoint at seq %d says its file's records are from %s to %s, but the records since the previous checkpoint are from %s to %s",
					rec.Seq, sp.From.Format(time.RFC3339Nano), sp.To.Format(time.RFC3339Nano), seg.from.Format(time.RFC3339Nano), seg.to.Format(time.RFC3339Nano))
			}
		}
	default:
		return &rec, bad(next, BadKind, "unknown record kind %q", rec.Kind)
	}

	if exp := c.expect; exp != nil {
		if exp.LogID != "" && exp.LogID != rec.LogID {
			return &rec, bad(next, BadExpectHead, "the expected checkpoint is for log %q, this log is %q", exp.LogID, rec.LogID)
		}
		if rec.Seq == exp.Seq && rec.Hash != exp.HeadHash {
			return &rec, bad(c.signedThrough+1, BadExpectHead,
				"record %d has hash %.16s…, the expected checkpoint says %.16s…: %s altered",
				rec.Seq, rec.Hash, exp.HeadHash, span(c.signedThrough+1, rec.Seq))
		}
	}

	c.seq, c.head = rec.Seq, rec.Hash
	c.goodLen = l.off + l.size
	c.span.add(rec.Time)
	c.seg.add(rec.Time)
	c.rep.Records++
	if rec.Kind == KindCheckpoint {
		c.seg = fileSpan{}
		c.rep.Checkpoints++
		c.rep.LastCheckpointSeq = rec.Seq
		c.signedThrough = rec.Seq
	}
	if c.trackDup {
		c.prefixes = append(c.prefixes, hashPrefix(rec.Hash))
	}
	return &rec, nil
}

// backwards explains a record whose seq is lower than expected.
func (c *chain) backwards(rec *Record, l *line, next uint64) *VerifyError {
	v := &VerifyError{Seq: next, Line: l.no, Kind: BadReorder,
		Msg: fmt.Sprintf("expected seq %d, found %d: records are out of order", next, rec.Seq)}
	if !c.trackDup || rec.Seq < c.first {
		return v
	}
	i := rec.Seq - c.first
	if c.prefixes[i] == hashPrefix(rec.Hash) {
		v.Kind = BadDuplicate
		v.Msg = fmt.Sprintf("record %d (line %d) appears again", rec.Seq, int(i)+1)
		return v
	}
	prevOK := rec.Seq == c.first && rec.Seq == 1 && rec.Prev == ""
	if i > 0 {
		prevOK = hashPrefix(rec.Prev) == c.prefixes[i-1]
	}
	if prevOK {
		v.Seq = rec.Seq
		v.Kind = BadConflict
		v.Msg = fmt.Sprintf("line %d holds another record %d chained to the same predecessor: one of them was inserted or replaced", int(i)+1, rec.Seq)
	}
	return v
}

// hashPrefix is the first 8 bytes of a hex hash (0 if malformed).
func hashPrefix(h string) uint64 {
	if len(h) < 16 {
		return 0
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(h[:16])); err != nil {
		return 0
	}
	return binary.BigEndian.Uint64(b[:])
}

// span names records a..b for messages: "record 5 was" or "records 5–9 were".
func span(a, b uint64) string {
	if b <= a {
		return fmt.Sprintf("record %d was", a)
	}
	return fmt.Sprintf("records %d–%d were", a, b)
}

// onlyTime reports whether ev holds nothing but time t.
func onlyTime(ev Event, t time.Time) bool {
	if !ev.Time.Equal(t) {
		return false
	}
	ev.Time = time.Time{}
	return ev == Event{}
}
