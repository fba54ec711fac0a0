package jsonenc

import (
	"encoding/json"
	"strconv"
	"testing"
)

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&</a>", "\x00\x1f\x7f", "\xff\xfe bad", "\u2028\u2029", "日本", "\\\"", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String([]byte("x"), s); string(got[1:]) != string(want) {
			t.Fatalf("String(%q) = %s; want %s", s, got[1:], want)
		}
	})
}

// TestObject: each member writer against encoding/json on a struct with the same tags,
// set and empty.
func TestObject(t *testing.T) {
	type obj struct {
		S  string            `json:"s,omitempty"`
		SA string            `json:"sa"`
		I  *int64            `json:"i,omitempty"`
		N  *int              `json:"n,omitempty"`
		P  *bool             `json:"p,omitempty"`
		T  bool              `json:"t,omitempty"`
		L  []string          `json:"l,omitempty"`
		M  map[string]string `json:"m,omitempty"`
	}
	enc := func(v obj) string {
		o := Begin(nil)
		o.String("s", v.S, true)
		o.String("sa", v.SA, false)
		o.Int64("i", v.I)
		o.Int("n", v.N)
		o.Bool("p", v.P)
		o.True("t", v.T)
		o.Strings("l", v.L)
		o.StringMap("m", v.M)
		return string(o.End())
	}
	i, n, p := int64(-7), 42, false
	big := map[string]string{}
	for k := range 20 { // more keys than StringMap's stack array
		big["k"+strconv.Itoa(19-k)] = "<" + strconv.Itoa(k) + ">"
	}
	for _, v := range []obj{
		{},
		{S: "x", SA: "y&", I: &i, N: &n, P: &p, T: true, L: []string{"a", "<b>"}, M: map[string]string{"z": "1", "a": "2", "m": "\u2028"}},
		{L: []string{}, M: map[string]string{}},
		{M: big},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := enc(v); got != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	o := Begin(nil)
	o.Base64URL("b", []byte{0xfb, 0xff})
	o.Base64URL("e", nil)
	if got := string(o.End()); got != `{"b":"-_8"}` {
		t.Errorf("Base64URL = %s; want {\"b\":\"-_8\"}", got)
	}
}
