package barrier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/storage/bolt"
)

// The corruption figure (SECURITY-NOTES §4, rows D5 and D6): 1,000 random mutations of
// records sealed through the barrier into a real bbolt file. Each mutation is made by someone
// who can write the file but holds no key; after it, no read may return a plaintext other than
// the record's current one, and every mutation must be reported as an integrity failure: on
// read (every class but rollback), by Barrier.Verify, and when the store
// is next unsealed (the store hash, state.go).

// corruptionClass is one kind of mutation. mutate returns the physical writes that make it
// (nil value: delete) and the logical paths it damages.
type corruptionClass struct {
	name string
	// liveRead: a read through the unsealed barrier detects this class on its own (rollback
	// is only detectable against state kept elsewhere: the store hash checked at unseal).
	liveRead bool
	mutate   func(c *corruptionStore, rng *rand.Rand) (writes map[string][]byte, damaged []string)
}

// corruptionStore is a bbolt store written through the barrier, with every ciphertext each
// path has had.
type corruptionStore struct {
	raw     storage.Backend
	b       *Barrier
	m       *Manager
	share   string
	paths   []string
	current map[string][]byte   // logical path → current plaintext
	history map[string][][]byte // logical path → its sealed records, oldest first
}

const corruptionTenants = 3

func newCorruptionStore(t *testing.T) *corruptionStore {
	t.Helper()
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "coffer.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := New(db)
	t.Cleanup(func() { b.Close() })
	m := NewManager(db, b, nil, time.Now)
	res, err := m.Init(ctx, InitOptions{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := &corruptionStore{raw: db, b: b, m: m, share: res.Shares[0], current: map[string][]byte{}, history: map[string][][]byte{}}
	c.unseal(t)
	// The same object names in every tenant, so a record can be copied to another tenant's
	// path that exists; three versions of each, so each has two older ciphertexts.
	for ten := 1; ten <= corruptionTenants; ten++ {
		for _, obj := range []string{"secrets/db-password/versions/1", "secrets/db-password/meta", "keys/signing/versions/7", "keys/signing/meta", "certs/web/meta"} {
			c.paths = append(c.paths, fmt.Sprintf("tenants/t%d/vaults/v1/%s", ten, obj))
		}
	}
	for v := 1; v <= 3; v++ {
		err := b.Txn(ctx, func(tx storage.Tx) error {
			for _, p := range c.paths {
				if err := tx.Put(ctx, p, []byte(fmt.Sprintf("version %d of %s", v, p))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.paths {
			c.current[p] = []byte(fmt.Sprintf("version %d of %s", v, p))
			c.history[p] = append(c.history[p], c.sealed(t, p))
		}
	}
	return c
}

func (c *corruptionStore) unseal(t *testing.T) {
	t.Helper()
	if _, err := c.m.Unseal(context.Background(), c.share); err != nil {
		t.Fatalf("unseal of the intact store = %v", err)
	}
}

// sealed returns the record stored for logical path p.
func (c *corruptionStore) sealed(t *testing.T, p string) []byte {
	t.Helper()
	rec, err := c.raw.Get(context.Background(), dataPrefix+p)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (c *corruptionStore) latest(p string) []byte {
	h := c.history[p]
	return h[len(h)-1]
}

func (c *corruptionStore) pick(rng *rand.Rand) string { return c.paths[rng.IntN(len(c.paths))] }

// pickTwo returns two different paths.
func (c *corruptionStore) pickTwo(rng *rand.Rand) (string, string) {
	i := rng.IntN(len(c.paths))
	j := (i + 1 + rng.IntN(len(c.paths)-1)) % len(c.paths)
	return c.paths[i], c.paths[j]
}

// write applies physical writes in one transaction of the raw store.
func (c *corruptionStore) write(t *testing.T, writes map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	err := c.raw.Txn(ctx, func(tx storage.Tx) error {
		for k, v := range writes {
			var err error
			if v == nil {
				err = tx.Delete(ctx, k)
			} else {
				err = tx.Put(ctx, k, v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var corruptionClasses = []corruptionClass{
	{"flip-byte", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		rec := bytes.Clone(c.latest(p))
		rec[rng.IntN(len(rec))] ^= byte(1 + rng.IntN(255))
		return map[string][]byte{dataPrefix + p: rec}, []string{p}
	}},
	{"truncate", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		rec := c.latest(p)
		return map[string][]byte{dataPrefix + p: bytes.Clone(rec[:1+rng.IntN(len(rec)-1)])}, []string{p}
	}},
	{"zero-length", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		return map[string][]byte{dataPrefix + p: {}}, []string{p}
	}},
	{"garbage", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		rec := make([]byte, rng.IntN(2*len(c.latest(p))))
		for i := range rec {
			rec[i] = byte(rng.Uint32())
		}
		if len(rec) >= headerLen && rng.IntN(2) == 0 {
			copy(rec, c.latest(p)[:headerLen]) // a valid header: the garbage reaches AES-GCM
		}
		return map[string][]byte{dataPrefix + p: rec}, []string{p}
	}},
	{"swap-two", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p, q := c.pickTwo(rng)
		return map[string][]byte{dataPrefix + p: c.latest(q), dataPrefix + q: c.latest(p)}, []string{p, q}
	}},
	{"copy-to-other-path", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p, q := c.pickTwo(rng)
		if rng.IntN(4) == 0 { // a path that holds nothing yet
			q = p + "-copy"
			return map[string][]byte{dataPrefix + q: c.latest(p)}, []string{q}
		}
		return map[string][]byte{dataPrefix + q: c.latest(p)}, []string{q}
	}},
	{"copy-to-other-tenant", true, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		from := p[len("tenants/t"):][0] - '0'
		to := 1 + (int(from)+rng.IntN(corruptionTenants-1))%corruptionTenants
		q := fmt.Sprintf("tenants/t%d/%s", to, p[len("tenants/tN/"):])
		return map[string][]byte{dataPrefix + q: c.latest(p)}, []string{q}
	}},
	{"rollback-record", false, func(c *corruptionStore, rng *rand.Rand) (map[string][]byte, []string) {
		p := c.pick(rng)
		h := c.history[p]
		return map[string][]byte{dataPrefix + p: h[rng.IntN(len(h)-1)]}, []string{p}
	}},
}

// corruptionTally counts what one class of mutation did.
type corruptionTally struct {
	trials, onRead, onVerify, onUnseal, detected, wrongServed int
	example                                                   string
}

// checkRead reads p through the unsealed barrier: it reports whether the read failed with an
// integrity error, and counts a plaintext other than the current one as served wrongly.
func (c *corruptionStore) checkRead(t *testing.T, p string, tally *corruptionTally) bool {
	t.Helper()
	got, err := c.b.Get(context.Background(), p)
	switch {
	case errors.Is(err, ErrIntegrity):
		if !strings.Contains(err.Error(), `"`+p+`"`) {
			t.Errorf("integrity error %q does not name the record %q", err, p)
		}
		return true
	case err == nil && !bytes.Equal(got, c.current[p]):
		tally.wrongServed++
		tally.example = fmt.Sprintf("Get(%q) served %q; current plaintext %q", p, got, c.current[p])
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		t.Errorf("Get(%q) after a mutation = %v; want ErrIntegrity", p, err)
	}
	return false
}

func TestCorruptionIsDetected(t *testing.T) {
	const trials = 1000
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("COFFER_CORRUPTION_SEED"); v != "" { // to replay a failed run
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("COFFER_CORRUPTION_SEED=%q is not a number", v)
		}
		seed = n
	}
	t.Logf("seed %d (COFFER_CORRUPTION_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	c := newCorruptionStore(t)
	ctx := context.Background()
	tallies := make([]corruptionTally, len(corruptionClasses))

	for i := range trials {
		cls, tally := corruptionClasses[i%len(corruptionClasses)], &tallies[i%len(corruptionClasses)]
		tally.trials++
		writes, damaged := cls.mutate(c, rng)
		undo := map[string][]byte{}
		for k := range writes {
			undo[k], _ = c.raw.Get(ctx, k) // nil (delete) for a path that held nothing
		}
		c.write(t, writes)

		// While unsealed: a read of every damaged record must fail.
		if cls.liveRead {
			read := true
			for _, p := range damaged {
				if !c.checkRead(t, p, tally) {
					read = false
				}
			}
			if read {
				tally.onRead++
			}
		}
		// While unsealed: the operator's check finds every class, rollback included.
		if _, err := c.b.Verify(ctx); errors.Is(err, ErrIntegrity) {
			tally.onVerify++
		} else {
			t.Errorf("%s: Verify of the mutated store = %v; want ErrIntegrity", cls.name, err)
		}
		// Offline: the store is sealed, mutated, and unsealed again.
		c.m.Seal()
		_, uerr := c.m.Unseal(ctx, c.share)
		detected := uerr != nil
		switch {
		case uerr != nil && !errors.Is(uerr, ErrIntegrity):
			t.Errorf("%s: unseal of the mutated store = %v; want ErrIntegrity", cls.name, uerr)
		case uerr != nil:
			tally.onUnseal++
			tally.example = uerr.Error()
		default:
			detected = true
			for _, p := range damaged {
				if !c.checkRead(t, p, tally) {
					detected = false
				}
			}
		}
		if detected {
			tally.detected++
		}

		c.write(t, undo)
		if c.b.Sealed() {
			c.unseal(t)
		}
	}

	t.Logf("%-22s %7s %8s %10s %10s %9s %13s", "class", "trials", "on read", "on verify", "on unseal", "detected", "wrong served")
	var sum corruptionTally
	for i, cls := range corruptionClasses {
		ty := tallies[i]
		t.Logf("%-22s %7d %8d %10d %10d %9d %13d", cls.name, ty.trials, ty.onRead, ty.onVerify, ty.onUnseal, ty.detected, ty.wrongServed)
		sum.trials, sum.detected, sum.wrongServed = sum.trials+ty.trials, sum.detected+ty.detected, sum.wrongServed+ty.wrongServed
		if ty.detected != ty.trials || ty.wrongServed != 0 {
			t.Errorf("%s: %d of %d mutations detected, %d reads served a wrong plaintext (%s); want all detected, none served", cls.name, ty.detected, ty.trials, ty.wrongServed, ty.example)
		}
		if cls.liveRead && ty.onRead != ty.trials {
			t.Errorf("%s: %d of %d mutations failed the read of the live barrier; want all", cls.name, ty.onRead, ty.trials)
		}
	}
	t.Logf("%-22s %7d %8s %10s %10s %9d %13d", "total", sum.trials, "", "", "", sum.detected, sum.wrongServed)
	if sum.trials != trials {
		t.Errorf("ran %d trials; want %d", sum.trials, trials)
	}
}
