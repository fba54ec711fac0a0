// Package records holds the storage plumbing shared by the versioned objects of a vault
// (keys, secrets, certificates): JSON records, whole-prefix listings, version ids, soft-delete
// retention and recovery levels, the due-time schedule index, sealed backup blobs, and
// Objects (objects.go), the record layout and lifecycle the three kinds share (read, list,
// soft delete, recover, remove), and PurgeClock (purgeclock.go), which holds purges when the
// clock jumps forward. It imports none of those kinds. The records these helpers
// read and write carry key material and secret values, so the store they are given is always
// the barrier.
package records

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Get reads and decodes the JSON record at key; found is false if there is none. Errors name
// the path only, never the record's content.
func Get(ctx context.Context, r storage.Reader, key string, v any) (found bool, err error) {
	b, err := r.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	defer clear(b)
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: record is damaged", key)
	}
	return true, nil
}

// Put encodes v as JSON and writes it at key.
func Put(ctx context.Context, tx storage.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: record cannot be encoded", key)
	}
	defer clear(b)
	return tx.Put(ctx, key, b)
}

// ListAll returns every key under prefix, reading page by page.
func ListAll(ctx context.Context, r storage.Reader, prefix string) ([]string, error) {
	var out []string
	opts := storage.ListOptions{}
	for {
		page, err := r.List(ctx, prefix, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Keys...)
		if page.Next == "" {
			return out, nil
		}
		opts.After = page.Next
	}
}

// DeleteAll deletes the given keys in tx, skipping empty ones.
func DeleteAll(ctx context.Context, tx storage.Tx, keys ...string) error {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := tx.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// NewVersion returns a fresh random version id: 32 lower-case hex digits.
func NewVersion() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("records: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Retention is a vault's soft-delete retention in days (90 when unset).
func Retention(v tenancy.Vault) int {
	if v.SoftDeleteRetention <= 0 {
		return 90
	}
	return v.SoftDeleteRetention
}

// RecoveryLevel is the DeletionRecoveryLevel of a vault's objects: Recoverable, prefixed
// with Customized below 90 days of retention, suffixed with +Purgeable without purge
// protection.
func RecoveryLevel(v tenancy.Vault) string {
	level := "Recoverable"
	if Retention(v) < 90 {
		level = "CustomizedRecoverable"
	}
	if !v.PurgeProtection {
		level += "+Purgeable"
	}
	return level
}

// ScheduleKey is the schedule index key of an object due at the unix time due:
// <prefix><due, 20 digits>/<path>. Listing the prefix yields entries in due order.
func ScheduleKey(prefix string, due int64, path string) string {
	if due < 0 {
		due = 0
	}
	return fmt.Sprintf("%s%020d/%s", prefix, due, path)
}

// DueOf parses the due time of a schedule index key.
func DueOf(prefix, key string) (int64, bool) {
	ts, _, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
	if !ok || len(ts) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	return n, err == nil
}

// EachDue calls fn for every schedule entry under prefix due at or before now, in due order,
// with its decoded value. A damaged entry is deleted rather than allowed to stop the
// scheduler for good. fn's error stops the walk.
func EachDue[E any](ctx context.Context, store storage.Backend, prefix string, now time.Time, fn func(key string, e E) error) error {
	opts := storage.ListOptions{Limit: 100}
	for {
		page, err := store.List(ctx, prefix, opts)
		if err != nil {
			return err
		}
		for _, key := range page.Keys {
			due, ok := DueOf(prefix, key)
			if ok && due > now.Unix() {
				return nil
			}
			var e E
			found, err := Get(ctx, store, key, &e)
			if err != nil || !ok {
				if err := store.Delete(ctx, key); err != nil {
					return err
				}
				continue
			}
			if !found {
				continue
			}
			if err := fn(key, e); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		opts.After = page.Next
	}
}

// Backup blobs. Version 2, written now: 0x02 ‖ salt (32 bytes) ‖ nonce (12 bytes), both
// from crypto/rand ‖ AES-256-GCM(HKDF-SHA256(key, salt, blobKeyInfo), nonce, plain, aad).
// Each blob is sealed under a key of its own, so the installation-wide key never meets
// NIST SP 800-38D's limit of 2^32 random-nonce invocations per key (SECURITY-NOTES C4),
// however many backups callers ask for. Version 1 (0x01 ‖ nonce ‖ AES-256-GCM(key, nonce,
// plain, aad)), written before, still opens, so older backups restore.
const (
	blobVersion1 = 1
	blobVersion2 = 2
	blobSaltLen  = 32
	blobNonceLen = 12
	blobKeyInfo  = "coffer/records/backup-blob/v2"
)

// ErrBlob is the one error of every blob that does not open.
var ErrBlob = errors.New("records: the blob does not open")

// Sealer seals and opens backup blobs with one installation-wide key.
type Sealer struct {
	key []byte
	v1  cipher.AEAD // opens version 1 blobs
}

// NewSealer returns a Sealer for a 32-byte key, or nil for a key of another length (backup
// and restore are then unavailable).
func NewSealer(key []byte) *Sealer {
	if len(key) != 32 {
		return nil
	}
	v1, err := newGCM(key)
	if err != nil {
		return nil
	}
	return &Sealer{key: append([]byte(nil), key...), v1: v1}
}

// newGCM returns AES-GCM with a 12-byte nonce under key.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// blobAEAD returns the AEAD of the version 2 blob whose salt is salt.
func (s *Sealer) blobAEAD(salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, s.key, salt, blobKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(k)
}

// Overhead is the most bytes a blob adds to its plaintext.
func (s *Sealer) Overhead() int { return 1 + blobSaltLen + blobNonceLen + s.v1.Overhead() }

// Seal encrypts plain into a version 2 blob bound to aad.
func (s *Sealer) Seal(plain, aad []byte) ([]byte, error) {
	blob := make([]byte, 1+blobSaltLen+blobNonceLen, len(plain)+s.Overhead())
	blob[0] = blobVersion2
	if _, err := rand.Read(blob[1:]); err != nil {
		return nil, fmt.Errorf("records: salt and nonce: %w", err)
	}
	aead, err := s.blobAEAD(blob[1 : 1+blobSaltLen])
	if err != nil {
		return nil, fmt.Errorf("records: blob key: %w", err)
	}
	return aead.Seal(blob, blob[1+blobSaltLen:], plain, aad), nil
}

// Open authenticates and decrypts a blob bound to aad; any failure is ErrBlob. The caller
// clears the plaintext when done.
func (s *Sealer) Open(blob, aad []byte) ([]byte, error) {
	if len(blob) == 0 {
		return nil, ErrBlob
	}
	var (
		aead cipher.AEAD
		rest []byte
	)
	switch {
	case blob[0] == blobVersion2 && len(blob) >= s.Overhead():
		a, err := s.blobAEAD(blob[1 : 1+blobSaltLen])
		if err != nil {
			return nil, ErrBlob
		}
		aead, rest = a, blob[1+blobSaltLen:]
	case blob[0] == blobVersion1 && len(blob) >= 1+blobNonceLen+s.v1.Overhead():
		aead, rest = s.v1, blob[1:]
	default:
		return nil, ErrBlob
	}
	plain, err := aead.Open(nil, rest[:blobNonceLen], rest[blobNonceLen:], aad)
	if err != nil {
		return nil, ErrBlob
	}
	return plain, nil
}

// ReadAll decodes every record under prefix, in key order (a backup's versions).
func ReadAll[T any](ctx context.Context, r storage.Reader, prefix string) ([]T, error) {
	keys, err := ListAll(ctx, r, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, key := range keys {
		var v T
		if found, err := Get(ctx, r, key, &v); err != nil || !found {
			return nil, errors.Join(err, fmt.Errorf("record %s vanished", key))
		}
		out = append(out, v)
	}
	return out, nil
}

// MaxResults is Key Vault's largest page (maxresults 1–25; 0 means 25).
const MaxResults = 25

// ErrPage is wrapped by PageNames' refusals of a listing request; each domain reports it
// as its own BadParameter.
var ErrPage = errors.New("records: bad listing request")

// PageNames reads one page of a Key Vault listing: the names (suffixes) under prefix that
// valid accepts, after skipToken, at most maxResults of them (0 means MaxResults). A
// maxresults out of range or a skip token valid refuses is an ErrPage naming it.
func PageNames(ctx context.Context, r storage.Reader, prefix string, maxResults int, skipToken string, valid func(string) bool) ([]string, string, error) {
	limit := maxResults
	if limit == 0 {
		limit = MaxResults
	}
	if limit < 1 || limit > MaxResults {
		return nil, "", fmt.Errorf("%w: maxresults %d is outside 1-%d.", ErrPage, maxResults, MaxResults)
	}
	if skipToken != "" && !valid(skipToken) {
		return nil, "", fmt.Errorf("%w: $skiptoken is invalid: pass the nextLink of the previous page unchanged.", ErrPage)
	}
	return storage.PageSuffixes(ctx, r, prefix, limit, skipToken, valid)
}

// PageMessage is the client's message of an ErrPage (without the sentinel's prefix), the
// same for keys, secrets and certificates.
func PageMessage(err error) string {
	return strings.TrimPrefix(err.Error(), ErrPage.Error()+": ")
}
