package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/secrets"
)

// fastJSONTypes are the answers appendFastJSON encodes by hand.
var fastJSONTypes = []reflect.Type{
	reflect.TypeFor[keys.KeyBundle](),
	reflect.TypeFor[keys.OperationResult](),
	reflect.TypeFor[secrets.SecretBundle](),
}

// fillValue sets every settable field of v, recursively, from r. With full, nothing is
// left nil or empty, so every member of the type appears in the JSON; otherwise pointers,
// slices, maps and strings are sometimes nil or empty, to exercise omitempty.
func fillValue(v reflect.Value, r *rand.Rand, full bool) {
	empty := func() bool { return !full && r.IntN(3) == 0 }
	switch v.Kind() {
	case reflect.String:
		strs := []string{"plain", "<script>&amp;</script>", "quote\" back\\slash", "ctl\x01\x1f\n\t\r\b\f", "bad utf8 \xff\xfe", "line\u2028para\u2029", "日本語", "https://v.localhost/keys/k/0123"}
		if !empty() {
			v.SetString(strs[r.IntN(len(strs))])
		}
	case reflect.Bool:
		v.SetBool(full || r.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(r.Int64N(1<<40) - 1<<39)
	case reflect.Pointer:
		if !empty() {
			v.Set(reflect.New(v.Type().Elem()))
			fillValue(v.Elem(), r, full)
		}
	case reflect.Slice:
		if empty() {
			if r.IntN(2) == 0 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		n := 1 + r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillValue(s.Index(i), r, full)
		}
		v.Set(s)
	case reflect.Uint8:
		v.SetUint(uint64(r.IntN(256)))
	case reflect.Map:
		if empty() {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range 1 + r.IntN(5) {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			fillValue(k, r, full)
			fillValue(e, r, full)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), r, full)
			}
		}
	default:
		panic("fillValue: no filler for " + v.Type().String())
	}
}

func checkFastJSON(t *testing.T, seed uint64, full bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	for _, typ := range fastJSONTypes {
		v := reflect.New(typ).Elem()
		fillValue(v, r, full)
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v.Interface()); err != nil {
			t.Fatal(err)
		}
		got, ok := appendFastJSON([]byte("prefix"), v.Interface())
		if !ok {
			t.Fatalf("%s: appendFastJSON does not encode it", typ)
		}
		if !bytes.Equal(got[len("prefix"):], want.Bytes()) {
			t.Fatalf("%s (seed %d, full %v):\n got %s\nwant %s", typ, seed, full, got[len("prefix"):], want.Bytes())
		}
	}
}

// TestFastJSONMatchesEncodingJSON holds the hand-written encoders to encoding/json byte for
// byte, first with every field of every type filled (a field added to a type but not to
// its encoder fails here), then with random omissions.
func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	for seed := range uint64(200) {
		checkFastJSON(t, seed, seed < 50)
	}
	if _, ok := appendFastJSON(nil, keys.DeletedKeyBundle{}); ok {
		t.Fatal("appendFastJSON claims a type it has no encoder for")
	}
}

func FuzzFastJSON(f *testing.F) {
	f.Add(uint64(1), true)
	f.Add(uint64(7), false)
	f.Fuzz(func(t *testing.T, seed uint64, full bool) { checkFastJSON(t, seed, full) })
}
