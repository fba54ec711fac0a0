// Package barrier owns encryption at rest: every value the rest of Coffer stores passes
// through the Barrier, which seals it with AES-256-GCM under the active term of a keyring and
// binds it to its storage path, and the seal Manager, which keeps that keyring sealed by a
// root key that never touches disk in the clear (Shamir unseal shares, or an auto-unseal
// wrapper such as an HSM key).
//
// Threat model: the storage backend and anyone who can read or write it are untrusted. They
// may read, flip bytes in, truncate, delete, copy or swap records; the barrier detects every
// such change on read (never returns wrong plaintext) and names the record. A record rolled
// back to an older value sealed for the same path, a deleted record, or a whole store
// restored from an older copy, are detected by the store state (state.go): at unseal, by
// Verify, and against a generation kept outside the store (GenerationAnchor); see
// docs/FORMAT.md for what stays undetectable without that outside state.
//
// This package imports only internal/storage and internal/shamir of Coffer's packages; it must
// never import net/http.
package barrier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/coffer-kms/coffer/internal/storage"
)

// ErrSealed is returned by every data operation while the barrier is sealed.
var ErrSealed = errors.New("coffer is sealed: unseal it with `coffer operator unseal`")

// dataPrefix is where sealed records live in the physical backend; corePrefix holds the
// seal configuration, the wrapped root key and the sealed keyring.
const (
	dataPrefix = "d/"
	corePrefix = "core/"
)

// MaxKeyLen is the longest logical key the barrier accepts: the backend's limit less the
// prefix the barrier adds.
const MaxKeyLen = storage.MaxKeyLen - len(dataPrefix)

// checkKey is storage.CheckKey for logical keys.
func checkKey(key string) error {
	if len(key) > MaxKeyLen {
		return storage.ErrInvalidKey
	}
	return storage.CheckKey(key)
}

// Barrier is a storage.Backend over a storage.Backend that seals every value.
type Barrier struct {
	backend storage.Backend

	mu     sync.RWMutex
	kr     *keyring // nil while sealed
	closed bool

	cache readCache // off unless EnableReadCache

	gen uint64 // store generation last committed or found at unseal (guarded by mu)

	// limits bound the seals of a keyring term, and rotate (set by the Manager) rotates
	// the keyring when the active term has sealed used records (sealcount.go).
	limits sealLimits
	rotate func(ctx context.Context, term uint32, used uint64) error
}

var _ storage.Backend = (*Barrier)(nil)

// New returns a sealed Barrier over backend. Only a Manager unseals it.
func New(backend storage.Backend) *Barrier {
	return &Barrier{backend: backend, limits: defaultSealLimits}
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.kr == nil
}

// ActiveTerm returns the keyring term that seals new records, or 0 while sealed.
func (b *Barrier) ActiveTerm() uint32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.kr == nil {
		return 0
	}
	return b.kr.active
}

// setKeyring installs kr (nil seals). It returns the previous keyring.
func (b *Barrier) setKeyring(kr *keyring) *keyring {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.kr
	b.kr = kr
	if kr == nil {
		b.gen = 0 // sealed: the next unseal finds the generation again
	}
	b.cache.reset()
	return old
}

func (b *Barrier) keyring() (*keyring, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, storage.ErrClosed
	}
	if b.kr == nil {
		return nil, ErrSealed
	}
	return b.kr, nil
}

// seal encrypts value for the logical path key. It is errNoReservation when the term's
// reserved seals are used up (sealcount.go).
func (kr *keyring) seal(key string, value []byte) ([]byte, error) {
	if !kr.count.take() {
		return nil, errNoReservation
	}
	return sealRecord(kr.aeads[kr.active], kr.active, key, value)
}

// open decrypts the record stored for the logical path key.
func (kr *keyring) open(key string, record []byte) ([]byte, error) {
	term, err := recordTerm(key, record)
	if err != nil {
		return nil, err
	}
	aead := kr.aead(term)
	if aead == nil {
		return nil, fmt.Errorf("%w: record %q is sealed with keyring term %d, which this keyring does not have", ErrIntegrity, key, term)
	}
	return openRecord(aead, key, record)
}

// rotatedSince reports whether the keyring was replaced since kr was taken (a rotation;
// sealing too, but the next keyring call reports that).
func (b *Barrier) rotatedSince(kr *keyring) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.kr != kr && b.kr != nil
}

// Get opens the record at key.
func (b *Barrier) Get(ctx context.Context, key string) ([]byte, error) {
	kr, err := b.keyring()
	if err != nil {
		return nil, err
	}
	if v, ok := b.cache.get(key); ok {
		return v, nil
	}
	gen, caching := b.cache.generation()
	v, err := getSealed(ctx, b.backend, kr, key)
	if errors.Is(err, ErrIntegrity) && b.rotatedSince(kr) {
		// Sealed by a term made after kr was taken: open it with the new keyring.
		return b.Get(ctx, key)
	}
	if err == nil && caching {
		b.cache.fill(key, v, gen)
	}
	return v, err
}

func getSealed(ctx context.Context, r storage.Reader, kr *keyring, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	rec, err := r.Get(ctx, dataPrefix+key)
	if err != nil {
		return nil, err
	}
	return kr.open(key, rec)
}

// List lists logical keys; it reads no record, so it works on damaged records too.
func (b *Barrier) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	if _, err := b.keyring(); err != nil {
		return storage.Page{}, err
	}
	return listLogical(ctx, b.backend, prefix, opts)
}

func listLogical(ctx context.Context, r storage.Reader, prefix string, opts storage.ListOptions) (storage.Page, error) {
	if opts.After != "" {
		opts.After = dataPrefix + opts.After
	}
	p, err := r.List(ctx, dataPrefix+prefix, opts)
	if err != nil {
		return storage.Page{}, err
	}
	for i, k := range p.Keys {
		p.Keys[i] = strings.TrimPrefix(k, dataPrefix)
	}
	p.Next = strings.TrimPrefix(p.Next, dataPrefix)
	return p, nil
}

// Put seals value for key and stores it durably, with the store state (state.go) in the
// same transaction.
func (b *Barrier) Put(ctx context.Context, key string, value []byte) error {
	return b.Txn(ctx, func(tx storage.Tx) error { return tx.Put(ctx, key, value) })
}

// Delete removes key durably.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	return b.Txn(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, key) })
}

// maxTxnAttempts bounds the attempts of a Txn that rotations or used-up reservations cut
// short (in practice one more: a term rotates every ~3.9 billion seals, reservations come
// in blocks of 2^20).
const maxTxnAttempts = 10

// Txn runs fn in one atomic transaction of the underlying backend, sealing every write. A
// transaction that writes also advances the store generation and updates the store hash, in
// the same backend transaction. Before it, the keyring term's seals are reserved or the
// keyring rotated when needed (sealcount.go); a transaction that used up the reservation
// is run again after another.
func (b *Barrier) Txn(ctx context.Context, fn func(tx storage.Tx) error) error {
	var need uint64 // seals the last attempt wanted
	for attempt := 0; ; attempt++ {
		kr, err := b.keyring()
		if err != nil {
			return err
		}
		rotated, err := b.headroom(ctx, kr, need)
		// A rotation since kr was taken can leave core/term-seals sealed by a term kr
		// lacks: the reservation fails, and the next attempt takes the new keyring.
		if err != nil && b.rotatedSince(kr) && attempt < maxTxnAttempts {
			continue
		}
		if err != nil {
			return err
		}
		if rotated && attempt < maxTxnAttempts {
			continue
		}
		need, err = b.txn(ctx, kr, fn)
		// A rotation while it ran can make the attempt meet records of a term kr lacks.
		if (errors.Is(err, errNoReservation) || err != nil && b.rotatedSince(kr)) && attempt < maxTxnAttempts {
			continue
		}
		return err
	}
}

// txn is one attempt of Txn with kr; need is how many seals it made or tried.
func (b *Barrier) txn(ctx context.Context, kr *keyring, fn func(tx storage.Tx) error) (need uint64, err error) {
	var wrote []string
	var gen uint64
	defer func() { b.cache.written(wrote...) }()
	err = b.backend.Txn(ctx, func(tx storage.Tx) error {
		st := &sealedTx{sealedReader: sealedReader{r: tx, kr: kr}, tx: tx}
		err := fn(st)
		need = max(need, st.seals+1) // and the store state's
		if st.short {
			return errNoReservation
		}
		b.cache.writing(st.wrote...)       // before the commit: reads from now on miss them
		wrote = append(wrote, st.wrote...) // a retried transaction adds its keys again
		if err != nil || !st.loaded {
			gen = 0
			return err
		}
		st.state.gen++
		gen = st.state.gen
		return putState(ctx, tx, kr, st.state)
	})
	if err == nil && gen != 0 {
		b.noteGeneration(gen)
	}
	return need, err
}

// View runs fn over a read-only snapshot of the underlying backend, opening every read. It
// takes no part in the store generation and does not hold up writes.
func (b *Barrier) View(ctx context.Context, fn func(r storage.Reader) error) error {
	kr, err := b.keyring()
	if err != nil {
		return err
	}
	return b.backend.View(ctx, func(r storage.Reader) error { return fn(sealedReader{r: r, kr: kr}) })
}

// Ping checks the underlying backend; it works while sealed too.
func (b *Barrier) Ping(ctx context.Context) error { return b.backend.Ping(ctx) }

// Close seals the barrier and closes the underlying backend.
func (b *Barrier) Close() error {
	b.mu.Lock()
	old := b.kr
	b.kr, b.closed = nil, true
	b.cache.reset()
	b.mu.Unlock()
	if old != nil {
		old.wipe()
	}
	return b.backend.Close()
}

// sealedReader opens reads of a backend Reader.
type sealedReader struct {
	r  storage.Reader
	kr *keyring
}

func (s sealedReader) Get(ctx context.Context, key string) ([]byte, error) {
	return getSealed(ctx, s.r, s.kr, key)
}

func (s sealedReader) List(ctx context.Context, prefix string, opts storage.ListOptions) (storage.Page, error) {
	return listLogical(ctx, s.r, prefix, opts)
}

// sealedTx seals writes and opens reads inside a backend transaction.
type sealedTx struct {
	sealedReader
	tx     storage.Tx
	wrote  []string   // keys put or deleted, for the read cache
	state  storeState // the store state as this transaction leaves it, once loaded
	loaded bool       // state was read: the transaction writes
	seals  uint64     // records sealed or refused a seal (Txn reserves as many on a retry)
	short  bool       // a seal was refused: the attempt fails with errNoReservation
}

func (t *sealedTx) Put(ctx context.Context, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	t.seals++
	rec, err := t.kr.seal(key, value)
	if errors.Is(err, errNoReservation) {
		// The attempt fails at its end and Txn runs it again with every seal it wanted
		// reserved; until then fn goes on as if the write was made, so that it counts
		// them all.
		t.short = true
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.track(ctx, key, rec); err != nil {
		return err
	}
	t.wrote = append(t.wrote, key)
	return t.tx.Put(ctx, dataPrefix+key, rec)
}

func (t *sealedTx) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := t.track(ctx, key, nil); err != nil {
		return err
	}
	t.wrote = append(t.wrote, key)
	return t.tx.Delete(ctx, dataPrefix+key)
}

// track updates the transaction's store state for a write of rec (nil: delete) at key: the
// record key holds now leaves the store hash, rec joins it.
func (t *sealedTx) track(ctx context.Context, key string, rec []byte) error {
	if !t.loaded {
		st, found, err := loadState(ctx, t.tx, t.kr)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: the store state record %s is missing: it was deleted while Coffer ran; seal and unseal to check the store", ErrIntegrity, storeStatePath)
		}
		t.state, t.loaded = st, true
	}
	old, err := t.tx.Get(ctx, dataPrefix+key)
	switch {
	case err == nil:
		t.state.remove(t.kr, key, old)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	if rec != nil {
		t.state.add(t.kr, key, rec)
	}
	return nil
}
