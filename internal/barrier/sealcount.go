package barrier

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Seal counts per keyring term (SECURITY-NOTES C4). Every record is sealed with AES-256-GCM
// under the active term with a random 96-bit nonce, which NIST SP 800-38D §8.3 allows at
// most 2^32 times per key. The barrier counts the active term's seals in memory within a
// ceiling reserved durably in core/term-seals (docs/FORMAT.md): a seal past the reserved
// ceiling is refused (fail closed), and a transaction that finds less than half a block
// left first raises the ceiling by a block in a committed transaction of its own. After a
// restart, an unseal or a kill -9 the count resumes at the stored ceiling (the unused
// rest of the last block is lost). At termRotateAt seals the Manager rotates the keyring
// (as HashiCorp Vault does at 3,865,470,566); should that fail, writes go on up to
// TermSealLimit and are then refused until `coffer operator rotate` succeeds.
//
// core/term-seals is a core record: it is not a data record, so it is outside the store
// count and hash (state.go), like core/store-state itself.
const (
	// TermSealLimit is the number of records one keyring term may seal.
	TermSealLimit = uint64(1) << 32
	// termRotateAt is where the keyring rotates automatically (0.9 × 2^32).
	termRotateAt = uint64(3_865_470_566)
	// termSealBlock is how many seals one durable reservation covers.
	termSealBlock = uint64(1) << 20
	// termSealsPath holds the active term's reserved ceiling, sealed by that term.
	termSealsPath = corePrefix + "term-seals"
	// termSealsContext starts the record's plaintext.
	termSealsContext = "coffer-term-seals/v1"
)

// ErrTermExhausted: the active keyring term sealed TermSealLimit records and was not
// rotated; writes are refused, reads work.
var ErrTermExhausted = errors.New("barrier: the active keyring term has sealed 2^32 records, the AES-GCM limit with random nonces (NIST SP 800-38D §8.3), and the automatic rotation failed: run `coffer operator rotate`; writes are refused until then, reads work")

// errNoReservation is a seal past the reserved ceiling; Txn reserves more and retries.
var errNoReservation = errors.New("barrier: no seals are reserved for the keyring term")

// sealLimits are the limit, block and rotation point (TermSealLimit, termSealBlock,
// termRotateAt; lowered by tests).
type sealLimits struct{ limit, block, rotateAt uint64 }

var defaultSealLimits = sealLimits{limit: TermSealLimit, block: termSealBlock, rotateAt: termRotateAt}

// sealCount is the seal count of a keyring's active term: used seals of the durably
// reserved ceiling. res serialises reservations.
type sealCount struct {
	mu            sync.Mutex
	used, ceiling uint64
	res           sync.Mutex
}

// take counts one seal; false if the reservation is used up.
func (c *sealCount) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used >= c.ceiling {
		return false
	}
	c.used++
	return true
}

func (c *sealCount) snapshot() (used, ceiling uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.ceiling
}

// extend records a committed reservation up to ceiling to, made over the stored ceiling
// stored, and counts the reservation record's own seal. Seals this count reserved before
// stay usable; when stored is above them (an earlier life of the keyring, or another
// server) the count jumps to it.
func (c *sealCount) extend(stored, to uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stored > c.ceiling {
		c.used = stored
	}
	c.used++
	c.ceiling = to
}

// termSealsRecord seals the reservation of term up to ceiling (one seal under term).
func (kr *keyring) termSealsRecord(ceiling uint64) ([]byte, error) {
	pt := append([]byte(termSealsContext+"\x00"), make([]byte, 12)...)
	binary.BigEndian.PutUint32(pt[len(pt)-12:], kr.active)
	binary.BigEndian.PutUint64(pt[len(pt)-8:], ceiling)
	return sealRecord(kr.aeads[kr.active], kr.active, termSealsPath, pt)
}

// loadTermSeals reads the active term's stored ceiling: 0 when the record names an older
// term (this one is new); found false when there is no record (a store from before seal
// counts).
func loadTermSeals(ctx context.Context, r storage.Reader, kr *keyring) (ceiling uint64, found bool, err error) {
	rec, err := r.Get(ctx, termSealsPath)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", termSealsPath, err)
	}
	pt, err := kr.open(termSealsPath, rec)
	if err != nil {
		return 0, true, err
	}
	head := termSealsContext + "\x00"
	if len(pt) != len(head)+12 || string(pt[:len(head)]) != head {
		return 0, true, fmt.Errorf("%w: record %q is not a seal count", ErrIntegrity, termSealsPath)
	}
	term := binary.BigEndian.Uint32(pt[len(head):])
	switch {
	case term > kr.active:
		return 0, true, fmt.Errorf("%w: record %q counts keyring term %d, newer than the active term %d", ErrIntegrity, termSealsPath, term, kr.active)
	case term < kr.active:
		return 0, true, nil
	}
	return binary.BigEndian.Uint64(pt[len(head)+4:]), true, nil
}

// reserveSeals raises the active term's stored ceiling by a block (at most to the limit)
// (or by need+1 seals, if more) in one committed transaction of raw, unless more than half
// a block and more than need are left. The count
// goes on where it is, or at the stored ceiling if that is higher (a restart).
// found is false when the store had no count (see loadTermSeals).
func reserveSeals(ctx context.Context, raw storage.Backend, kr *keyring, lim sealLimits, need uint64) (found bool, err error) {
	c := kr.count
	c.res.Lock()
	defer c.res.Unlock()
	used, ceiling := c.snapshot()
	if ceiling > used && ceiling-used > max(lim.block/2, need) || ceiling >= lim.limit {
		return true, nil
	}
	var stored, from, to uint64
	err = raw.Txn(ctx, func(tx storage.Tx) error {
		var ok bool
		if stored, ok, err = loadTermSeals(ctx, tx, kr); err != nil {
			return err
		}
		found = ok
		from = max(stored, ceiling)
		if to = min(from+max(lim.block, need+1), lim.limit); to <= from {
			return nil
		}
		rec, err := kr.termSealsRecord(to)
		if err != nil {
			return err
		}
		return tx.Put(ctx, termSealsPath, rec)
	})
	if err != nil {
		return found, fmt.Errorf("reserve keyring term %d seals: %w", kr.active, err)
	}
	if to > from {
		c.extend(stored, to)
	}
	return found, nil
}

// headroom prepares a transaction: past rotateAt it asks for a rotation (rotated: the
// caller takes the new keyring), and it reserves seals when fewer than half a block, or
// fewer than need (what the last attempt wanted), are left. At the limit it is
// ErrTermExhausted.
func (b *Barrier) headroom(ctx context.Context, kr *keyring, need uint64) (rotated bool, err error) {
	used, _ := kr.count.snapshot()
	if used >= b.limits.rotateAt && b.rotate != nil {
		if b.rotate(ctx, kr.active, used) == nil {
			return true, nil
		}
	}
	if _, err := reserveSeals(ctx, b.backend, kr, b.limits, need); err != nil {
		return false, err
	}
	if used, ceiling := kr.count.snapshot(); used >= ceiling && ceiling >= b.limits.limit {
		return false, ErrTermExhausted
	}
	return false, nil
}
