// Package audit owns Coffer's audit trail: the Event callers fill for every request, the
// tamper-evident log those events are appended to (a hash chain of JSON lines with signed
// checkpoints interleaved), the verifier that recomputes the chain and names the first bad
// record, and the tenant-scoped query over a log.
//
// # Format (version 1)
//
// A log is a file of JSON lines, one Record per line, written with mode 0600 and only ever
// appended to (plus zero padding while open, see below). Each record is the canonical JSON of the Record struct (encoding/json, fields
// in struct order) and carries:
//
//   - seq: 1, 2, 3, … with no gaps (a rotated file continues the previous file's numbers);
//   - log: the log id, fixed for the life of the log and carried into rotated files;
//   - prev: the hash of the previous record ("" for seq 1);
//   - hash: hex SHA-256(h ‖ canonical JSON of the record without its hash field), where h is
//     prev, or for seq 1 the genesis value hex SHA-256("coffer-audit-v1 genesis\n" ‖ log).
//
// Records have a kind: "event" (an Event), "checkpoint" (a Checkpoint signed by a key the
// caller keeps outside the log: every Options.CheckpointEvery records, every
// Options.CheckpointInterval, on Close and on demand) or "recovery" (written by Open after it
// removed a torn final line). The checkpoint at seq n covers record n-1: its signature is
// over (log id, n-1, hash of record n-1, time), see Checkpoint. A checkpoint may carry a
// span, the earliest and latest time of its file's records through its own; its signature
// then covers the span too (Checkpoint.SignedMessage, v2), and Verify checks that the span
// holds the times of the records since the previous checkpoint. The writer adds one whenever
// it has seen the whole file, so each rotated file's closing checkpoint bounds the file and
// Log.OpenFiles leaves out, unread, the rotated files a query's time range misses. (Record
// times are the callers' request times, not in log order, hence a span rather than the
// first and last record's times.) Files from before spans verify as they did; a verifier
// from before spans takes a checkpoint with one for an edited record.
//
// # Failure rule: no unaudited operation
//
// Append returns only after the record is written and fsynced (group commit: one goroutine
// writes every pending record at once and syncs them, so concurrent callers share a write
// and a sync; the sync runs outside the commit slot, so AppendLazy's records — reads — are
// written meanwhile and never wait for another caller's sync). If Append returns an error the caller must fail its request before anything is
// done or returned — an operation that cannot be audited does not happen (Vault's rule).
// Failures are counted by Log.Failures for the audit_failures_total metric. After a failed
// write, or a failed sync of records no caller was released for, the log truncates the file
// back to its last good length, so the chain on disk stays valid and later appends continue
// it; a failed sync of records a caller was released for (AppendLazy, SyncInterval) makes
// the log refuse every later record.
//
// # Imports
//
// This package imports only the Go standard library and internal/jsonenc (itself standard
// library only). It must never import net/http or any other Coffer package: the api layer
// builds Events, the server wires a Log.
//
// # Threat model
//
// Whoever can write the log file (an operator with root, a compromised host, a backup
// restored by mistake) is the adversary; the checkpoint signing key is not available to them
// (it is sealed by the barrier or held by an HSM, never stored beside the log). Verify
// detects, and names the first sequence number in doubt for, an edited field (hash
// mismatch), a deleted record (sequence gap), reordered, duplicated or inserted records,
// records spliced in from another log (log id), a re-chained log (every record rehashed: the
// checkpoint signatures no longer verify) and truncation (against a checkpoint exported
// earlier, VerifyOptions.ExpectHead). Without an exported checkpoint, records after the last
// checkpoint are reported as an unsigned tail: a writer could have altered or dropped them
// undetectably, which is why checkpoints should be exported off the host regularly.
//
// Open refuses to continue a log with a bad record. With Options.VerifyFromCheckpoint (the
// server's choice, so that unsealing does not slow down as the log grows) it reads only from
// the last checkpoint whose signature verifies; an edit before it is found by Verify
// (`coffer audit verify`), which always reads the whole log.
//
// Rotation (Options.MaxFileBytes, rotate.go): a full file is closed with a checkpoint and
// renamed to <path>.000001, .000002, …; the new file at path continues the chain. The files
// are one log: VerifyFiles checks them together (OrderFiles puts them in order), Verify
// with VerifyOptions.Continue one alone, and Log.OpenFiles reads those a Query may need.
//
// A torn final line (a crash in the middle of a write) is not tampering: Open removes it and
// appends a "recovery" record saying how many bytes were removed; Verify reports it in
// Report.TornBytes. Only the final line can be torn; any other unparsable line is an error.
//
// While a log is open its file also holds zero bytes after the last record: the writer
// extends the file in PreallocBytes steps so that each group commit is an overwrite plus
// fdatasync rather than an append plus fsync (prealloc.go). No record holds a NUL byte, so
// readers stop at the first one; everything from the line holding it on is padding (ignored)
// or, if it holds other bytes, what a crash left of an unsynced write (torn, as above).
// Acknowledged records were synced before the first NUL could follow them, so this never
// drops one. Close and Open cut the padding away.
//
// Confidentiality: records never hold a secret value, key material, plaintext or token.
// Callers that must correlate a sensitive string (a token id, a client secret) record
// Log.HMAC(s), an HMAC-SHA256 under a per-log key the caller keeps sealed, as Vault does; the
// audit file alone does not reveal the string. Reason is short free text for humans and must
// never contain secrets. Audit files reveal who did what to which object, so they are 0600
// and tenants see only their own records through Query.
package audit
