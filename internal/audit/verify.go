package audit

import (
	"cmp"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// VerifyError kinds: what Verify (and Open) found wrong.
const (
	// BadSyntax: the line is not a JSON record, or longer than MaxLineBytes.
	BadSyntax = "syntax"
	// BadCanonical: the line parses but is not the canonical encoding of what it holds
	// (extra or duplicate fields, reordered keys, whitespace): it was edited.
	BadCanonical = "noncanonical"
	// BadHash: the record's hash does not match its contents: a field was edited.
	BadHash = "hash"
	// BadSplice: the record belongs to another log (log id).
	BadSplice = "splice"
	// BadGenesis: the first record is not seq 1 chained from the genesis value (or does not
	// continue VerifyOptions.Continue): records were cut from the start.
	BadGenesis = "genesis"
	// BadGap: the sequence jumps forward: records were deleted.
	BadGap = "gap"
	// BadReorder: records are out of order.
	BadReorder = "reorder"
	// BadDuplicate: a record appears twice.
	BadDuplicate = "duplicate"
	// BadConflict: two different records claim the same seq: one was inserted or replaced.
	BadConflict = "conflict"
	// BadPrev: the record's prev is not the previous record's hash.
	BadPrev = "prev"
	// BadKind: unknown kind, or a kind without (or with a stray) checkpoint payload.
	BadKind = "kind"
	// BadCheckpointHead: a checkpoint does not describe the record before it.
	BadCheckpointHead = "checkpoint-head"
	// BadCheckpointSignature: a checkpoint's signature does not verify under the key: the
	// records it covers were forged or re-chained.
	BadCheckpointSignature = "checkpoint-signature"
	// BadExpectHead: the record at VerifyOptions.ExpectHead.Seq has another hash, or the
	// expected checkpoint itself does not verify.
	BadExpectHead = "expect-head"
	// BadTruncated: the log ends before VerifyOptions.ExpectHead.Seq.
	BadTruncated = "truncated"
	// BadCheckpointSpan: a checkpoint's Span leaves out the time of a record it must cover
	// (one since the previous checkpoint, or its own): the writer that signed it is faulty.
	BadCheckpointSpan = "checkpoint-span"
)

// VerifyError names the first problem Verify found.
type VerifyError struct {
	// Seq is the lowest sequence number in doubt: every record before it is verified (and,
	// up to the last good checkpoint, signed). For a checkpoint failure that is the record
	// after the previous good checkpoint, since any record it covers may be the forged one.
	Seq uint64
	// Line is the 1-based line where the problem was detected (for BadTruncated, one past
	// the last line).
	Line int
	// Kind is one of the Bad* constants.
	Kind string
	// Msg describes the problem.
	Msg string
	// File is the file Line is in (VerifyFiles); "" for Verify.
	File string
}

// Error implements error.
func (e *VerifyError) Error() string {
	where := ""
	if e.File != "" {
		where = e.File + ": "
	}
	return fmt.Sprintf("audit: %sline %d, seq %d: %s: %s", where, e.Line, e.Seq, e.Kind, e.Msg)
}

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// ExpectHead is a checkpoint exported earlier (trusted). Verify fails with BadTruncated
	// if the log ends before its Seq and with BadExpectHead if the record at its Seq has
	// another hash. If it carries a signature, that must verify too.
	ExpectHead *Checkpoint
	// Continue is the trusted head of the previous file when verifying a rotated file on
	// its own; its first record must continue it. (Verifying the files concatenated, e.g.
	// with io.MultiReader, needs no Continue.)
	Continue *Head
	// LogID, if set, is the log id the records must carry.
	LogID string
}

// Report summarizes a verified log.
type Report struct {
	// LogID is the log id the records carry.
	LogID string
	// Records counts the valid records read, checkpoints included.
	Records int
	// Checkpoints counts the valid checkpoint records.
	Checkpoints int
	// LastSeq is the seq of the last valid record (0 if none).
	LastSeq uint64
	// HeadHash is the hash of the last valid record.
	HeadHash string
	// LastCheckpointSeq is the seq of the last valid checkpoint record (0 if none).
	LastCheckpointSeq uint64
	// UnsignedTail counts records after the last checkpoint record, which no signature
	// covers yet. Not an error: the next checkpoint (or an ExpectHead) covers them.
	UnsignedTail int
	// TornBytes is the size of a torn final line (a crash mid-write), not counted as a
	// record and not an error. Open removes it and appends a recovery record.
	TornBytes int64
}

// Verify reads a log from r, recomputes its hash chain, checks every checkpoint signature
// with pub (ed25519.PublicKey or *ecdsa.PublicKey) and returns a report. The error, if any,
// is a *VerifyError naming the first bad record, or a read error; the report then covers the
// records before it.
func Verify(r io.Reader, pub crypto.PublicKey, opts VerifyOptions) (Report, error) {
	c, err := verifyChain(pub, opts)
	if err != nil {
		return Report{}, err
	}
	lr := newLineReader(r)
	_, verr := c.readAll(lr)
	if err := lr.failure(); err != nil {
		return c.report(), fmt.Errorf("audit: read log: %w", err)
	}
	if verr != nil {
		return c.report(), verr
	}
	return c.report(), c.checkEnd(lr.no)
}

// VerifyFiles verifies the files of one log as Verify verifies their concatenation: the
// rotated files oldest first, then the current file (OrderFiles sorts them). Only the last
// file may end in a torn line; errors name the file and the line in it.
func VerifyFiles(paths []string, pub crypto.PublicKey, opts VerifyOptions) (Report, error) {
	if len(paths) == 0 {
		return Report{}, errors.New("audit: no files to verify")
	}
	c, err := verifyChain(pub, opts)
	if err != nil {
		return Report{}, err
	}
	lines := 0
	for i, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return c.report(), fmt.Errorf("audit: %w", err)
		}
		lr := newLineReader(f)
		_, verr := c.readAll(lr)
		ferr := lr.failure()
		f.Close()
		switch {
		case ferr != nil:
			return c.report(), fmt.Errorf("audit: read %s: %w", path, ferr)
		case verr != nil:
			verr.File = path
			return c.report(), verr
		case c.torn != nil && i < len(paths)-1:
			return c.report(), &VerifyError{Seq: c.seq + 1, Line: c.torn.no, Kind: BadSyntax, File: path,
				Msg: "a file followed by another one ends in an incomplete line: it was cut, or the files are out of order"}
		}
		lines = lr.no
	}
	if err := c.checkEnd(lines); err != nil {
		err.(*VerifyError).File = paths[len(paths)-1]
		return c.report(), err
	}
	return c.report(), nil
}

// OrderFiles returns paths sorted by the seq of their first record, so that the files of a
// rotated log, named in any order (a shell glob puts the current file first), are in log
// order; files without a record go last.
func OrderFiles(paths []string) ([]string, error) {
	seqs := make(map[string]uint64, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		lr := newLineReader(f)
		seq := uint64(math.MaxUint64)
		if l := lr.next(); l != nil && !l.nul {
			if seq = peekSeq(l); seq == 0 {
				seq = math.MaxUint64
			}
		}
		err = lr.failure()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", p, err)
		}
		seqs[p] = seq
	}
	out := slices.Clone(paths)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(seqs[a], seqs[b]) })
	return out, nil
}

// verifyChain is the chain Verify and VerifyFiles start with.
func verifyChain(pub crypto.PublicKey, opts VerifyOptions) (*chain, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	c := newChain(pub, opts.LogID)
	c.trackDup = true
	if opts.Continue != nil {
		c.continueFrom(*opts.Continue)
	}
	if exp := opts.ExpectHead; exp != nil && len(exp.Signature) > 0 && !verifySig(pub, exp) {
		return nil, &VerifyError{Seq: c.signedThrough + 1, Line: 0, Kind: BadExpectHead,
			Msg: "the expected checkpoint's signature does not verify under this key"}
	}
	c.expect = opts.ExpectHead
	return c, nil
}

// checkEnd reports a log that ends before the expected checkpoint; lines is the number of
// lines of the (last) file.
func (c *chain) checkEnd(lines int) error {
	if exp := c.expect; exp != nil && c.seq < exp.Seq {
		return &VerifyError{Seq: c.seq + 1, Line: lines + 1, Kind: BadTruncated,
			Msg: fmt.Sprintf("log ends at seq %d but the expected checkpoint covers seq %d: records were cut off", c.seq, exp.Seq)}
	}
	return nil
}
