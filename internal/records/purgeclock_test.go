package records

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage/mem"
)

// fakeMono is a monotonic source the test moves by hand (the real time elapsed).
type fakeMono struct{ t time.Time }

func (m *fakeMono) now() time.Time           { return m.t }
func (m *fakeMono) advance(d time.Duration)  { m.t = m.t.Add(d) }
func newFakeMono() *fakeMono                 { return &fakeMono{t: time.Unix(1, 0)} }
func holdCount(n *int) func(PurgeClockState) { return func(PurgeClockState) { *n++ } }

const clockKey = "scheduler/purge-clock"

func newTestClock(t *testing.T, st *mem.Backend, limit time.Duration, holds *int, mono *fakeMono) *PurgeClock {
	t.Helper()
	c := NewPurgeClock(st, clockKey, limit, holdCount(holds))
	c.mono = mono.now
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// A forward jump beyond the limit holds purges at once (Check, inside a purge) and for good:
// across a restart, until an operator confirms; the alert is raised once.
func TestPurgeClockHoldsAfterAJump(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	var holds int
	mono := newFakeMono()
	c := newTestClock(t, st, time.Hour, &holds, mono)
	t0 := time.Unix(1_800_000_000, 0)
	if err := c.Check(ctx, t0.Add(100*24*time.Hour)); err != nil {
		t.Fatalf("Check before the first round = %v; want nil (nothing to compare with)", err)
	}
	if err := c.Tick(ctx, t0); err != nil {
		t.Fatalf("first Tick = %v", err)
	}
	mono.advance(time.Minute)
	if err := c.Check(ctx, t0.Add(time.Minute+time.Hour)); err != nil {
		t.Errorf("Check one limit ahead of the trusted time = %v; want nil", err)
	}
	if err := c.Check(ctx, t0.Add(time.Minute+time.Hour+2*time.Second)); !errors.Is(err, ErrPurgesHeld) {
		t.Fatalf("Check after a jump past the limit = %v; want ErrPurgesHeld", err)
	}
	if err := c.Check(ctx, t0.Add(time.Minute)); !errors.Is(err, ErrPurgesHeld) {
		t.Errorf("Check with the clock set back = %v; want the hold to stay until confirmed", err)
	}
	if err := c.Tick(ctx, t0.Add(2*time.Minute)); !errors.Is(err, ErrPurgesHeld) {
		t.Errorf("Tick while held = %v; want ErrPurgesHeld", err)
	}
	if holds != 1 {
		t.Errorf("alerts = %d; want 1", holds)
	}

	// A restart keeps the hold.
	again := newTestClock(t, st, time.Hour, &holds, newFakeMono())
	if err := again.Check(ctx, t0.Add(3*time.Minute)); !errors.Is(err, ErrPurgesHeld) {
		t.Fatalf("Check after a restart = %v; want the persisted hold", err)
	}
	confirmedAt := t0.Add(200 * 24 * time.Hour)
	if st, err := again.Confirm(ctx, confirmedAt); err != nil || st.Held || st.Trusted() != confirmedAt.Unix() {
		t.Fatalf("Confirm = %+v, %v; want not held, trusted = %d", st, err, confirmedAt.Unix())
	}
	if err := again.Check(ctx, confirmedAt.Add(time.Minute)); err != nil {
		t.Errorf("Check after the confirmation = %v; want nil", err)
	}
	third := newTestClock(t, st, time.Hour, &holds, newFakeMono())
	if s, _ := third.State(ctx); s.Held || s.Trusted() != confirmedAt.Unix() {
		t.Errorf("state after the confirmation and a restart = %+v; want trusted %d, not held", s, confirmedAt.Unix())
	}
}

// Jumps smaller than the limit add up: the trusted time follows only the real time elapsed.
func TestPurgeClockJumpsAddUp(t *testing.T) {
	ctx := context.Background()
	var holds int
	mono := newFakeMono()
	c := newTestClock(t, mem.New(), time.Hour, &holds, mono)
	now := time.Unix(1_800_000_000, 0)
	if err := c.Tick(ctx, now); err != nil {
		t.Fatal(err)
	}
	rounds := 0
	for ; rounds < 10; rounds++ {
		mono.advance(time.Minute)
		now = now.Add(time.Minute + 25*time.Minute) // each round the clock gains 25 minutes
		if err := c.Tick(ctx, now); errors.Is(err, ErrPurgesHeld) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if rounds != 2 { // 25, 50 minutes ahead: accepted; 75: held
		t.Errorf("the hold started at round %d; want 2 (the third 25-minute jump)", rounds)
	}
	// A clock that keeps real time is never held, and the trusted time follows it.
	c2 := newTestClock(t, mem.New(), time.Hour, &holds, mono)
	now = time.Unix(1_800_000_000, 0)
	for i := 0; i < 100; i++ {
		if err := c2.Tick(ctx, now); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		mono.advance(time.Hour)
		now = now.Add(time.Hour)
	}
	if s, _ := c2.State(ctx); s.Trusted() != now.Unix() {
		t.Errorf("trusted after 100 hours of real time = %d; want %d", s.Trusted(), now.Unix())
	}
}

// After a restart the downtime counts as a jump: up to the limit it is accepted, past it
// purges are held. A clock set back never lowers the trusted time.
func TestPurgeClockRestartAndBackwards(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	var holds int
	t0 := time.Unix(1_800_000_000, 0)
	c := newTestClock(t, st, time.Hour, &holds, newFakeMono())
	if err := c.Tick(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := c.Tick(ctx, t0.Add(-2*time.Hour)); err != nil {
		t.Fatalf("Tick with the clock set back = %v; want nil", err)
	}
	if s, _ := c.State(ctx); s.Trusted() != t0.Unix() {
		t.Errorf("trusted after the clock went back = %d; want %d", s.Trusted(), t0.Unix())
	}
	short := newTestClock(t, st, time.Hour, &holds, newFakeMono())
	if err := short.Tick(ctx, t0.Add(59*time.Minute)); err != nil {
		t.Errorf("Tick after 59 minutes down = %v; want nil", err)
	}
	long := newTestClock(t, st, time.Hour, &holds, newFakeMono())
	if err := long.Tick(ctx, t0.Add(59*time.Minute+time.Hour+time.Second)); !errors.Is(err, ErrPurgesHeld) {
		t.Errorf("Tick after more than the limit down = %v; want ErrPurgesHeld", err)
	}
	if holds != 1 {
		t.Errorf("alerts = %d; want 1", holds)
	}
	if err := NewPurgeClock(st, clockKey, time.Hour, nil).Check(ctx, t0); err == nil {
		t.Error("Check before Load = nil; want a refusal")
	}
}

// A clock that keeps real time is never held, however long the server runs and whatever the
// fraction of a second between rounds: the trusted time does not fall behind a round at a
// time (whole seconds would lose up to a second a round: a false hold after ~5000 rounds).
func TestPurgeClockNoDriftOverManyRounds(t *testing.T) {
	ctx := context.Background()
	var holds int
	mono := newFakeMono()
	c := newTestClock(t, mem.New(), time.Hour, &holds, mono)
	now := time.Unix(1_800_000_000, 999_000_000)
	const round = 30*time.Second + 700*time.Millisecond
	for i := 0; i < 20000; i++ {
		if err := c.Tick(ctx, now); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		mono.advance(round)
		now = now.Add(round)
	}
	if s, _ := c.State(ctx); s.TrustedNano != now.UnixNano() || holds != 0 {
		t.Errorf("after 20000 rounds: trusted %d, clock %d, %d holds; want equal and none", s.TrustedNano, now.UnixNano(), holds)
	}
}
