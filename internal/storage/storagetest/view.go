package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

func viewCases() []testCase {
	return []testCase{
		{"view/snapshot", testViewSnapshot},
		{"view/error", testViewError},
	}
}

// viewWriteWait bounds how long a write issued inside a View may take before the suite
// decides that View holds writes up.
const viewWriteWait = 10 * time.Second

// testViewSnapshot checks that a View reads one committed state, that writes committed while
// its fn runs finish without waiting for fn, and that fn does not see them.
func testViewSnapshot(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "v/a", []byte("1"))
	mustPut(t, b, "v/b", []byte("1"))
	err := b.View(ctx, func(r storage.Reader) error {
		wantValue(t, r, "v/a", []byte("1"))
		done := make(chan error, 1)
		go func() {
			done <- b.Txn(ctx, func(tx storage.Tx) error {
				if err := tx.Put(ctx, "v/a", []byte("2")); err != nil {
					return err
				}
				if err := tx.Put(ctx, "v/c", []byte("2")); err != nil {
					return err
				}
				return tx.Delete(ctx, "v/b")
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Txn inside a View = %v", err)
			}
		case <-time.After(viewWriteWait):
			t.Fatalf("a Txn issued while a View's fn ran did not finish within %v: View holds writes up", viewWriteWait)
		}
		wantValue(t, r, "v/a", []byte("1"))
		wantValue(t, r, "v/b", []byte("1"))
		wantMissing(t, r, "v/c")
		wantKeys(t, r, "v/", []string{"v/a", "v/b"})
		return nil
	})
	if err != nil {
		t.Fatalf("View = %v", err)
	}
	wantValue(t, b, "v/a", []byte("2"))
	wantKeys(t, b, "v/", []string{"v/a", "v/c"})
}

// testViewError checks that View returns fn's error.
func testViewError(t *testing.T, b storage.Backend) {
	want := errors.New("fn failed")
	if err := b.View(context.Background(), func(storage.Reader) error { return want }); !errors.Is(err, want) {
		t.Errorf("View = %v; want fn's error %v", err, want)
	}
}

// errReadOnly is what the writes of a ReadOnlyTx return.
var errReadOnly = errors.New("storagetest: write to a read-only snapshot")

// ReadOnlyTx returns r as a storage.Tx whose Put and Delete fail, so that a test wrapper
// written over a Tx (one that counts, logs or pauses reads) wraps a View's Reader too.
func ReadOnlyTx(r storage.Reader) storage.Tx { return readOnlyTx{r} }

type readOnlyTx struct{ storage.Reader }

func (readOnlyTx) Put(context.Context, string, []byte) error { return errReadOnly }
func (readOnlyTx) Delete(context.Context, string) error      { return errReadOnly }
