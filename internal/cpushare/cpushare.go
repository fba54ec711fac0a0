// Package cpushare shares the CPU that expensive software cryptography needs among tenants
// (SECURITY-NOTES R2). At most Slots such operations run at once; when more wait, a slot
// that frees goes to the waiting tenants in turn (round robin), so one tenant's flood of
// RSA private operations delays another tenant's operation by about one operation, while a
// tenant alone still uses every slot. Long operations (key generation, seconds for
// RSA-4096) are also capped per tenant below Slots, so that one tenant's key generations
// never hold every slot at once.
package cpushare

import (
	"context"
	"slices"
	"sync"
)

// Scheduler hands out the slots. The zero value is not usable; use New.
type Scheduler struct {
	slots   int
	longCap int // slots one tenant's long operations may hold at once

	mu      sync.Mutex
	free    int
	turns   []*tenant // tenants with waiters, in the order they are served
	tenants map[string]*tenant
}

// tenant is one tenant's waiters and long operations.
type tenant struct {
	name    string
	waiters []chan struct{} // closed when granted a slot, oldest first
	queued  bool            // in turns
	long    int             // long operations holding or waiting for a slot
	longQ   []chan struct{} // long operations waiting for the tenant's long cap
}

// New returns a scheduler of slots slots (at least 1). One tenant's long operations may
// hold slots−1 of them (at least 1).
func New(slots int) *Scheduler {
	slots = max(slots, 1)
	return &Scheduler{slots: slots, free: slots, longCap: max(slots-1, 1), tenants: map[string]*tenant{}}
}

// Slots returns how many operations run at once.
func (s *Scheduler) Slots() int { return s.slots }

// Free returns how many slots are free now.
func (s *Scheduler) Free() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free
}

// Waiting returns how many operations wait now, for a slot or for their tenant's long cap.
func (s *Scheduler) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tenants {
		n += len(t.waiters) + len(t.longQ)
	}
	return n
}

// Acquire waits for a slot for an operation of tenant and returns the function that gives
// it back. It returns ctx's error, holding nothing, if ctx ends first.
func (s *Scheduler) Acquire(ctx context.Context, tenantName string) (release func(), err error) {
	s.mu.Lock()
	if s.free > 0 && len(s.turns) == 0 {
		s.free--
		s.mu.Unlock()
		return s.release, nil
	}
	t := s.tenant(tenantName)
	ch := make(chan struct{})
	t.waiters = append(t.waiters, ch)
	if !t.queued {
		t.queued = true
		s.turns = append(s.turns, t)
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return s.release, nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch: // granted meanwhile: give it on
		s.releaseLocked()
	default:
		t.waiters = remove(t.waiters, ch)
		s.drop(t)
	}
	return nil, ctx.Err()
}

// AcquireLong is Acquire for a long operation (a key generation): it first waits until the
// tenant holds fewer than its long cap of slots with long operations.
func (s *Scheduler) AcquireLong(ctx context.Context, tenantName string) (release func(), err error) {
	s.mu.Lock()
	t := s.tenant(tenantName)
	t.long++
	if t.long > s.longCap {
		ch := make(chan struct{})
		t.longQ = append(t.longQ, ch)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			select {
			case <-ch: // admitted meanwhile: pass the admission on
				s.endLongLocked(t)
			default:
				t.longQ = remove(t.longQ, ch)
				t.long--
				s.drop(t)
			}
			s.mu.Unlock()
			return nil, ctx.Err()
		}
	} else {
		s.mu.Unlock()
	}
	rel, err := s.Acquire(ctx, tenantName)
	if err != nil {
		s.mu.Lock()
		s.endLongLocked(t)
		s.mu.Unlock()
		return nil, err
	}
	return func() {
		rel()
		s.mu.Lock()
		s.endLongLocked(t)
		s.mu.Unlock()
	}, nil
}

// endLongLocked ends one long operation of t, admitting the next one waiting; s.mu held.
func (s *Scheduler) endLongLocked(t *tenant) {
	t.long--
	if len(t.longQ) > 0 {
		close(t.longQ[0])
		t.longQ = t.longQ[1:]
	}
	s.drop(t)
}

func (s *Scheduler) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

// releaseLocked gives a slot back: to the next tenant in turn that waits, or to the free
// pool; s.mu held.
func (s *Scheduler) releaseLocked() {
	if len(s.turns) == 0 {
		s.free++
		return
	}
	t := s.turns[0]
	s.turns = s.turns[1:]
	ch := t.waiters[0]
	t.waiters = t.waiters[1:]
	if len(t.waiters) > 0 {
		s.turns = append(s.turns, t) // its next waiter goes after the other tenants'
	} else {
		t.queued = false
		s.drop(t)
	}
	close(ch) // the slot passes on held
}

// tenant returns the record of name, making it; s.mu held.
func (s *Scheduler) tenant(name string) *tenant {
	t := s.tenants[name]
	if t == nil {
		t = &tenant{name: name}
		s.tenants[name] = t
	}
	return t
}

// drop forgets t once it has nothing waiting or running; s.mu held.
func (s *Scheduler) drop(t *tenant) {
	if len(t.waiters) == 0 && t.queued {
		s.turns = remove(s.turns, t)
		t.queued = false
	}
	if len(t.waiters) == 0 && t.long == 0 && s.tenants[t.name] == t {
		delete(s.tenants, t.name)
	}
}

// remove returns list without its first element equal to v.
func remove[T comparable](list []T, v T) []T {
	if i := slices.Index(list, v); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
}
