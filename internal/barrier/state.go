package barrier

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Store state (docs/FORMAT.md, "Store state"): one core record, sealed by the keyring like a
// data record, that holds
//
//   - the store generation: a counter advanced by every transaction that writes data
//     records, in the same backend transaction (so it needs no extra fsync);
//   - the number of data records and their store hash, an incremental multiset hash
//     (MSet-XOR-Hash, Clarke et al., ASIACRYPT 2003) over every (logical path, sealed record)
//     pair: the XOR of HMAC-SHA256(hash key, len(path) ‖ path ‖ record), updated by each
//     write with the XOR of the old and the new pair's element.
//
// The hash key is derived from keyring term 1 (which every keyring keeps forever), so the
// backend cannot compute the hash of a set of records it would like the store to hold. A
// full scan at unseal (and Barrier.Verify) recomputes count and hash from the records: a
// record rolled back to its own older ciphertext, deleted, added, or restored from another
// copy of the store no longer matches. A whole store restored from an old copy matches its
// own (old) state record; its generation is then compared with the one kept outside the
// store (GenerationAnchor).

// storeStatePath holds the store state record (a core record, term ≠ 0).
const storeStatePath = corePrefix + "store-state"

// storeStateMagic starts the plaintext of a store state record, version 1.
const storeStateMagic = "coffer-store-state/v1\x00"

// storeStateLen is the plaintext length: magic ‖ generation ‖ count ‖ hash.
const storeStateLen = len(storeStateMagic) + 8 + 8 + sha256.Size

// hashKeyInfo is the HKDF-SHA256 info that derives the store hash key from term 1's key.
const hashKeyInfo = "coffer/barrier/store-hash/v1"

// ErrRollback is wrapped by the error of an unseal that found the store older than the
// generation recorded outside it.
var ErrRollback = errors.New("barrier: the store is older than its last recorded generation")

// storeState is the decoded store state record.
type storeState struct {
	gen   uint64
	count uint64
	hash  [sha256.Size]byte
}

func (s *storeState) marshal() []byte {
	b := make([]byte, 0, storeStateLen)
	b = append(b, storeStateMagic...)
	b = binary.BigEndian.AppendUint64(b, s.gen)
	b = binary.BigEndian.AppendUint64(b, s.count)
	return append(b, s.hash[:]...)
}

func parseStoreState(b []byte) (storeState, error) {
	if len(b) != storeStateLen || !strings.HasPrefix(string(b), storeStateMagic) {
		return storeState{}, fmt.Errorf("%w: store state record %s is not a version 1 store state (%d bytes)", ErrIntegrity, storeStatePath, len(b))
	}
	b = b[len(storeStateMagic):]
	s := storeState{gen: binary.BigEndian.Uint64(b), count: binary.BigEndian.Uint64(b[8:])}
	copy(s.hash[:], b[16:])
	return s, nil
}

// deriveHashKey returns the store hash key of a keyring whose term 1 key is term1.
func deriveHashKey(term1 []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, term1, nil, hashKeyInfo, 32)
}

// element returns the multiset hash element of the pair (path, record).
func (kr *keyring) element(path string, record []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, kr.hashKey)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(path)))
	m.Write(n[:])
	m.Write([]byte(path))
	m.Write(record)
	var e [sha256.Size]byte
	m.Sum(e[:0])
	return e
}

// add puts the pair (path, record) into the multiset hash; remove takes it out.
func (s *storeState) add(kr *keyring, path string, record []byte) {
	e := kr.element(path, record)
	subtle.XORBytes(s.hash[:], s.hash[:], e[:])
	s.count++
}

func (s *storeState) remove(kr *keyring, path string, record []byte) {
	e := kr.element(path, record)
	subtle.XORBytes(s.hash[:], s.hash[:], e[:])
	s.count--
}

// matches reports whether s and o hold the same records, in constant time.
func (s *storeState) matches(o storeState) bool {
	return s.count == o.count && subtle.ConstantTimeCompare(s.hash[:], o.hash[:]) == 1
}

// loadState reads and opens the store state record; found is false if there is none.
func loadState(ctx context.Context, r storage.Reader, kr *keyring) (st storeState, found bool, err error) {
	rec, err := r.Get(ctx, storeStatePath)
	if errors.Is(err, storage.ErrNotFound) {
		return storeState{}, false, nil
	}
	if err != nil {
		return storeState{}, false, fmt.Errorf("read store state %s: %w", storeStatePath, err)
	}
	pt, err := kr.open(storeStatePath, rec)
	if err != nil {
		return storeState{}, true, err
	}
	st, err = parseStoreState(pt)
	return st, true, err
}

// putState seals st and writes it in tx.
func putState(ctx context.Context, tx storage.Tx, kr *keyring, st storeState) error {
	rec, err := kr.seal(storeStatePath, st.marshal())
	if err != nil {
		return err
	}
	return tx.Put(ctx, storeStatePath, rec)
}

// maxNamedDamage bounds the damaged records a scan names.
const maxNamedDamage = 5

// scanResult is what a full scan of the data records found.
type scanResult struct {
	state   storeState // count and hash of the records as they are
	damaged []string   // records that failed to open (the first maxNamedDamage)
	nDamage int
}

// scan reads every data record in r, opens it (so a damaged record is named) and
// recomputes the count and hash of the records as they are.
func scan(ctx context.Context, r storage.Reader, kr *keyring) (scanResult, error) {
	var res scanResult
	opts := storage.ListOptions{}
	for {
		page, err := r.List(ctx, dataPrefix, opts)
		if err != nil {
			return res, fmt.Errorf("scan the store: %w", err)
		}
		for _, k := range page.Keys {
			rec, err := r.Get(ctx, k)
			if err != nil {
				return res, fmt.Errorf("scan the store: read %s: %w", k, err)
			}
			path := strings.TrimPrefix(k, dataPrefix)
			res.state.add(kr, path, rec)
			if pt, err := kr.open(path, rec); err != nil {
				if res.nDamage < maxNamedDamage {
					res.damaged = append(res.damaged, path)
				}
				res.nDamage++
			} else {
				clear(pt)
			}
		}
		if page.Next == "" {
			return res, nil
		}
		opts.After = page.Next
	}
}

// check compares a scan with the stored state and explains a mismatch.
func (res scanResult) check(stored storeState) error {
	if res.nDamage > 0 {
		return fmt.Errorf("%w: %d records fail their integrity check (%s): they were modified, truncated or moved by someone without the keys; restore the store from a backup (docs/OPERATOR.md, \"Store integrity\")",
			ErrIntegrity, res.nDamage, quoteList(res.damaged, res.nDamage))
	}
	if !res.state.matches(stored) {
		return fmt.Errorf("%w: the store's records do not match its store state (generation %d: %d records recorded, %d found): a record was rolled back to an older version of itself, deleted, or added outside Coffer; restore the whole store from a backup, or, to serve it as it is, start once with the setting \"accept-store-rollback\" (docs/OPERATOR.md, \"Store integrity\")",
			ErrIntegrity, stored.gen, stored.count, res.state.count)
	}
	return nil
}

func quoteList(names []string, total int) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	s := strings.Join(q, ", ")
	if total > len(names) {
		s += fmt.Sprintf(" and %d more", total-len(names))
	}
	return s
}

// Generation returns the store generation of the last write this Barrier committed (or
// found at unseal); 0 while sealed.
func (b *Barrier) Generation() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.kr == nil {
		return 0
	}
	return b.gen
}

// noteGeneration records that gen was committed.
func (b *Barrier) noteGeneration(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen > b.gen {
		b.gen = gen
	}
}

// Verify scans every data record of the unsealed store in one read-only snapshot of the
// backend (writes go on meanwhile; the snapshot holds the store state record and the records
// as one commit left them) and checks each record and the store hash against the store
// state. It returns the generation checked, and an error wrapping ErrIntegrity that names
// what is wrong.
func (b *Barrier) Verify(ctx context.Context) (uint64, error) {
	kr, err := b.keyring()
	if err != nil {
		return 0, err
	}
	var gen uint64
	err = b.backend.View(ctx, func(r storage.Reader) error {
		stored, found, err := loadState(ctx, r, kr)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: the store has no store state record %s (it is written at unseal): it was deleted", ErrIntegrity, storeStatePath)
		}
		res, err := scan(ctx, r, kr)
		if err != nil {
			return err
		}
		gen = stored.gen
		return res.check(stored)
	})
	return gen, err
}
