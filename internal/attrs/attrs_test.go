package attrs

import (
	"strings"
	"testing"
)

func i64(v int64) *int64 { return &v }

func TestCheckTags(t *testing.T) {
	many := map[string]string{}
	for i := 0; i < 16; i++ {
		many[strings.Repeat("k", i+1)] = "v"
	}
	for _, tc := range []struct {
		name string
		tags map[string]string
		ok   bool
	}{
		{"ok/none", nil, true},
		{"ok/limits", map[string]string{strings.Repeat("n", 512): strings.Repeat("é", 256)}, true},
		{"fail/too-many", many, false},
		{"fail/empty-name", map[string]string{"": "v"}, false},
		{"fail/long-name", map[string]string{strings.Repeat("n", 513): "v"}, false},
		{"fail/long-value", map[string]string{"k": strings.Repeat("v", 257)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckTags("key", tc.tags); (err == nil) != tc.ok {
				t.Errorf("CheckTags = %v; want ok=%v", err, tc.ok)
			}
		})
	}
	if c := CopyTags(map[string]string{"a": "b"}); c["a"] != "b" || CopyTags(nil) != nil {
		t.Error("CopyTags does not copy")
	}
}

func TestCheckWindow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nbf, exp *int64
		ok       bool
	}{
		{"ok/none", nil, nil, true},
		{"ok/ordered", i64(10), i64(20), true},
		{"fail/equal", i64(10), i64(10), false},
		{"fail/reversed", i64(20), i64(10), false},
		{"fail/negative", i64(-1), nil, false},
		{"fail/after-9999", nil, i64(MaxUnixTime + 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckWindow(tc.nbf, tc.exp); (err == nil) != tc.ok {
				t.Errorf("CheckWindow = %v; want ok=%v", err, tc.ok)
			}
		})
	}
}
