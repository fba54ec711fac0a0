package keys

import (
	"reflect"
	"testing"

	"github.com/coffer-kms/coffer/internal/provider"
)

// TestVersionCacheFollowsWrites: reads answered from the version cache see every update,
// and what a caller changes in a record it got never reaches the next reader.
func TestVersionCacheFollowsWrites(t *testing.T) {
	f := newFixture(t)
	f.mustCreate(f.v, "k", CreateParams{Kty: provider.EC, Tags: map[string]string{"a": "1"}})
	sc, err := newScope(f.v, f.base)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second read is a cache hit
		_, ver, err := f.svc.resolve(f.ctx, sc, "k", "")
		if err != nil {
			t.Fatal(err)
		}
		if ver.Tags["a"] != "1" || len(ver.Handle) == 0 || ver.Public == nil {
			t.Fatalf("read %d: tags %v, handle of %d bytes, public key %v; want tag a=1, a handle and a public key", i, ver.Tags, len(ver.Handle), ver.Public != nil)
		}
		ver.Tags["a"] = "changed by a caller"
		ver.Handle[0] ^= 0xff
		ver.Public.X[0] ^= 0xff
	}
	if got, err := f.svc.Get(f.ctx, f.v, f.base, "k", ""); err != nil || got.Tags["a"] != "1" {
		t.Fatalf("Get after callers changed their copies = %v, %v; want tag a=1", got.Tags, err)
	}
	if _, err := f.svc.Sign(f.ctx, f.v, f.base, "k", "", SignParams{Algorithm: "ES256", Value: digest("m")}); err != nil {
		t.Fatalf("Sign after callers changed their copies = %v", err)
	}
	if _, err := f.svc.Update(f.ctx, f.v, f.base, "k", "", UpdateParams{Tags: map[string]string{"b": "2"}, Attributes: &KeyAttributes{Enabled: ptr(false)}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Get(f.ctx, f.v, f.base, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Tags["b"] != "2" || got.Tags["a"] != "" || *got.Attributes.Enabled {
		t.Errorf("Get after Update = tags %v, enabled %v; want only b=2, disabled", got.Tags, *got.Attributes.Enabled)
	}
}

// TestCloneVersionIsDeep fills every field of a versionRecord, clones it and checks the
// clone shares no memory with it, so a field added later without a line in cloneVersion
// fails here.
func TestCloneVersionIsDeep(t *testing.T) {
	var v versionRecord
	fill(reflect.ValueOf(&v).Elem())
	c := cloneVersion(&v)
	if !reflect.DeepEqual(&v, c) {
		t.Fatalf("cloneVersion changed the record:\n%+v\n%+v", v, *c)
	}
	shared(t, "versionRecord", reflect.ValueOf(v), reflect.ValueOf(*c))
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
