package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Record kinds.
const (
	// KindEvent is a record holding a caller's Event.
	KindEvent = "event"
	// KindCheckpoint is a record holding a signed Checkpoint of the record before it.
	KindCheckpoint = "checkpoint"
	// KindRecovery is the record Open appends after removing a torn final line.
	KindRecovery = "recovery"
)

// Record is one line of a log: an Event (empty but for Time in a checkpoint) with its place
// in the hash chain. Field order is the canonical order hashed (see the package doc).
type Record struct {
	// Seq is the record's sequence number: 1 for the first record of a log, then +1.
	Seq uint64 `json:"seq"`
	// Kind is KindEvent, KindCheckpoint or KindRecovery.
	Kind string `json:"kind"`
	// LogID identifies the log the record belongs to.
	LogID string `json:"log"`
	// Prev is the Hash of record Seq-1, or "" for Seq 1 (chained from the genesis value).
	Prev string `json:"prev"`
	Event
	// Checkpoint is set in checkpoint records only.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Hash is hex SHA-256(Prev or genesis ‖ canonical JSON of the record without Hash).
	Hash string `json:"hash,omitempty"`
}

// Checkpoint is a signed statement that record Seq of log LogID has hash HeadHash. Export
// checkpoints off the host (Log.Checkpoint returns one) and hand one to Verify as
// VerifyOptions.ExpectHead to detect truncation.
type Checkpoint struct {
	// LogID is the log the checkpoint belongs to.
	LogID string `json:"log"`
	// Seq is the sequence number of the last record covered.
	Seq uint64 `json:"seq"`
	// HeadHash is the hash of record Seq (the genesis value if Seq is 0).
	HeadHash string `json:"head"`
	// Time is when the checkpoint was made.
	Time time.Time `json:"time"`
	// Span, when set, bounds the Time of every record of the file the checkpoint is in, from
	// the file's first record through the checkpoint record itself. The writer sets it
	// whenever it has seen all of them (not in a file begun by a version without spans), so
	// the closing checkpoint of a rotated file bounds the whole file and Log.OpenFiles can
	// leave out files a query's time range misses. It is signed with the rest.
	Span *Span `json:"span,omitempty"`
	// Signature is over SignedMessage, by the Options.Signer key: Ed25519 over the message,
	// or ECDSA (ASN.1) over its SHA-256.
	Signature []byte `json:"sig"`
}

// Span is the earliest and latest Time of a run of records.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Misses reports whether no time in s is in [since, until) (a zero bound is open).
func (s Span) Misses(since, until time.Time) bool {
	return !since.IsZero() && s.To.Before(since) || !until.IsZero() && !s.From.Before(until)
}

// SignedMessage returns the bytes a checkpoint signature covers:
// "coffer-audit-checkpoint-v1\n" ‖ log ‖ "\n" ‖ decimal seq ‖ "\n" ‖ head ‖ "\n" ‖ RFC 3339 time (UTC),
// or for a checkpoint with a Span "coffer-audit-checkpoint-v2\n" ‖ the same fields ‖ "\n" ‖
// span from ‖ "\n" ‖ span to (RFC 3339, UTC).
func (c *Checkpoint) SignedMessage() []byte {
	var b bytes.Buffer
	if c.Span == nil {
		b.WriteString("coffer-audit-checkpoint-v1\n")
	} else {
		b.WriteString("coffer-audit-checkpoint-v2\n")
	}
	b.WriteString(c.LogID)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Seq, 10))
	b.WriteByte('\n')
	b.WriteString(c.HeadHash)
	b.WriteByte('\n')
	b.WriteString(c.Time.UTC().Format(time.RFC3339Nano))
	if c.Span != nil {
		b.WriteByte('\n')
		b.WriteString(c.Span.From.UTC().Format(time.RFC3339Nano))
		b.WriteByte('\n')
		b.WriteString(c.Span.To.UTC().Format(time.RFC3339Nano))
	}
	return b.Bytes()
}

// fileSpan accumulates the Span of a file's records as a writer or reader goes through
// them. known is false when records it has not seen may precede (a file continued from a
// checkpoint without a span): it then claims no span.
type fileSpan struct {
	known, any bool
	from, to   time.Time
}

// add widens the span to t.
func (f *fileSpan) add(t time.Time) {
	if !f.any || t.Before(f.from) {
		f.from = t
	}
	if !f.any || t.After(f.to) {
		f.to = t
	}
	f.any = true
}

// span is the span to put in a checkpoint: nil unless known.
func (f *fileSpan) span() *Span {
	if !f.known || !f.any {
		return nil
	}
	return &Span{From: f.from, To: f.to}
}

// startAt makes f the span a checkpoint's record states, to be widened by the records after
// it: unknown if the checkpoint has none.
func (f *fileSpan) startAt(cp *Checkpoint) {
	*f = fileSpan{}
	if cp != nil && cp.Span != nil {
		*f = fileSpan{known: true, any: true, from: cp.Span.From, to: cp.Span.To}
	}
}

// Head is the end of a log's chain: the sequence number and hash of its last record. Pass a
// closed log's Head as Options.Continue to continue the chain in a new file (rotation).
type Head struct {
	// LogID identifies the log.
	LogID string `json:"log"`
	// Seq is the last record's sequence number (0 for an empty log).
	Seq uint64 `json:"seq"`
	// Hash is the last record's hash (the genesis value for an empty log).
	Hash string `json:"hash"`
}

// genesis is the value the record with seq 1 is chained from.
func genesis(logID string) string {
	sum := sha256.Sum256([]byte("coffer-audit-v1 genesis\n" + logID))
	return hex.EncodeToString(sum[:])
}

// canonical returns the canonical JSON of r without its hash.
func canonical(r *Record) ([]byte, error) {
	c := *r
	c.Hash = ""
	return json.Marshal(&c)
}

// chainHash is hex SHA-256(prev ‖ canon).
func chainHash(prev string, canon []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// encodeLine fills in r.Hash given the hash h of the previous record (the genesis value for
// seq 1) and appends r's line, with its newline, to dst.
func encodeLine(dst []byte, r *Record, h string) ([]byte, error) {
	canon, err := canonical(r)
	if err != nil {
		return dst, err
	}
	r.Hash = chainHash(h, canon)
	dst = append(dst, canon[:len(canon)-1]...)
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, r.Hash...)
	dst = append(dst, "\"}\n"...)
	return dst, nil
}

// encodeEventLine is encodeLine for a record without a checkpoint whose Event is already
// encoded (evJSON = json.Marshal(&r.Event)), producing the same bytes: the record's canonical
// JSON is its four chain fields followed by the embedded Event's fields, and Event always
// starts with "time" (never omitted). The chain fields need no escaping: the kind is a
// constant, the log id is [A-Za-z0-9._-] (checkLogID) and prev is hex or empty.
func encodeEventLine(dst []byte, r *Record, evJSON []byte, h string) []byte {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"kind":"`...)
	dst = append(dst, r.Kind...)
	dst = append(dst, `","log":"`...)
	dst = append(dst, r.LogID...)
	dst = append(dst, `","prev":"`...)
	dst = append(dst, r.Prev...)
	dst = append(dst, `",`...)
	dst = append(dst, evJSON[1:]...)
	r.Hash = chainHash(h, dst[start:])
	dst = dst[:len(dst)-1] // the closing brace
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, r.Hash...)
	return append(dst, "\"}\n"...)
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// errKeyType is returned for checkpoint keys other than Ed25519 and ECDSA.
var errKeyType = errors.New("audit: checkpoint key must be Ed25519 or ECDSA")

// checkSigner reports whether s has a key type checkpoints can be signed with.
func checkSigner(s crypto.Signer) error {
	if s == nil {
		return errors.New("audit: Options.Signer is required (the checkpoint signing key)")
	}
	switch s.Public().(type) {
	case ed25519.PublicKey, *ecdsa.PublicKey:
		return nil
	default:
		return fmt.Errorf("%w, not %T", errKeyType, s.Public())
	}
}

// sign sets c.Signature.
func sign(s crypto.Signer, c *Checkpoint) error {
	msg := c.SignedMessage()
	var sig []byte
	var err error
	switch s.Public().(type) {
	case ed25519.PublicKey:
		sig, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = s.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		err = errKeyType
	}
	if err != nil {
		return fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	c.Signature = sig
	return nil
}

// verifySig reports whether c.Signature is valid under pub.
func verifySig(pub crypto.PublicKey, c *Checkpoint) bool {
	msg := c.SignedMessage()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, c.Signature)
	case *ed25519.PublicKey:
		return k != nil && len(*k) == ed25519.PublicKeySize && ed25519.Verify(*k, msg, c.Signature)
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return false
		}
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, d[:], c.Signature)
	default:
		return false
	}
}

// checkPublicKey reports whether Verify can check checkpoints with pub.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *ed25519.PublicKey:
		if k != nil && len(*k) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil {
			return nil
		}
	case nil:
		return errors.New("audit: Verify needs the checkpoint public key")
	}
	return fmt.Errorf("%w, not %T", errKeyType, pub)
}
