package cpushare

import (
	"context"
	"sync"
	"testing"
	"time"
)

// grantOrder starts one waiter per name (in order, each queued before the next starts)
// while every slot is held, then releases the held slots one at a time and returns the
// order in which the waiters got a slot.
func grantOrder(t *testing.T, s *Scheduler, held []func(), names []string) []string {
	t.Helper()
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	granted := make(chan func(), len(names))
	for _, n := range names {
		wg.Add(1)
		before := waiting(s)
		go func() {
			defer wg.Done()
			rel, err := s.Acquire(context.Background(), n)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, n)
			mu.Unlock()
			granted <- rel
		}()
		for waiting(s) == before { // queued before the next starts
			time.Sleep(time.Millisecond)
		}
	}
	for _, rel := range held {
		rel()
	}
	for range names {
		(<-granted)() // each grant, once made, is given back: the next waiter's turn
	}
	wg.Wait()
	return order
}

// waiting counts the operations waiting.
func waiting(s *Scheduler) int { return s.Waiting() }

// TestRoundRobin: while tenant A has many operations waiting, tenant B's one operation gets
// the second slot that frees, not the last.
func TestRoundRobin(t *testing.T) {
	s := New(1)
	rel, err := s.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	order := grantOrder(t, s, []func(){rel}, []string{"a", "a", "a", "a", "b", "a", "c"})
	want := []string{"a", "b", "c", "a", "a", "a", "a"}
	if len(order) != len(want) {
		t.Fatalf("grants %v; want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("grants in order %v; want %v (tenants take turns)", order, want)
		}
	}
	if s.free != 1 || len(s.tenants) != 0 || len(s.turns) != 0 {
		t.Errorf("after every release: free %d, tenants %d, turns %d; want 1, 0, 0", s.free, len(s.tenants), len(s.turns))
	}
}

// TestAloneUsesEverySlot: a tenant alone gets every slot without waiting, and waits only
// once they are all held.
func TestAloneUsesEverySlot(t *testing.T) {
	s := New(3)
	var rels []func()
	for range 3 {
		rel, err := s.Acquire(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "a"); err == nil {
		t.Fatal("a fourth operation got a slot of three")
	}
	for _, rel := range rels {
		rel()
	}
	if s.free != 3 || len(s.tenants) != 0 {
		t.Errorf("free %d, tenants %d after the releases; want 3, 0 (the cancelled waiter left nothing)", s.free, len(s.tenants))
	}
}

// TestCancelWhileGranted: a waiter whose context ends just as it is granted a slot passes
// the slot on; none is lost.
func TestCancelWhileGranted(t *testing.T) {
	for range 200 {
		s := New(1)
		rel, _ := s.Acquire(context.Background(), "a")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			r, err := s.Acquire(ctx, "b")
			if err == nil {
				r()
			}
			done <- err
		}()
		for waiting(s) == 0 {
			time.Sleep(10 * time.Microsecond)
		}
		go cancel()
		rel()
		<-done
		if r, err := s.Acquire(context.Background(), "c"); err != nil {
			t.Fatal(err)
		} else {
			r()
		}
		if s.free != 1 || len(s.tenants) != 0 || len(s.turns) != 0 {
			t.Fatalf("free %d, tenants %d, turns %d; want 1, 0, 0", s.free, len(s.tenants), len(s.turns))
		}
	}
}

// TestLongCap: of two slots, one tenant's long operations hold at most one; its second
// waits even though a slot is free, and another tenant's operation takes that slot.
func TestLongCap(t *testing.T) {
	s := New(2)
	ctx := context.Background()
	long1, err := s.AcquireLong(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan func(), 1)
	go func() {
		rel, err := s.AcquireLong(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		second <- rel
	}()
	select {
	case <-second:
		t.Fatal("a tenant's second long operation got a slot while its first held one (cap 1 of 2)")
	case <-time.After(30 * time.Millisecond):
	}
	short, err := s.Acquire(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	short()
	long1()
	select {
	case rel := <-second:
		rel()
	case <-time.After(5 * time.Second):
		t.Fatal("the second long operation never ran after the first ended")
	}
	if s.free != 2 || len(s.tenants) != 0 {
		t.Errorf("free %d, tenants %d; want 2, 0", s.free, len(s.tenants))
	}
	// Cancelled while waiting for the cap: nothing held afterwards.
	long1, _ = s.AcquireLong(ctx, "a")
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.AcquireLong(cctx, "a"); err == nil {
		t.Fatal("AcquireLong past the cap returned before its context ended")
	}
	long1()
	if s.free != 2 || len(s.tenants) != 0 {
		t.Errorf("after a cancelled long wait: free %d, tenants %d; want 2, 0", s.free, len(s.tenants))
	}
}
