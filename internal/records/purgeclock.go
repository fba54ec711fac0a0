package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// ErrPurgesHeld is a PurgeGate's refusal while purges are held: the clock moved forward more
// than the PurgeClock's limit since the last time it was trusted, and no operator has
// confirmed it since.
var ErrPurgesHeld = errors.New("purges are held: the clock moved forward more than the allowed jump")

// PurgeGate is asked before every purge that only the clock allows: each scheduled purge,
// and a user purge of a purge-protected object after its purge date. A non-nil error
// refuses the purge.
type PurgeGate func(ctx context.Context, now time.Time) error

// PurgeClockState is the persisted state of a PurgeClock.
type PurgeClockState struct {
	// TrustedNano is the latest clock reading the scheduler accepted, in unix nanoseconds
	// (0 before its first round). Nanoseconds, because the trusted time is advanced by
	// elapsed time every round: whole seconds would lose up to a second a round.
	TrustedNano int64 `json:"trustedNano"`
	// Held is set from the round (or purge) that saw the clock more than the limit ahead of
	// Trusted until an operator confirms the clock.
	Held bool `json:"held,omitempty"`
	// HeldAt is the clock reading that started the hold, in unix seconds.
	HeldAt int64 `json:"heldAt,omitempty"`
}

// Trusted is the trusted time in unix seconds.
func (st PurgeClockState) Trusted() int64 { return st.TrustedNano / int64(time.Second) }

// PurgeClock guards purges against a clock moved forward (SECURITY-NOTES S5): a purge date
// is a wall-clock time, so a clock set ahead would purge soft-deleted objects early, even
// under purge protection. The scheduler calls Tick every round; Tick advances a trusted
// time, persisted in the store, by the real time elapsed since its last round (a monotonic
// reading, which a change of the wall clock does not move) and never past the clock. A
// clock reading more than limit ahead of the trusted time starts a hold: every purge the
// gate (Check) is asked about is refused, onHold is told once (the alert), and the hold is
// persisted, so it survives restarts, until Confirm. Creeping forward in jumps smaller than
// limit does not help: the trusted time does not follow a jump, so the jumps add up. After a
// restart there is no monotonic reference: the downtime counts as a jump, and a downtime
// longer than limit also needs a confirmation.
type PurgeClock struct {
	store  storage.Backend
	key    string
	limit  time.Duration
	mono   func() time.Time // real time with a monotonic reading, never an injected clock
	onHold func(PurgeClockState)

	mu       sync.Mutex
	st       PurgeClockState
	loaded   bool
	dirty    bool      // st differs from the stored state
	lastMono time.Time // the monotonic reading of the last accepted round; zero after a start
}

// NewPurgeClock returns a PurgeClock that keeps its state at key in store (the barrier) and
// holds purges once the clock is more than limit ahead of its trusted time. onHold, if set,
// is called once when a hold starts (with the lock held: it must not call the PurgeClock).
func NewPurgeClock(store storage.Backend, key string, limit time.Duration, onHold func(PurgeClockState)) *PurgeClock {
	return &PurgeClock{store: store, key: key, limit: limit, mono: time.Now, onHold: onHold}
}

// Load reads the persisted state (a no-op once loaded). Check uses only the loaded state, so
// the server loads it before it serves purges.
func (c *PurgeClock) Load(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.load(ctx)
}

func (c *PurgeClock) load(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	var st PurgeClockState
	if _, err := Get(ctx, c.store, c.key, &st); err != nil {
		return fmt.Errorf("purge clock: %w", err)
	}
	c.st, c.loaded = st, true
	return nil
}

// trusted is the trusted time (unix nanoseconds) at the monotonic reading mono: the stored
// one plus the real time elapsed since the last accepted round in this process.
func (c *PurgeClock) trusted(mono time.Time) int64 {
	t := c.st.TrustedNano
	if !c.lastMono.IsZero() {
		t += int64(mono.Sub(c.lastMono))
	}
	return t
}

// ahead reports whether now is more than limit ahead of the trusted time at mono and, if so,
// starts the hold (in memory; Tick persists it).
func (c *PurgeClock) ahead(now, mono time.Time) bool {
	if c.st.Held {
		return true
	}
	if c.st.TrustedNano == 0 || now.UnixNano()-c.trusted(mono) <= int64(c.limit) {
		return false
	}
	c.st.Held, c.st.HeldAt, c.dirty = true, now.Unix(), true
	if c.onHold != nil {
		c.onHold(c.st)
	}
	return true
}

// Check is the PurgeGate: ErrPurgesHeld while held or when now is more than limit ahead of
// the trusted time. It reads no storage (it runs inside purge transactions); before Load it
// refuses.
func (c *PurgeClock) Check(_ context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		return errors.New("purge clock: state not loaded")
	}
	if c.ahead(now, c.mono()) {
		return ErrPurgesHeld
	}
	return nil
}

// Tick is the scheduler's call at the start of each round: it returns ErrPurgesHeld (having
// persisted the hold) if purges are held, else advances the trusted time to now (at most by
// the real time elapsed since the last round, once one ran in this process) and persists it.
func (c *PurgeClock) Tick(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(ctx); err != nil {
		return err
	}
	mono := c.mono() // read after now: the trusted time is not behind a clock that kept time
	held := c.ahead(now, mono)
	if !held {
		next := now.UnixNano()
		if !c.lastMono.IsZero() {
			next = min(next, c.trusted(mono))
		}
		if next > c.st.TrustedNano {
			c.st.TrustedNano, c.dirty = next, true
		}
		c.lastMono = mono
	}
	if err := c.save(ctx); err != nil {
		return err
	}
	if held {
		return ErrPurgesHeld
	}
	return nil
}

// Confirm ends a hold: an operator has checked the clock, and now becomes the trusted time.
func (c *PurgeClock) Confirm(ctx context.Context, now time.Time) (PurgeClockState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(ctx); err != nil {
		return PurgeClockState{}, err
	}
	c.st, c.dirty, c.lastMono = PurgeClockState{TrustedNano: now.UnixNano()}, true, c.mono()
	return c.st, c.save(ctx)
}

// State returns the current state (with the trusted time as of now).
func (c *PurgeClock) State(ctx context.Context) (PurgeClockState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(ctx); err != nil {
		return PurgeClockState{}, err
	}
	st := c.st
	st.TrustedNano = c.trusted(c.mono())
	return st, nil
}

func (c *PurgeClock) save(ctx context.Context) error {
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(c.st)
	if err != nil {
		return err
	}
	if err := c.store.Put(ctx, c.key, b); err != nil {
		return fmt.Errorf("purge clock: %w", err)
	}
	c.dirty = false
	return nil
}

// Purged describes one scheduled purge that removed an object, for the audit log.
type Purged struct {
	TenantID string
	Kind     tenancy.Kind // a vault or a managed HSM pool
	Vault    string
	// Path is the object's deleted path in its store: "deletedkeys/<name>", … (lower case).
	Path string
	// Due is the purge date the object was scheduled for (unix seconds).
	Due int64
	// Destroyed counts the provider objects destroyed with it (HSM objects of keys).
	Destroyed int
}

// PurgeHooks connect a kind's purges to the server: Gate (if set) is asked before every
// purge that only the clock allows (ReadPurgeable), and Purged (if set) is told of every
// scheduled purge done.
type PurgeHooks struct {
	Gate   PurgeGate
	Purged func(Purged)
}

// Hold runs Gate once for a scheduler round: hold reports that the round must skip its
// purges (the gate's alert has been raised); err is any other failure of the gate.
func (h PurgeHooks) Hold(ctx context.Context, now time.Time) (hold bool, err error) {
	if h.Gate == nil {
		return false, nil
	}
	err = h.Gate(ctx, now)
	if errors.Is(err, ErrPurgesHeld) {
		return true, nil
	}
	return err != nil, err
}

// Done calls Purged if set.
func (h PurgeHooks) Done(p Purged) {
	if h.Purged != nil {
		h.Purged(p)
	}
}
