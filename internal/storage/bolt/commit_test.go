package bolt

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/coffer-kms/coffer/internal/storage"
)

// These tests make batches deterministic: hold parks the committer inside a Txn, the test
// queues requests one by one (waiting for each to be pending), then releases the committer,
// which takes every queued request into the next batch in arrival order.

// hold runs a Txn that blocks the committer until release is called; release waits for that
// Txn to finish.
func hold(t *testing.T, b *Backend) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := async(func() error {
		return b.Txn(context.Background(), func(tx storage.Tx) error {
			close(started)
			<-unblock
			return tx.Put(context.Background(), "held", []byte("1"))
		})
	})
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("holding Txn = %v", err)
		}
	}
}

// async runs f on a new goroutine and returns its result.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// queue starts f and waits until the committer has one more pending request.
func queue(t *testing.T, b *Backend, f func() error) <-chan error {
	t.Helper()
	n := pending(b)
	ch := async(f)
	deadline := time.Now().Add(10 * time.Second)
	for pending(b) != n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("request never became pending (have %d, want %d)", pending(b), n+1)
		}
		time.Sleep(time.Millisecond)
	}
	return ch
}

func pending(b *Backend) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

func wantGet(t *testing.T, b *Backend, key string, want []byte) {
	t.Helper()
	got, err := b.Get(context.Background(), key)
	switch {
	case want == nil && !errors.Is(err, storage.ErrNotFound):
		t.Errorf("Get(%q) = %.20q, %v; want ErrNotFound", key, got, err)
	case want != nil && (err != nil || !bytes.Equal(got, want)):
		t.Errorf("Get(%q) = %.20q, %v; want %q", key, got, err, want)
	}
}

func TestGroupCommitSharesOneTransaction(t *testing.T) {
	ctx := context.Background()
	b := openTemp(t, Options{})
	before := b.commits.Load()
	if err := b.Put(ctx, "lone", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := b.commits.Load() - before; got != 1 {
		t.Errorf("a lone Put took %d commits; want 1", got)
	}
	release := hold(t, b)
	var results []<-chan error
	for i := range 31 {
		key := string(rune('a'+i%26)) + string(rune('a'+i/26))
		results = append(results, queue(t, b, func() error { return b.Put(ctx, key, []byte(key)) }))
	}
	before = b.commits.Load()
	release()
	for _, ch := range results {
		if err := <-ch; err != nil {
			t.Errorf("queued Put = %v", err)
		}
	}
	if got := b.commits.Load() - before; got != 2 {
		t.Errorf("the held Txn and 31 queued Puts took %d commits; want 2", got)
	}
}

func TestFailedTxnInBatchIsRerunAlone(t *testing.T) {
	ctx := context.Background()
	errExists := errors.New("already exists")
	b := openTemp(t, Options{})
	calls := 0
	createOnce := func(tx storage.Tx) error {
		calls++
		if _, err := tx.Get(ctx, "k1"); err == nil {
			return errExists
		}
		return tx.Put(ctx, "created", []byte("yes"))
	}
	release := hold(t, b)
	put := queue(t, b, func() error { return b.Put(ctx, "k1", []byte("x")) })
	txn := queue(t, b, func() error { return b.Txn(ctx, createOnce) })
	after := queue(t, b, func() error { return b.Put(ctx, "k2", []byte("y")) })
	release()
	for name, ch := range map[string]<-chan error{"Put(k1)": put, "Put(k2)": after} {
		if err := <-ch; err != nil {
			t.Errorf("%s in the shared batch = %v; want nil", name, err)
		}
	}
	if err := <-txn; !errors.Is(err, errExists) {
		t.Errorf("Txn that sees k1 = %v; want errExists", err)
	}
	if calls != 2 {
		t.Errorf("fn ran %d times; want 2 (once in the batch, once alone on committed data)", calls)
	}
	wantGet(t, b, "k1", []byte("x"))
	wantGet(t, b, "k2", []byte("y"))
	wantGet(t, b, "created", nil)
}

func TestCommitFailureFailsWholeBatch(t *testing.T) {
	ctx := context.Background()
	b := openTemp(t, Options{maxSize: 1 << 20}) // a "disk" of 1 MiB
	big := bytes.Repeat([]byte{1}, 2<<20)
	calls := 0
	release := hold(t, b)
	tooBig := queue(t, b, func() error { return b.Put(ctx, "big", big) })
	small := queue(t, b, func() error { return b.Put(ctx, "small", []byte("s")) })
	// A read-only fn that saw the doomed write must not be told it succeeded.
	reader := queue(t, b, func() error {
		return b.Txn(ctx, func(tx storage.Tx) error {
			_, err := tx.Get(ctx, "big")
			return err
		})
	})
	// This fn fails only because it sees the doomed write; once that is gone it succeeds.
	txn := queue(t, b, func() error {
		return b.Txn(ctx, func(tx storage.Tx) error {
			calls++
			if _, err := tx.Get(ctx, "big"); err == nil {
				return errors.New("big exists")
			}
			return tx.Put(ctx, "txn", []byte("t"))
		})
	})
	release()
	for name, ch := range map[string]<-chan error{"Put(big)": tooBig, "Put(small)": small, "read-only Txn": reader} {
		if err := <-ch; !errors.Is(err, berrors.ErrMaxSizeReached) || !errors.Is(err, storage.ErrNoSpace) {
			t.Errorf("%s in a batch whose commit failed = %v; want ErrMaxSizeReached and storage.ErrNoSpace", name, err)
		}
	}
	if err := <-txn; err != nil || calls != 2 {
		t.Errorf("Txn retried after the failed commit = %v after %d runs; want nil after 2", err, calls)
	}
	wantGet(t, b, "big", nil)
	wantGet(t, b, "small", nil) // nothing of the failed batch was applied
	wantGet(t, b, "txn", []byte("t"))
	if err := b.Put(ctx, "later", []byte("ok")); err != nil {
		t.Errorf("Put after a failed commit = %v; want the backend to keep working", err)
	}
}

func TestBatchSurvivesPanicAndCancel(t *testing.T) {
	b := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	bg := context.Background()
	release := hold(t, b)
	first := queue(t, b, func() error { return b.Put(bg, "a", []byte("a")) })
	panicked := queue(t, b, func() (err error) {
		defer func() {
			if r := recover(); r != "boom" {
				err = errors.New("the panic did not reach the caller")
			}
		}()
		return b.Txn(bg, func(tx storage.Tx) error {
			_ = tx.Put(bg, "p", []byte("p"))
			panic("boom")
		})
	})
	cancelled := queue(t, b, func() error { return b.Put(ctx, "c", []byte("c")) })
	last := queue(t, b, func() error { return b.Put(bg, "z", []byte("z")) })
	cancel()
	release()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("Put whose context was cancelled while queued = %v; want context.Canceled", err)
	}
	for name, ch := range map[string]<-chan error{"Put(a)": first, "panicking Txn": panicked, "Put(z)": last} {
		if err := <-ch; err != nil {
			t.Errorf("%s = %v", name, err)
		}
	}
	wantGet(t, b, "a", []byte("a"))
	wantGet(t, b, "z", []byte("z"))
	wantGet(t, b, "p", nil)
	wantGet(t, b, "c", nil)
}

func TestCloseFailsQueuedWrites(t *testing.T) {
	b, err := Open(t.TempDir()+"/coffer.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	release := hold(t, b)
	queued := queue(t, b, func() error { return b.Put(bg, "q", []byte("q")) })
	closed := async(b.Close)
	if err := <-queued; !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Put queued when Close was called = %v; want ErrClosed", err)
	}
	release() // the batch in flight still commits
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
	b = mustOpen(t, b.Path())
	defer b.Close()
	wantGet(t, b, "held", []byte("1"))
	wantGet(t, b, "q", nil)
}
