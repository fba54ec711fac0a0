package barrier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

// storedTermSeals opens core/term-seals with the barrier's keyring.
func storedTermSeals(t *testing.T, b *Barrier, raw storage.Backend) uint64 {
	t.Helper()
	kr, err := b.keyring()
	if err != nil {
		t.Fatal(err)
	}
	c, found, err := loadTermSeals(context.Background(), raw, kr)
	if err != nil || !found {
		t.Fatalf("core/term-seals: %d, found %v, %v", c, found, err)
	}
	return c
}

// termsOfRecords counts the data records by the term that sealed them.
func termsOfRecords(t *testing.T, raw storage.Backend) map[uint32]int {
	t.Helper()
	page, err := raw.List(context.Background(), dataPrefix, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[uint32]int{}
	for _, k := range page.Keys {
		rec, err := raw.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		term, err := recordTerm(k, rec)
		if err != nil {
			t.Fatal(err)
		}
		n[term]++
	}
	return n
}

// TestTermRotatesBeforeSealLimit (SECURITY-NOTES C4): with the limit lowered to 100 seals
// per term (blocks of 10, rotation at 90), 300 puts (two seals each: the record and the
// store state) rotate the keyring automatically, logged at Warn; no term seals more than
// 100 records; every record still opens, before and after a seal and unseal, and the
// store verifies.
func TestTermRotatesBeforeSealLimit(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	lim := sealLimits{limit: 100, block: 10, rotateAt: 90}
	b, m, raw, share := newUnsealedLogged(t, lim, &logs)
	const n = 300
	for i := range n {
		if err := b.Put(ctx, fmt.Sprintf("r/%03d", i), []byte{byte(i)}); err != nil {
			t.Fatalf("Put #%d = %v", i, err)
		}
	}
	if term := b.ActiveTerm(); term < 6 {
		t.Errorf("ActiveTerm = %d after %d puts (%d seals); want at least 6 (a rotation every 90 seals)", term, n, 2*n)
	}
	for term, records := range termsOfRecords(t, raw) {
		if records > int(lim.limit) {
			t.Errorf("term %d sealed %d stored records; want at most %d", term, records, lim.limit)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"keyring rotated automatically\"") || !strings.Contains(logs.String(), "near the AES-GCM limit") {
		t.Errorf("logs = %q; want a Warn for each automatic rotation", logs.String())
	}
	checkAll := func(when string) {
		t.Helper()
		for i := range n {
			v, err := b.Get(ctx, fmt.Sprintf("r/%03d", i))
			if err != nil || !bytes.Equal(v, []byte{byte(i)}) {
				t.Fatalf("%s: Get(r/%03d) = %x, %v", when, i, v, err)
			}
		}
		if _, err := b.Verify(ctx); err != nil {
			t.Fatalf("%s: Verify = %v", when, err)
		}
	}
	checkAll("after the rotations")
	m.Seal()
	if _, err := m.Unseal(ctx, share); err != nil {
		t.Fatalf("Unseal = %v", err)
	}
	checkAll("after seal and unseal")
}

// newUnsealedLogged is newUnsealedLimits with its warnings logged to logs (written by
// the test's own goroutine: Txn rotates in its caller's).
func newUnsealedLogged(t *testing.T, lim sealLimits, logs *bytes.Buffer) (*Barrier, *Manager, storage.Backend, string) {
	return newUnsealedLimits(t, lim, StoreChecks{Log: slog.New(slog.NewTextHandler(logs, nil))})
}

// TestSealCountResumesAtCeiling: a fresh barrier and manager over the same store (a
// restart after kill -9: only committed reservations survive) resume the count at the
// stored ceiling, never below the seals made, and reserve before sealing.
func TestSealCountResumesAtCeiling(t *testing.T) {
	ctx := context.Background()
	lim := sealLimits{limit: 1000, block: 100, rotateAt: 900}
	b, _, raw, share := newUnsealedLimits(t, lim, StoreChecks{})
	for i := range 30 {
		if err := b.Put(ctx, fmt.Sprintf("r/%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	used, _ := b.kr.count.snapshot()
	stored := storedTermSeals(t, b, raw)
	if stored < used {
		t.Fatalf("stored ceiling %d is below the %d seals made", stored, used)
	}

	b2 := New(raw) // the "restart": the first life is simply abandoned
	b2.limits = lim
	m2 := NewManager(raw, b2, nil, time.Now)
	if _, err := m2.Unseal(ctx, share); err != nil {
		t.Fatal(err)
	}
	used2, ceiling2 := b2.kr.count.snapshot()
	if used2 != stored+1 || ceiling2 != stored+lim.block {
		t.Errorf("after the restart: used %d of %d; want %d of %d (resumed at the stored ceiling %d, its record the first seal of a new block)", used2, ceiling2, stored+1, stored+lim.block, stored)
	}
	if got := storedTermSeals(t, b2, raw); got != ceiling2 {
		t.Errorf("stored ceiling after the restart = %d; want %d", got, ceiling2)
	}
	if b2.ActiveTerm() != 1 {
		t.Errorf("ActiveTerm = %d; want 1 (a counted store is not rotated at unseal)", b2.ActiveTerm())
	}
	for i := range 30 {
		if _, err := b2.Get(ctx, fmt.Sprintf("r/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreWithoutSealCountRotates: a store written before seal counts (no core/term-seals)
// cannot know how often its active term sealed, so its unseal rotates the keyring (Warn).
func TestStoreWithoutSealCountRotates(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	b, m, raw, share := newUnsealedLogged(t, defaultSealLimits, &logs)
	if err := b.Put(ctx, "r", []byte("v")); err != nil {
		t.Fatal(err)
	}
	m.Seal()
	if err := raw.Delete(ctx, termSealsPath); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unseal(ctx, share); err != nil {
		t.Fatal(err)
	}
	if b.ActiveTerm() != 2 {
		t.Errorf("ActiveTerm = %d; want 2 (rotated: term 1's seals were not counted)", b.ActiveTerm())
	}
	if !strings.Contains(logs.String(), "written before seal counts") {
		t.Errorf("logs = %q; want a Warn naming the reason", logs.String())
	}
	if v, err := b.Get(ctx, "r"); err != nil || string(v) != "v" {
		t.Errorf("Get = %q, %v", v, err)
	}
	if err := b.Put(ctx, "r2", []byte("v")); err != nil {
		t.Errorf("Put after the rotation = %v", err)
	}
}

// TestTermExhaustedRefusesWrites: when the rotation fails, the term seals up to the limit
// (never past it, though blocks do not divide it) and then writes are refused with
// ErrTermExhausted while reads work; a damaged core/term-seals stops the unseal.
func TestTermExhaustedRefusesWrites(t *testing.T) {
	ctx := context.Background()
	lim := sealLimits{limit: 55, block: 10, rotateAt: 40} // 55: blocks of 10 overshoot it
	b, m, raw, share := newUnsealedLimits(t, lim, StoreChecks{})
	b.rotate = func(context.Context, uint32, uint64) error { return errors.New("disk full") }
	var err error
	puts := 0
	for ; puts < 100; puts++ {
		if err = b.Put(ctx, fmt.Sprintf("r/%d", puts), []byte("v")); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrTermExhausted) {
		t.Fatalf("Put #%d = %v; want ErrTermExhausted", puts, err)
	}
	if used, _ := b.kr.count.snapshot(); used > lim.limit {
		t.Errorf("term 1 sealed %d times; want at most %d", used, lim.limit)
	}
	if _, err := b.Get(ctx, "r/0"); err != nil {
		t.Errorf("Get with an exhausted term = %v; want reads to work", err)
	}
	m.Seal()
	rec, _ := raw.Get(ctx, termSealsPath)
	rec[len(rec)-1] ^= 1
	if err := raw.Put(ctx, termSealsPath, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unseal(ctx, share); !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), termSealsPath) {
		t.Errorf("Unseal with a damaged %s = %v; want ErrIntegrity naming it", termSealsPath, err)
	}
}

// TestLargeTxnReservesEnough: one transaction sealing more records than a block holds
// fails its first attempt (fail closed) and succeeds once as many seals are reserved.
func TestLargeTxnReservesEnough(t *testing.T) {
	ctx := context.Background()
	b, _, _, _ := newUnsealedLimits(t, sealLimits{limit: 10000, block: 10, rotateAt: 9000}, StoreChecks{})
	err := b.Txn(ctx, func(tx storage.Tx) error {
		for i := range 100 {
			if err := tx.Put(ctx, fmt.Sprintf("r/%d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Txn of 100 puts with blocks of 10 = %v; want success", err)
	}
	if used, ceiling := b.kr.count.snapshot(); used > ceiling {
		t.Errorf("used %d of %d reserved", used, ceiling)
	}
}

// TestSealCountConcurrentWriters: 8 writers at once through rotations and reservations
// (limit 400, blocks of 20, rotation at 360): every put succeeds, no term seals more than
// 400 stored records, and every record opens.
func TestSealCountConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	lim := sealLimits{limit: 400, block: 20, rotateAt: 360}
	b, _, raw, _ := newUnsealedLimits(t, lim, StoreChecks{})
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := range 100 {
				if err := b.Put(ctx, fmt.Sprintf("w%d/%d", w, i), []byte("v")); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("Put = %v", err)
		}
	}
	terms := termsOfRecords(t, raw)
	for term, records := range terms {
		if records > int(lim.limit) {
			t.Errorf("term %d sealed %d stored records; want at most %d", term, records, lim.limit)
		}
	}
	if len(terms) < 3 {
		t.Errorf("records of %d terms; want at least 3 (1,600 seals, a rotation every 360)", len(terms))
	}
	if _, err := b.Verify(ctx); err != nil {
		t.Errorf("Verify = %v", err)
	}
}
