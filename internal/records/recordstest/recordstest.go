// Package recordstest holds test helpers shared by the packages built on records (keys,
// secrets, certificates): a settable clock, error and JSON checks, and the deep-clone check
// of the records that records.Decoded caches.
package recordstest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Clock is a settable clock for a service's clock parameter (pass its Now).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// WantErr checks that err wraps want (nil: no error); what names the call.
func WantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s = %v; want no error", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v; want %v", what, err, want)
	}
}

// MustJSON marshals v or fails t.
func MustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%T) = %v", v, err)
	}
	return string(b)
}

// CheckDeepClone fills every field of a T, clones it and fails t if the clone differs or
// shares any pointer, slice or map with the original: a field added to T later without a
// line in clone fails here.
func CheckDeepClone[T any](t *testing.T, clone func(*T) *T) {
	t.Helper()
	var v T
	fill(reflect.ValueOf(&v).Elem())
	c := clone(&v)
	name := reflect.TypeOf(v).Name()
	if !reflect.DeepEqual(&v, c) {
		t.Fatalf("cloning a %s changed it:\n%+v\n%+v", name, v, *c)
	}
	shared(t, name, reflect.ValueOf(v), reflect.ValueOf(*c))
}

// fill sets every field reachable from v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// shared reports every pointer, slice or map that a and b share.
func shared(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			shared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
		}
	case reflect.Pointer, reflect.Slice, reflect.Map:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			t.Errorf("%s is shared between the record and its clone", path)
			return
		}
		switch a.Kind() {
		case reflect.Pointer:
			shared(t, path, a.Elem(), b.Elem())
		case reflect.Slice:
			for i := range a.Len() {
				shared(t, path+"[i]", a.Index(i), b.Index(i))
			}
		}
	}
}

// ErrDeleteDown is the error FailingDeletes returns.
var ErrDeleteDown = errors.New("storage refuses deletes")

// FailingDeletes is a storage backend whose transactions fail the next n deletes of keys
// under Prefix (set with Fail): a storage failure while a scheduler drops an index entry.
type FailingDeletes struct {
	storage.Backend
	Prefix string
	mu     sync.Mutex
	n      int
}

// Fail makes the next n deletes under Prefix fail.
func (f *FailingDeletes) Fail(n int) {
	f.mu.Lock()
	f.n = n
	f.mu.Unlock()
}

// Txn runs fn in a transaction of the wrapped backend whose deletes may fail.
func (f *FailingDeletes) Txn(ctx context.Context, fn func(storage.Tx) error) error {
	return f.Backend.Txn(ctx, func(tx storage.Tx) error { return fn(failingDeletesTx{Tx: tx, f: f}) })
}

type failingDeletesTx struct {
	storage.Tx
	f *FailingDeletes
}

func (t failingDeletesTx) Delete(ctx context.Context, key string) error {
	t.f.mu.Lock()
	fail := t.f.n > 0 && strings.HasPrefix(key, t.f.Prefix)
	if fail {
		t.f.n--
	}
	t.f.mu.Unlock()
	if fail {
		return ErrDeleteDown
	}
	return t.Tx.Delete(ctx, key)
}
