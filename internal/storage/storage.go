// Package storage owns Coffer's persistence seam: a small transactional key-value interface
// and the errors every backend reports. Backends live in sub-packages (bolt, mem); the
// conformance suite every backend must pass lives in storagetest.
//
// Threat model: storage is untrusted. Everything written through it by the rest of Coffer has
// already been sealed by the barrier (internal/barrier), which is itself a Backend over a
// Backend. A backend must be durable (an acknowledged Put or Txn survives a crash) and atomic
// (a failed Txn leaves nothing behind); it need not be confidential.
//
// This package must not import any other Coffer package.
package storage

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Get when the key holds no value.
var ErrNotFound = errors.New("storage: not found")

// ErrClosed is returned by every operation on a backend after Close.
var ErrClosed = errors.New("storage: backend is closed")

// ErrNoSpace is returned, wrapped with the cause, by a write that failed because the device
// under the backend is full (ENOSPC) or its owner's disk quota is spent (EDQUOT). The write kept nothing; reads go on working, and writes succeed
// again once space is freed, without reopening the backend.
var ErrNoSpace = errors.New("storage: no space left on the storage device")

// ErrUnavailable is returned, wrapped with the cause, by a write that failed because the
// storage itself failed rather than filled up: an I/O error (EIO), a file system that went
// read-only (EROFS), any other error of the operating system, or a database file that was
// deleted, renamed or replaced while the backend had it open. The write kept nothing. A
// backend that reported it answers Ping with an error until a write succeeds again; reads go
// on where the device still serves them. A read that the device fails (or a database file
// truncated under the backend) returns it too, and Ping fails until that read succeeds.
var ErrUnavailable = errors.New("storage: the storage device or file system failed")

// ErrInvalidKey is returned for an empty key or one longer than MaxKeyLen.
var ErrInvalidKey = errors.New("storage: invalid key")

// MaxKeyLen is the longest key a backend must accept, in bytes.
const MaxKeyLen = 1024

// MaxListLimit caps ListOptions.Limit; larger or non-positive limits are clamped to it.
const MaxListLimit = 1000

// ListOptions selects one page of a List.
type ListOptions struct {
	// After is the continuation token: only keys strictly greater than After are returned.
	// Pass the previous Page's Next to get the following page; "" starts at the prefix.
	After string
	// Limit is the page size; 0 or more than MaxListLimit means MaxListLimit.
	Limit int
}

// Page is one page of keys, in ascending byte order.
type Page struct {
	Keys []string
	// Next is the continuation token for the following page, or "" if this is the last one.
	Next string
}

// Reader is the read half shared by a Backend and a Tx.
type Reader interface {
	// Get returns the value stored at key. It returns ErrNotFound if there is none; never
	// (nil, nil). The returned slice belongs to the caller.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys that start with prefix, in ascending order, one page at a time.
	List(ctx context.Context, prefix string, opts ListOptions) (Page, error)
}

// Tx is a read-write view inside one atomic transaction. Reads see the transaction's own
// writes. A Tx must not be used after the function it was passed to returns.
type Tx interface {
	Reader
	// Put stores value at key, replacing any previous value. The value is copied.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Backend is a durable, transactional key-value store.
type Backend interface {
	Reader
	// Put stores value at key durably before returning.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key durably before returning; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Txn runs fn inside one atomic, serialisable transaction and commits it durably if fn
	// returns nil. If fn returns an error nothing it wrote is kept and that error is returned.
	// fn may be called more than once (a backend may retry it, e.g. after a group commit
	// failed for another caller), so it must have no side effects outside tx.
	Txn(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn over a read-only snapshot of the store: every read fn makes sees the store
	// as one committed state, and writes committed meanwhile are not seen. View neither waits
	// for writes to commit nor makes them wait for fn, so a long scan belongs here, not in Txn.
	// It returns fn's error. The Reader must not be used after fn returns.
	View(ctx context.Context, fn func(r Reader) error) error
	// Ping reports whether the backend can serve requests, reads and writes: after a write
	// failed with ErrUnavailable it reports that failure until a write succeeds again, after
	// a read did, until that read succeeds again.
	Ping(ctx context.Context) error
	// Close releases the backend. Operations after Close return ErrClosed.
	Close() error
}

// CheckKey reports ErrInvalidKey for keys no backend accepts.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return ErrInvalidKey
	}
	return nil
}

// ClampLimit returns the effective page size for a requested limit.
func ClampLimit(limit int) int {
	if limit <= 0 || limit > MaxListLimit {
		return MaxListLimit
	}
	return limit
}
